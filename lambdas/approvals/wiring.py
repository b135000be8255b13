"""Builds each function's dependencies from the settings, once per cold start.

Handlers call these factories; tests build the same objects with their own clients instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from slack_sdk.signature import Clock as SignatureClock

from approvals.adapters import aws
from approvals.adapters.secrets import SlackSecrets
from approvals.adapters.signature import SlackRequestVerifier
from approvals.config import Settings, settings
from approvals.domain.authorisation import Approvers
from approvals.names import HUB_FUNCTIONS_ACTING_IN_SPOKES

if TYPE_CHECKING:  # imported where used, so the callback's cold start does not pay for them
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from slack_sdk import WebClient

    from approvals.adapters.pacing import DynamoChannelPacer
    from approvals.adapters.s3control import S3ControlJobs
    from approvals.adapters.slack import SlackChat
    from approvals.adapters.store import DynamoRequestStore
    from approvals.domain.decisions import DecisionService
    from approvals.domain.home import HomeService
    from approvals.domain.requests import RequestService
    from approvals.domain.sweep import LifecycleSweep
    from approvals.domain.work import QueuedWork
    from approvals.models.policy import Policy
    from approvals.models.records import ApprovalRequest


class Clock:
    """The time every function reads: the port through which tests and the sandbox move time.

    In Lambda it is the system clock. ``advance`` shifts it (the sandbox's ``advance <duration>``); every
    service, the signature check and the proof-age check read it, so time moves for all of them at once.
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by

    def reset(self) -> None:
        self.offset = timedelta(0)


clock = Clock()

# The functions that act in jobs' accounts, as their spoke sessions name them (approvals.names).
NOTIFIER, DECIDER = HUB_FUNCTIONS_ACTING_IN_SPOKES


def utc_now() -> datetime:
    return clock()


class SigningClock(SignatureClock):
    """slack_sdk's clock for the signature's 5-minute window, reading the product's ``clock``."""

    def now(self) -> float:
        return utc_now().timestamp()


class Deadline:
    """Time left in the current invocation, so retries never outlive the function."""

    def __init__(self) -> None:
        self._ends_at = time.monotonic() + 30.0

    def start(self, context: Any, reserve_seconds: float = 2.0) -> None:
        millis = getattr(context, "get_remaining_time_in_millis", lambda: 30_000)()
        self._ends_at = time.monotonic() + millis / 1000.0 - reserve_seconds

    def seconds_left(self) -> float:
        return max(0.0, self._ends_at - time.monotonic())


class TokenedWebClients:
    """One WebClient per bot token value: a rotated token gets a fresh client."""

    def __init__(
        self, secrets: SlackSecrets, base_url: str, deadline: Deadline, timeout: int, retries: bool = True
    ) -> None:
        self._secrets = secrets
        self._base_url = base_url
        self._deadline = deadline
        self._timeout = timeout
        self._retries = retries
        self._clients: dict[str, WebClient] = {}

    def __call__(self) -> WebClient:
        from approvals.adapters.slack import web_client

        token = self._secrets.bot_token()
        if token not in self._clients:
            self._clients = {
                token: web_client(
                    token,
                    self._base_url,
                    timeout=self._timeout,
                    seconds_left=self._deadline.seconds_left,
                    retries=self._retries,
                )
            }
        return self._clients[token]


class Common:
    """What every function shares; clients are made on first use, so each function pays for its own."""

    def __init__(self, cfg: Settings) -> None:
        self.settings = cfg
        self.deadline = Deadline()
        self._accounts: dict[str, aws.AccountClients] = {}
        self._jobs: dict[str, S3ControlJobs] = {}

    @cached_property
    def secrets(self) -> SlackSecrets:
        provider = SecretsProvider(boto3_client=aws.client("secretsmanager"))
        return SlackSecrets(provider, self.settings.slack_secret_name, self.settings.secret_max_age_seconds)

    @cached_property
    def store(self) -> DynamoRequestStore:
        from approvals.adapters.store import DynamoRequestStore

        return DynamoRequestStore(
            aws.client("dynamodb"),
            self.settings.requests_table_name,
            self.settings.audit_table_name,
            self.settings.request_ttl_days,
        )

    def accounts(self, function: str) -> aws.AccountClients:
        """Clients acting in a job's own account and region, as ``function`` (its spoke sessions say so)."""
        if function not in self._accounts:
            cfg = self.settings
            self._accounts[function] = aws.AccountClients(
                function=function,
                hub_account_id=cfg.hub_account_id,
                hub_region=cfg.hub_region,
                places=cfg.places,
                role_prefix=cfg.spoke_role_prefix,
            )
        return self._accounts[function]

    def jobs(self, function: str) -> S3ControlJobs:
        """S3 Control in the job's own account and region (adapters/aws.py AccountClients)."""
        from approvals.adapters.s3control import S3ControlJobs

        if function not in self._jobs:
            accounts = self.accounts(function)
            self._jobs[function] = S3ControlJobs(
                lambda account, region, job: accounts("s3control", account, region, job)
            )
        return self._jobs[function]

    def chat(self, timeout: int = 10, retries: bool = True, paced: bool = True) -> SlackChat:
        """``paced``: posts wait for the channel's turn (adapters/pacing.py); off only where nothing is posted."""
        from approvals.adapters.slack import SlackChat

        clients = TokenedWebClients(self.secrets, self.settings.slack_api_url, self.deadline, timeout, retries)
        return SlackChat(
            clients,
            group_cache_seconds=self.settings.group_cache_seconds,
            pacer=self.pacer if paced else None,
        )

    @cached_property
    def pacer(self) -> DynamoChannelPacer:
        from approvals.adapters.pacing import DynamoChannelPacer

        return DynamoChannelPacer(
            aws.client("dynamodb"),
            self.settings.requests_table_name,
            interval=self.settings.slack_post_interval_seconds,
            seconds_left=self.deadline.seconds_left,
        )

    @property
    def approvers(self) -> Approvers:
        return Approvers(frozenset(self.settings.approver_user_ids), self.settings.approver_group_ids)

    @cached_property
    def policy(self) -> Policy | None:
        """POLICY_FILE's policy, else the bundled one; None when there is neither (no rules: one approval
        from the deployment's approvers). A malformed file raises PolicyError at the cold start."""
        from approvals.models.policy import bundled_policy_path, load_policy_file

        path = self.settings.policy_file or (str(bundled_policy_path()) if bundled_policy_path().exists() else None)
        return load_policy_file(path) if path else None

    @property
    def anyone_who_may_decide(self) -> Approvers:
        """The deployment's approvers and every rule's: whom the callback must never refuse for good."""
        users = set(self.settings.approver_user_ids)
        groups = list(self.settings.approver_group_ids)
        for rule in self.policy.rules if self.policy else []:
            if rule.approvers is not None:
                users.update(rule.approvers.users)
                groups += [g for g in rule.approvers.groups if g not in groups]
        return Approvers(frozenset(users), tuple(groups))


@cache
def common() -> Common:
    return Common(settings())


@dataclass
class NotifierDeps:
    common: Common
    requests: RequestService
    idempotency: DynamoDBPersistenceLayer

    @cached_property
    def decisions(self) -> DecisionService:
        """Made on the first reconciliation, which finishes decision claims left past their lease, or on a
        rule's or an expiry's own decision."""
        service = decision_service(self.common, NOTIFIER)
        service.on_change = self.refresh_home
        return service

    @cached_property
    def home(self) -> HomeService:
        """Made on the first request posted, decided or expired here: the Home views it refreshes."""
        return home_service(self.common, self.decisions)

    def refresh_home(self, request: ApprovalRequest) -> None:
        """Best effort (HomeService.refresh_for never raises): only people who opened Home are refreshed."""
        self.home.refresh_for(request)

    @cached_property
    def lifecycle(self) -> LifecycleSweep:
        """Made on the first lifecycle tick: reminders, escalation and expiry (approvals.domain.sweep)."""
        from approvals.domain.sweep import LifecycleSweep

        c = self.common
        return LifecycleSweep(
            store=c.store,
            chat=self.requests.chat,
            jobs=c.jobs(NOTIFIER),
            approvers=c.approvers,
            decide=lambda command: self.decisions.apply(command),
            clock=utc_now,
            large_job_threshold=c.settings.large_job_threshold,
            seconds_left=c.deadline.seconds_left,
            on_change=self.refresh_home,
        )


@cache
def notifier() -> NotifierDeps:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from approvals.domain.identity import IdentityResolver
    from approvals.domain.requests import RequestService
    from approvals.models.policy import Identities

    c = common()
    chat = c.chat()
    policy = c.policy
    service = RequestService(
        jobs=c.jobs(NOTIFIER),
        store=c.store,
        chat=chat,
        channel=c.settings.slack_channel_id,
        clock=utc_now,
        large_job_threshold=c.settings.large_job_threshold,
        policy=policy,
        identities=IdentityResolver(policy.identities if policy else Identities(), chat.user_by_email),
        requesters=_requesters(c) if c.settings.requester_lookup == "cloudtrail" else None,
        account_names=c.settings.account_names,
    )
    idempotency = DynamoDBPersistenceLayer(
        table_name=c.settings.idempotency_table_name, boto3_client=aws.client("dynamodb")
    )
    deps = NotifierDeps(common=c, requests=service, idempotency=idempotency)
    service.decide = lambda command: deps.decisions.apply(command)  # a rule's own decisions (deny, approve)
    service.on_change = deps.refresh_home  # a request posted, or its creator learnt: the Home tab
    return deps


def _requesters(c: Common) -> Any:
    from approvals.adapters.cloudtrail import LOOKUP_CONFIG, CloudTrailRequesters

    accounts = c.accounts(NOTIFIER)
    return CloudTrailRequesters(
        lambda account, region, job: accounts("cloudtrail", account, region, job, LOOKUP_CONFIG), utc_now
    )


@dataclass
class CallbackDeps:
    common: Common
    verifier: SlackRequestVerifier
    sqs: Any
    queue_url: str
    teams: tuple[str, ...]

    @cached_property
    def chat(self) -> SlackChat:
        """Made on the first Cancel click; views.open must answer fast or not at all (3-second ack):
        one attempt with a 2-second timeout, no retries."""
        return self.common.chat(timeout=2, retries=False, paced=False)  # it posts no messages, reads no table


@cache
def callback() -> CallbackDeps:
    c = common()
    if not c.settings.decisions_queue_url:
        from approvals.config import SettingsError

        raise SettingsError("invalid settings: DECISIONS_QUEUE_URL: required by the callback function")
    return CallbackDeps(
        common=c,
        verifier=SlackRequestVerifier(c.secrets, clock=SigningClock()),
        sqs=aws.client("sqs", quick=True),
        queue_url=c.settings.decisions_queue_url,
        teams=c.settings.require_teams(),
    )


@dataclass
class DeciderDeps:
    common: Common
    decisions: DecisionService
    work: QueuedWork
    home: HomeService | None = None


@cache
def decider() -> DeciderDeps:
    from approvals.domain.work import QueuedWork

    c = common()
    service = decision_service(c, DECIDER)
    home = home_service(c, service)
    service.on_change = home.refresh_for  # a decision: the Home tab of the people it concerns
    work = QueuedWork(
        decisions=service,
        verified=SlackRequestVerifier(c.secrets, clock=SigningClock()).verify_signed,
        teams=c.settings.require_teams(),
        clock=utc_now,
        home=home,
        response_prefixes=c.settings.response_url_prefixes,
    )
    return DeciderDeps(common=c, decisions=service, work=work, home=home)


def home_service(c: Common, decisions: DecisionService) -> HomeService:
    """The approver's queue: Home views and slash-command replies, from the requests table's indexes.

    ``decisions`` says who may decide a request (its rule's approvers, else the deployment's), so the Home
    tab lists exactly what a click would be allowed to decide. The notifier builds one with
    ``home_service(deps.common, deps.decisions)`` to call ``refresh_for(request)`` after posting or expiry.
    """
    from approvals.adapters.queries import DynamoHomeQueries
    from approvals.domain.home import HomeService
    from approvals.observability import logger

    chat = c.chat(paced=False)  # views.publish and response_url replies post no channel message
    return HomeService(
        queries=DynamoHomeQueries(aws.client("dynamodb"), c.settings.requests_table_name, c.store),
        chat=chat,
        approvers_for=decisions.approvers_for,
        members_of=chat.group_members,
        history=None,  # the trail in short comes from the request record: no read of the audit table
        clock=utc_now,
        command_name=c.settings.slash_command,
        report=lambda detail: logger.warning("home not refreshed", detail=detail),
    )


def decision_service(c: Common, function: str) -> DecisionService:
    """The decision service of the decider (and of the notifier's reconciliation, which recovers stuck claims,
    and its rules' and expiries' own decisions): ``function`` acts in the job's account."""
    from approvals.domain.decisions import DecisionService

    chat = c.chat()
    return DecisionService(
        jobs=c.jobs(function),
        store=c.store,
        chat=chat,
        approvers=c.approvers,
        members_of=chat.group_members,
        clock=utc_now,
        large_job_threshold=c.settings.large_job_threshold,
        lease_seconds=c.settings.decision_lease_seconds,
    )


def reset_cold_start() -> None:
    """Forget settings and clients, as a new execution environment would (local runs and tests)."""
    from approvals import coldstart
    from approvals.config import settings as cached_settings

    for factory in (cached_settings, common, notifier, callback, decider, aws.client, aws.session):
        factory.cache_clear()
    aws.own_clients_with_config.cache_clear()
    coldstart.thaw()  # the forgotten clients can be collected
