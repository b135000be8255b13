"""The whole product on one machine: the real handlers between local stand-ins, over real HTTP.

    S3 Batch Operations emulator (jobs of the hub account and of a spoke account in another region)
        ──events──▶ the job's account's default bus (an EventRouter per account and region) ──the forward
        rule (FORWARDED_EVENT_PATTERN)──▶ the hub's approvals bus (its resource policy admits the hub and the
        member accounts only) ──the stack's JOB_EVENT_PATTERN and CREATE_JOB_CALL_PATTERN──▶
        job events queue (SQS, moto; redelivery, dead-letter queue) ──▶ queue
        pump (the event source's maximum concurrency) ──▶ notifier, each post taking the channel's turn;
        emulator ──each CreateJob──▶ CloudTrail stand-in (event history, with its lag)
    notifier ──boto3 (via the loopback proxy)──▶ emulator;  ──slack_sdk──▶ Slack stand-in
    person's click ──signed HTTP──▶ API Gateway front ──▶ callback ──SQS (moto)──▶ queue pump ──▶ decider
    decider ──▶ emulator (UpdateJobStatus), DynamoDB (moto), Slack stand-in
    notifier, decider ──AssumeRole──▶ STS front (sandbox.sts: the role must exist and trust the caller) ──▶
        moto's STS; the spoke role's session ──▶ emulator (its permissions checked), CloudTrail stand-in

Only one ``LocalDeployment`` runs per process: the handlers read their settings from the process
environment, as they do in Lambda.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from infra import constants as c
from sandbox.apigw import ApiGatewayFront, LambdaContext
from sandbox.aws_local import LocalAws, sandbox_notifier_timeout
from sandbox.cloudtrail import CloudTrailHistory, CloudTrailStandIn
from sandbox.proxy import LoopbackProxy, s3control_client_env
from sandbox.router import EventRouter
from sandbox.s3batch import JobStore, S3ControlEmulator, example_create_job_params
from sandbox.slack import SlackStandIn
from sandbox.sts import StsFront, moto_caller_arn, moto_client

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
HUB_NAME = "platform"
# The spoke: another account in another region (both "across" at once), named as people know it.
SPOKE_ACCOUNT_ID = "210987654321"
SPOKE_REGION = "us-west-2"
SPOKE_NAME = "analytics"
HUB = "hub"
SPOKE = "spoke"
HUB_STACK_NAME = "S3BatchApprovals"
SANDBOX_ORGANIZATION_ID = "o-sandbox0001"
# The functions' own role, as Lambda would give it them: the sandbox's default credentials stand for it.
HUB_ROLE_ARN = c.hub_role_arns(ACCOUNT_ID, HUB_STACK_NAME, REGION)[0]
HUB_SESSION_ARN = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{HUB_ROLE_ARN.rsplit('/', 1)[-1]}/notifier"
SPOKE_ROLE_NAME = c.spoke_role_name(c.DEFAULT_SPOKE_ROLE_PREFIX, SPOKE_REGION)
SPOKE_ROLE_ARN = f"arn:aws:iam::{SPOKE_ACCOUNT_ID}:role/{SPOKE_ROLE_NAME}"
FORWARD_RULE = "forward-to-hub"
CHANNEL = "C0APPROVALS"
BOT_TOKEN = "xoxb-sandbox-bot-token"
SIGNING_SECRET = "sandbox-signing-secret-0123456789abcdef"
APPROVER_GROUP = "S0APPROVERS"
ONCALL_GROUP = "S0ONCALL01"  # the sandbox policy escalates to it (and to ONCALL_CHANNEL)
ONCALL_CHANNEL = "C0ONCALL01"
POLICY_FILE = os.path.join(os.path.dirname(__file__), "policy.yaml")


@dataclass(frozen=True)
class Person:
    id: str
    name: str  # the Slack username, as interaction payloads carry it
    real_name: str
    display_name: str  # what colleagues see, and what the StatusUpdateReason records
    email: str | None = None


ALICE = Person("U0ALICE01", "alice", "Alice Approver", "Alice A.", "alice@example.com")
GINA = Person("U0GINA001", "gina", "Gina Group-Approver", "Gina G.", "gina@example.com")
MALLORY = Person("U0MALLORY", "mallory", "Mallory Onlooker", "Mallory M.", "mallory@example.com")
PEOPLE = (ALICE, GINA, MALLORY)

# Who creates jobs in the sandbox (the IAM principals CloudTrail records), and who they are in Slack:
# Alice through IAM Identity Center (her session is her email: users.lookupByEmail finds her), Gina through
# a role the sandbox policy maps to her, and a pipeline role that is nobody in Slack.
ALICE_SSO = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/AWSReservedSSO_DataEngineer_0123456789abcdef/alice@example.com"
GINA_ADMIN = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/gina-admin/gina"
PIPELINE = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/batch-pipeline/nightly-run"
PRINCIPALS = {"alice": ALICE_SSO, "gina": GINA_ADMIN, "pipeline": PIPELINE}
# The same people in the spoke account (a principal acts in its own account only).
SPOKE_PRINCIPALS = {
    "alice": ALICE_SSO.replace(ACCOUNT_ID, SPOKE_ACCOUNT_ID),
    "gina": f"arn:aws:sts::{SPOKE_ACCOUNT_ID}:assumed-role/gina-admin/gina",
    "pipeline": f"arn:aws:sts::{SPOKE_ACCOUNT_ID}:assumed-role/batch-pipeline/nightly-run",
}


def account_id_of(account: str) -> str:
    """``hub``, ``spoke`` or a 12-digit account ID: the account ID."""
    return {HUB: ACCOUNT_ID, SPOKE: SPOKE_ACCOUNT_ID}.get(account, account)


def region_of(account: str) -> str:
    """The region the sandbox runs an account's jobs in."""
    return SPOKE_REGION if account_id_of(account) == SPOKE_ACCOUNT_ID else REGION


@dataclass
class Click:
    """What happened to one signed request sent to the callback."""

    status: int
    body: str
    seconds: float
    request_id: str | None = None  # API Gateway's x-amzn-RequestId: the audit records this click caused carry it

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sqs_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """The record Lambda's SQS event source hands the function for ``message`` (from ReceiveMessage)."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def requests_posted(slack: SlackStandIn, channel: str = CHANNEL) -> Counter[str]:
    """Job ID -> how many approval requests (top-level messages with the job's metadata) ``channel`` holds."""
    posted: Counter[str] = Counter()
    for message in slack.messages(channel):
        payload = (message.metadata or {}).get("event_payload") or {}
        if payload.get("job_id") and not message.thread_ts:
            posted[str(payload["job_id"])] += 1
    return posted


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


class QueuePump:
    """Lambda's SQS event source, locally: receive, invoke the decider, delete what succeeded.

    Like Lambda's, it runs several invocations at once (``concurrency``, the event source's maximum
    concurrency): a standard queue hands messages to concurrent pollers in no promised order.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Callable[[dict[str, Any], Any], Any],
        *,
        timeout_seconds: float,
        concurrency: int = 1,
        function_name: str = "decider",
    ):
        self._sqs, self._url, self._arn, self._handler = sqs, queue_url, queue_arn, handler
        self._timeout = timeout_seconds
        self._function_name = function_name
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-pump-{function_name}-{n}", daemon=True)
            for n in range(concurrency)
        ]
        self.failures: list[str] = []

    def start(self) -> QueuePump:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                got = self._sqs.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=0,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except self._sqs.exceptions.QueueDoesNotExist:
                got = []  # Lambda's poller finds nothing on a deleted queue either
            # A received message is invisible in the queue until it is deleted or its visibility timeout
            # ends, so idle() counts it through SQS's in-flight figure; the count here covers the moment
            # between the delete (or the failure) and the end of the invocation.
            for message in got:
                with self._lock:
                    self._in_flight += 1
                try:
                    self._invoke(message)
                finally:
                    with self._lock:
                        self._in_flight -= 1
            if not got:
                self._stop.wait(0.05)

    def _invoke(self, message: dict[str, Any]) -> None:
        record = sqs_record(message, self._arn, REGION)
        context = LambdaContext(self._function_name, timeout_seconds=self._timeout)
        try:
            response = self._handler({"Records": [record]}, context) or {}
        except Exception as exc:  # the whole invocation failed: the message becomes visible again
            self.failures.append(f"{type(exc).__name__}: {exc}")
            return
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        if message["MessageId"] in failed:
            self.failures.append(f"record {message['MessageId']} failed")
            return
        try:
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        except self._sqs.exceptions.ReceiptHandleIsInvalid:
            # Received again after its visibility timeout, while this invocation ran: the later receipt is
            # the one that counts, as in SQS (whose delete with an old receipt may leave the message).
            self.failures.append(f"record {message['MessageId']} outlived its visibility timeout")

    def idle(self) -> bool:
        """No message waiting or in flight, and no invocation running."""
        with self._lock:
            if self._in_flight:
                return False
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self._url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except self._sqs.exceptions.QueueDoesNotExist:
            attrs = {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
        with self._lock:
            running = self._in_flight
        return (
            not running
            and attrs["ApproximateNumberOfMessages"] == "0"
            and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
        )


@dataclass
class LocalDeployment:
    """Start with ``start()`` (or ``with``); every part listens on a free loopback port."""

    approver_ids: Iterable[str] = (ALICE.id,)
    approver_groups: dict[str, list[str]] = field(default_factory=lambda: {APPROVER_GROUP: [GINA.id]})
    auto_advance: bool = False
    advance_interval: float = 0.2
    # The job events queue's event source runs up to 5 notifiers at once (the stack's maximum concurrency),
    # side by side and in no promised order; so does the sandbox.
    notifier_concurrency: int = c.NOTIFIER_MAX_CONCURRENCY
    # Slack's pace, sped up: one Slack second lasts this many real seconds, for the Slack stand-in's
    # per-channel limit and the product's posting interval alike (1.0: as fast as Slack, no faster).
    slack_time_scale: float = 0.02
    # The decisions queue's event source runs up to 5 decider invocations at once (the stack's maximum
    # concurrency); so does the sandbox, so that concurrent votes and clicks really race.
    decider_concurrency: int = c.DECIDER_MAX_CONCURRENCY
    quiet: bool = True
    bot_token: str = BOT_TOKEN
    signing_secret: str = SIGNING_SECRET
    policy_file: str | None = POLICY_FILE
    # Whether a CloudTrail trail records management events (then EventBridge gets CreateJob calls), and
    # how long CloudTrail's event history takes to show a call (seconds; minutes in AWS).
    trail: bool = True
    history_delay: float = 0.0
    # The spoke account (SPOKE_ACCOUNT_ID in SPOKE_REGION), served by this hub through its spoke role.
    spoke: bool = True

    def start(self) -> LocalDeployment:
        self.notifier_timeout = sandbox_notifier_timeout(self.slack_time_scale)
        self.aws = LocalAws().start().provision(self.bot_token, self.signing_secret, self.notifier_timeout)
        self._iam_clients: dict[str, Any] = {}
        self._sessions: dict[str, str | None] = {}  # access key -> the role session moto issued it for
        self._iam_lock = threading.Lock()
        self.sts = StsFront(
            self.aws.url,
            known_callers={"testing": HUB_SESSION_ARN},
            organizations={ACCOUNT_ID: SANDBOX_ORGANIZATION_ID, SPOKE_ACCOUNT_ID: SANDBOX_ORGANIZATION_ID},
        ).start()
        if self.spoke:
            self.restore_spoke_role()
        # S3 and CloudTrail keep the product's time (``advance`` moves it for them too: creation and suspension
        # times, the history's window).
        self.cloudtrail = CloudTrailStandIn(
            CloudTrailHistory(
                account_id=ACCOUNT_ID,
                region=REGION,
                visibility_delay=self.history_delay,
                clock=self.now,
                resolve_account=self._session_account,
                may_lookup=self._may_lookup_events,
            )
        ).start()
        self.jobs = JobStore(
            region=REGION,
            active_steps=3,
            trail_enabled=self.trail,
            on_management_event=self.cloudtrail.record,
            clock=self.now,
            # The sandbox's own key is the hub's (never any other account's), moto's role sessions are who moto
            # says, and a role session may do only what its role's policies allow.
            default_principal=f"arn:aws:iam::{ACCOUNT_ID}:user/sandbox",
            resolve_caller=self._session_arn,
            permissions_for=self._role_permissions,
        )
        self.s3 = S3ControlEmulator(self.jobs, auto_advance=self.auto_advance, interval=self.advance_interval).start()
        self.proxy = LoopbackProxy(self.s3.url).start()
        self.slack = SlackStandIn(
            self.bot_token,
            users=[
                {
                    "id": p.id,
                    "name": p.name,
                    "real_name": p.real_name,
                    "display_name": p.display_name,
                    "email": p.email,
                }
                for p in PEOPLE
            ],
            groups=self.approver_groups,
            channels=[{"id": CHANNEL, "name": "s3-approvals"}, {"id": ONCALL_CHANNEL, "name": "s3-approvals-oncall"}],
            time_scale=self.slack_time_scale,
            clock=lambda: self.now().timestamp(),  # Slack signs and stamps with the product's time
        ).start()
        self._environment()
        # Imported after the environment is set, as Lambda would: Powertools reads it at import.
        from approvals import wiring
        from approvals.handlers import callback, decider, notifier

        wiring.reset_cold_start()
        # The product's clock (wiring.clock): ``advance`` moves it for every function, the signature check and
        # the requests this sandbox signs alike.
        self.clock = wiring.clock
        self.clock.reset()
        self.notifier_handler = notifier.handler
        # The rules' dead-letter queue: events EventBridge could not put on the job events queue at all.
        self.event_dlq: list[dict[str, Any]] = []
        sqs = self._events_sqs = self.aws.client("sqs")
        self.notifier = QueuePump(
            sqs,
            self.aws.job_events_queue_url,
            _queue_arn(sqs, self.aws.job_events_queue_url),
            notifier.handler,
            timeout_seconds=self.notifier_timeout,
            concurrency=self.notifier_concurrency,
            function_name="notifier",
        ).start()
        self.api = ApiGatewayFront(
            {
                ("POST", "/" + c.SLACK_INTERACTIONS_PATH): callback.handler,
                ("POST", "/" + c.SLACK_EVENTS_PATH): callback.handler,
                ("POST", "/" + c.SLACK_COMMANDS_PATH): callback.handler,
            },
            function_name="callback",
            timeout_seconds=10,
        ).start()
        # EventBridge as in AWS: each account's default bus in each region forwards to the hub's approvals bus,
        # whose rules put the events on the job events queue.
        self.forward_dlq: list[dict[str, Any]] = []
        self.hub_bus = EventRouter(
            name=c.hub_event_bus_name(HUB_STACK_NAME), account=ACCOUNT_ID, region=REGION, admits=self._hub_bus_admits
        )
        self.hub_bus.add_rule("job-events", c.JOB_EVENT_PATTERN, self._deliver)
        self.hub_bus.add_rule("create-job-calls", c.CREATE_JOB_CALL_PATTERN, self._deliver)
        self.router = self.hub_bus  # the bus whose rules feed the notifier
        self.default_buses: dict[tuple[str, str], EventRouter] = {}
        self._buses_lock = threading.Lock()
        for account, region in self.accounts():
            self.default_bus(account, region).add_rule(
                FORWARD_RULE, c.FORWARDED_EVENT_PATTERN, self._forwarder(account)
            )
        self.jobs.subscribe(self._to_default_bus)
        self.pump = QueuePump(
            sqs,
            self.aws.queue_url,
            _queue_arn(sqs, self.aws.queue_url),
            decider.handler,
            timeout_seconds=self.aws.timing.function_timeout,
            concurrency=self.decider_concurrency,
        ).start()
        self.callback_url = self.api.url_for("/" + c.SLACK_INTERACTIONS_PATH)
        return self

    def stop(self) -> None:
        for part in ("pump", "notifier", "api", "slack", "proxy", "s3", "cloudtrail", "sts"):
            if hasattr(self, part):
                getattr(self, part).stop()
        if hasattr(self, "jobs"):
            self.jobs.close()
        if hasattr(self, "aws"):
            self.aws.stop()
        if hasattr(self, "clock"):
            self.clock.reset()
        for key in getattr(self, "_env_keys", []):
            os.environ.pop(key, None)
        urllib.request.install_opener(None)  # urllib's default opener remembers the proxy settings

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _environment(self) -> None:
        env = {
            **self.aws.env(),
            **s3control_client_env(self.proxy.url),
            "SLACK_API_URL": self.slack.api_url,
            c.ENV_SLACK_CHANNEL_ID: CHANNEL,
            c.ENV_SLACK_TEAM_ID: self.slack.team_id,
            c.ENV_APPROVER_USER_IDS: ",".join(self.approver_ids),
            c.ENV_APPROVER_GROUP_IDS: ",".join(self.approver_groups),
            "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_ENDPOINT_URL_CLOUDTRAIL": self.cloudtrail.url,
            c.ENV_REQUESTER_LOOKUP: c.REQUESTER_LOOKUP_CLOUDTRAIL,
            c.ENV_SLACK_POST_INTERVAL_SECONDS: str(self.slack_time_scale),
            **c.PYDANTIC_WITHOUT_PLUGINS,
            "AWS_ENDPOINT_URL_STS": self.sts.url,
        }
        if self.spoke:
            env[c.ENV_HUB_ACCOUNT_ID] = ACCOUNT_ID
            env[c.ENV_MEMBER_ACCOUNTS] = json.dumps(
                [
                    {"id": ACCOUNT_ID, "name": HUB_NAME},
                    {"id": SPOKE_ACCOUNT_ID, "name": SPOKE_NAME, "regions": [SPOKE_REGION]},
                ]
            )
        if self.policy_file:
            env["POLICY_FILE"] = self.policy_file
        if self.quiet:
            env["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"
            env["POWERTOOLS_METRICS_DISABLED"] = "true"
        self._env_keys = list(env)
        os.environ.update(env)
        urllib.request.install_opener(None)  # rebuilt on next use, with these proxy settings

    # -- accounts: the spoke role, STS, callers ---------------------------------------------------------

    def accounts(self) -> list[tuple[str, str]]:
        """The (account, region) pairs the sandbox serves: the hub's, then the spoke's (when on)."""
        return [(ACCOUNT_ID, REGION), *([(SPOKE_ACCOUNT_ID, SPOKE_REGION)] if self.spoke else [])]

    def _iam(self, account_id: str = SPOKE_ACCOUNT_ID) -> Any:
        """moto's IAM in ``account_id`` (one client per account: building a boto3 client costs tens of ms)."""
        with self._iam_lock:
            client = self._iam_clients.get(account_id)
            if client is None:
                client = self._iam_clients[account_id] = moto_client(self.aws.url, "iam", account_id=account_id)
            return client

    def restore_spoke_role(self, trust: dict[str, Any] | None = None) -> None:
        """(Re)create the spoke role as the spoke stack makes it: the trust spoke_trust_policy writes (or
        ``trust``) and the permissions spoke_permissions writes, in the spoke account's IAM (moto)."""
        iam = self._iam()
        self.delete_spoke_role()
        document = trust or c.spoke_trust_policy(
            ACCOUNT_ID, c.hub_role_arns(ACCOUNT_ID, HUB_STACK_NAME, REGION), SANDBOX_ORGANIZATION_ID
        )
        iam.create_role(RoleName=SPOKE_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(document))
        permissions = c.spoke_permissions(
            requester_lookup=True, job_tags=True, partition="aws", region=SPOKE_REGION, account=SPOKE_ACCOUNT_ID
        )
        iam.put_role_policy(
            RoleName=SPOKE_ROLE_NAME, PolicyName="SpokePermissions", PolicyDocument=json.dumps(permissions)
        )

    def delete_spoke_role(self) -> None:
        """The spoke role is gone (its stack deleted, say): AssumeRole is refused, its sessions may do nothing."""
        iam = self._iam()
        try:
            for name in iam.list_role_policies(RoleName=SPOKE_ROLE_NAME)["PolicyNames"]:
                iam.delete_role_policy(RoleName=SPOKE_ROLE_NAME, PolicyName=name)
            iam.delete_role(RoleName=SPOKE_ROLE_NAME)
        except iam.exceptions.NoSuchEntityException:
            pass

    def set_spoke_trust(self, trust: dict[str, Any]) -> None:
        """Replace the spoke role's trust policy (a wrong one, to test a hub that is not admitted)."""
        self._iam().update_assume_role_policy(RoleName=SPOKE_ROLE_NAME, PolicyDocument=json.dumps(trust))

    def _session_arn(self, access_key_id: str) -> str | None:
        """A role session moto's STS issued (its GetCallerIdentity), or None for any other key."""
        if access_key_id == "testing":
            return None
        with self._iam_lock:
            if access_key_id in self._sessions:
                return self._sessions[access_key_id]
        arn: str | None = moto_caller_arn(self.aws.url, access_key_id)
        arn = arn if arn and ":assumed-role/" in arn else None
        with self._iam_lock:
            self._sessions[access_key_id] = arn
        return arn

    def _session_account(self, access_key_id: str) -> str | None:
        arn = self._session_arn(access_key_id)
        return arn.split(":")[4] if arn else None

    def _may_lookup_events(self, access_key_id: str) -> bool:
        """CloudTrail's check: a role session moto issued needs cloudtrail:LookupEvents from its role's policies."""
        from sandbox.iam import allows
        from sandbox.s3batch import identity_from_arn

        arn = self._session_arn(access_key_id)
        if arn is None:
            return True
        return allows(self._role_permissions(identity_from_arn(arn)), "cloudtrail:LookupEvents", "*")

    def _role_permissions(self, identity: Any) -> list[dict[str, Any]]:
        """The policies of a role session's role, from its account's IAM (moto); none when the role is gone."""
        role_arn = str((identity.get("sessionContext") or {}).get("sessionIssuer", {}).get("arn", ""))
        account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
        iam = self._iam(account)
        try:
            names = iam.list_role_policies(RoleName=name)["PolicyNames"]
            documents = [iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"] for n in names]
        except iam.exceptions.NoSuchEntityException:
            return []
        return [json.loads(d) if isinstance(d, str) else d for d in documents]

    # -- EventBridge: the buses, the forward rules, the hub bus's policy --------------------------------

    def default_bus(self, account_id: str, region: str) -> EventRouter:
        """The default event bus of an account in a region (made on first use, with no rules)."""
        with self._buses_lock:
            bus = self.default_buses.get((account_id, region))
            if bus is None:
                bus = EventRouter(raise_target_errors=False, account=account_id, region=region)
                self.default_buses[(account_id, region)] = bus
            return bus

    def _to_default_bus(self, event: dict[str, Any]) -> None:
        """S3 puts a job's events on its own account's default bus in the job's region."""
        self.default_bus(str(event["account"]), str(event["region"])).put_events(event)

    def _forwarder(self, account_id: str) -> Callable[[dict[str, Any]], Any]:
        def forward(event: dict[str, Any]) -> Any:
            """The forward rule's target: the hub bus, as a PutEvents from ``account_id`` (its rule's role).
            EventBridge retries a refused event, then puts it in the rule's dead-letter queue."""
            try:
                return self.hub_bus.put_events(event, sender_account=account_id)
            except Exception:
                self.forward_dlq.append(event)
                raise

        return forward

    def _hub_bus_admits(self, sender_account: str) -> bool:
        """The hub bus's resource policy: events:PutEvents from the hub's account and the listed members."""
        return sender_account in {account for account, _ in self.accounts()}

    def put_on_hub_bus(self, event: dict[str, Any], *, sender_account: str) -> list[str]:
        """A PutEvents API call on the hub's approvals bus by ``sender_account`` (a forged event, say): the rules
        it reached; PutEventsDenied when the bus's policy does not admit the sender; NotAuthorizedForSource
        when the event claims an ``aws.`` source (S3's, say), as EventBridge refuses it. The event that arrives
        carries the sender's account and the hub's region, whatever ``event`` says, as EventBridge stamps it.
        A spoke's forward rule is not this: its events keep their source and account (``_forwarder``)."""
        return self.hub_bus.put_events_call(event, sender_account=sender_account)

    # -- EventBridge: the rule's Lambda target -------------------------------------------------------

    def _deliver(self, event: dict[str, Any]) -> None:
        """Put the event on the job events queue, as the rule's SQS target does.

        The rule's retry policy and dead-letter queue cover only this step: an event the queue did not
        take goes to ``event_dlq``; one the notifier kept failing on ends in the queue's dead-letter queue
        (``notifier_failures``).
        """
        try:
            self._events_sqs.send_message(QueueUrl=self.aws.job_events_queue_url, MessageBody=json.dumps(event))
        except Exception:  # the queue is gone or unreachable: EventBridge's own dead-letter queue
            self.event_dlq.append(event)

    @property
    def notifier_failures(self) -> list[dict[str, Any]]:
        """The events in the job events dead-letter queue (peeked: they stay there)."""
        sqs = self.aws.client("sqs")
        found: dict[str, dict[str, Any]] = {}
        for _ in range(20):
            got = sqs.receive_message(
                QueueUrl=self.aws.job_events_dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            fresh = [m for m in got if m["MessageId"] not in found]
            if not fresh:
                break
            found.update({m["MessageId"]: json.loads(m["Body"]) for m in fresh})
        return list(found.values())

    def reconcile(self) -> Any:
        """The 15-minute schedule's event, now."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "region": REGION,
            "resources": [],
            "detail": {},
        }
        return self.notifier_handler(event, LambdaContext("notifier", timeout_seconds=60))

    # -- time: the lifecycle tick and the clock ---------------------------------------------------

    def now(self) -> datetime:
        """The product's time (the system clock, moved by ``advance``)."""
        return self.clock() if hasattr(self, "clock") else datetime.now(UTC)

    def tick(self) -> Any:
        """The lifecycle schedule's event (every minute in AWS), now."""
        return self.notifier_handler(dict(c.LIFECYCLE_TICK_EVENT), LambdaContext("notifier", timeout_seconds=60))

    def next_due(self) -> datetime | None:
        """When the earliest lifecycle step of any request is due (the state index, as the sweep reads it)."""
        from approvals.adapters.store import DynamoRequestStore

        store = DynamoRequestStore(self.aws.client("dynamodb"), self.aws.requests_table, self.aws.audit_table)
        soonest = store.open_requests(1)
        return soonest[0].due_at if soonest else None

    def advance(self, by: timedelta, max_ticks: int = 200) -> list[Any]:
        """Move the clock ``by`` forward as a minute's tick would see it pass: the clock stops at each step
        that falls due on the way (a reminder, an escalation, an expiry), the tick runs, the events it
        causes settle; then the clock reaches its end and the tick runs once more. Returns the ticks'
        results."""
        if by < timedelta(0):
            raise ValueError("the clock only moves forward")
        end = self.now() + by
        results = []
        for _ in range(max_ticks):
            due = self.next_due()
            if due is None or due > end:
                break
            if due > self.now():
                self.clock.advance(due - self.now())
            results.append(self.tick())
            self.settle()
            if self.next_due() == due:  # the step failed and is due again at once: the next tick's to retry
                break
        if end > self.now():
            self.clock.advance(end - self.now())
        results.append(self.tick())
        self.settle()
        return results

    # -- driving the story ------------------------------------------------------------------------

    def create_job(
        self,
        *,
        description: str = "Re-tag last month's raw events",
        object_count: int = 48_000,
        confirmation: bool = True,
        operation: dict[str, Any] | None = None,
        principal: str = "pipeline",
        manifest_bucket: str = "example-manifests",
        tags: dict[str, str] | None = None,
        account: str = HUB,
        job_id: str | None = None,
    ) -> str:
        """CreateJob through the real boto3 s3control client, over HTTP to the emulator, signed with the
        credentials of ``principal`` (an IAM ARN, or a name in ``PRINCIPALS``: the person of that name in
        ``account``), as CloudTrail records it. ``account``: ``hub``, ``spoke`` or an account ID (its jobs run in
        ``region_of(account)``). ``job_id`` (sandbox-only): the ID the new job gets, instead of S3's own pick."""
        account_id = account_id_of(account)
        params = example_create_job_params(
            ConfirmationRequired=confirmation,
            Description=description,
            RoleArn=f"arn:aws:iam::{account_id}:role/batch-operations",
        )
        if operation is not None:
            params["Operation"] = operation
        if tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        manifest = f"arn:aws:s3:::{manifest_bucket}/{uuid.uuid4().hex[:8]}.csv"
        params["Manifest"]["Location"]["ObjectArn"] = manifest
        self.jobs.set_manifest_object_count(manifest, object_count)
        if job_id is not None:
            self.jobs.use_job_id(job_id, account_id=account_id)
        people = SPOKE_PRINCIPALS if account_id == SPOKE_ACCOUNT_ID else PRINCIPALS
        client = self.s3control(people.get(principal, principal), account=account_id)
        return str(client.create_job(AccountId=account_id, **params)["JobId"])

    def s3control(self, principal: str | None = None, *, account: str = HUB) -> Any:
        """A boto3 s3control client as a person at a terminal would have, pointed at the emulator, in the region
        of ``account``'s jobs; with ``principal``, its requests are signed with an access key the emulator knows
        as that principal (of its own account: the emulator refuses it any other account's jobs)."""
        import boto3
        from botocore.config import Config

        region = region_of(account)
        session = boto3.session.Session(region_name=region)
        if principal is not None:
            key = "ASIA" + uuid.uuid5(uuid.NAMESPACE_URL, principal).hex[:16].upper()
            self.jobs.add_principal(key, principal)
            session = boto3.session.Session(
                region_name=region, aws_access_key_id=key, aws_secret_access_key="sandbox-secret"
            )
        return session.client(
            "s3control", endpoint_url="http://s3-control.test", config=Config(proxies={"http": self.proxy.url})
        )

    def spoke_session(self, session_name: str = "sandbox-check", *, region: str = SPOKE_REGION) -> Any:
        """A boto3 session holding the spoke role's credentials, got as the hub's functions get them
        (AssumeRole through the STS front, with the sandbox's default key: the hub notifier's role)."""
        import boto3

        sts = boto3.session.Session(region_name=REGION).client("sts", endpoint_url=self.sts.url)
        credentials = sts.assume_role(RoleArn=SPOKE_ROLE_ARN, RoleSessionName=session_name)["Credentials"]
        return boto3.session.Session(
            region_name=region,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def advance_until(self, job_id: str, status: str, timeout: float = 20.0, *, account: str | None = None) -> None:
        self.jobs.advance_until(job_id, status, account_id=None if account is None else account_id_of(account))
        self.settle(timeout)

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until every event is delivered and handled (retries included) and every queued decision applied."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.jobs.drain(timeout=max(0.1, deadline - time.monotonic()))
            if self.notifier.idle() and self.pump.idle() and self.jobs.drain(timeout=0.1) and self.notifier.idle():
                return
            time.sleep(0.05)
        raise TimeoutError("the sandbox did not settle: events or decisions still pending")

    def request_message(self, job_id: str, *, account: str | None = None) -> Any:
        """The approval request for ``job_id`` (of ``account``, when the ID is in several accounts)."""
        wanted = None if account is None else account_id_of(account)
        for message in self.slack.messages(CHANNEL):
            if message.thread_ts not in (None, message.ts) or job_id not in json.dumps(message.blocks):
                continue
            payload = (message.metadata or {}).get("event_payload") or {}
            if wanted is None or payload.get("account_id", ACCOUNT_ID) == wanted:
                return message
        raise LookupError(f"no approval request in {CHANNEL} for job {job_id}")

    def click(self, job_id: str, action_id: str, person: Person, *, account: str | None = None) -> Click:
        message = self.request_message(job_id, account=account)
        payload = self.slack.block_actions_payload(CHANNEL, message.ts, action_id, user=person.id)
        return self.post_payload(payload)

    def submit_reason(self, person: Person, reason: str) -> Click:
        opened = [v for v in self.slack.views() if v.user in (person.id, None)]
        if not opened:
            raise LookupError(f"no modal was opened for {person.name}")
        view = opened[-1]
        payload = {
            "type": "view_submission",
            "team": {"id": self.slack.team_id, "domain": self.slack.team_name},
            "user": {"id": person.id, "username": person.name, "name": person.name, "team_id": self.slack.team_id},
            "api_app_id": self.slack.app_id,
            "trigger_id": self.slack.issue_trigger_id(person.id),
            "view": {
                "id": view.id,
                "team_id": self.slack.team_id,
                "type": "modal",
                "callback_id": view.callback_id,
                "private_metadata": view.private_metadata,
                "hash": "h",
                "blocks": view.view.get("blocks", []),
                "state": {"values": {"reason": {"reason_input": {"type": "plain_text_input", "value": reason}}}},
            },
            "response_urls": [],
        }
        return self.post_payload(payload)

    def post_payload(
        self, payload: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None
    ) -> Click:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post_signed(body, secret=secret, timestamp=timestamp)

    def post_signed(
        self,
        body: str,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Click:
        ts = str(timestamp if timestamp is not None else int(self.now().timestamp()))
        signature = SignatureVerifier(secret or self.signing_secret).generate_signature(timestamp=ts, body=body)
        all_headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
            **(headers or {}),
        }
        request = urllib.request.Request(self.callback_url, data=body.encode(), headers=all_headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Click(
                    response.status,
                    response.read().decode(),
                    time.perf_counter() - started,
                    response.headers.get("x-amzn-RequestId"),
                )
        except urllib.error.HTTPError as error:
            return Click(
                error.code, error.read().decode(), time.perf_counter() - started, error.headers.get("x-amzn-RequestId")
            )

    def _job_ref(self, job_id: str, account: str | None) -> Any:
        from approvals.models.job import JobRef

        if account is None:
            try:
                account_id, region = self.jobs.job_account(job_id)
            except Exception:  # not the emulator's (a forged event's job, say): the hub's
                account_id, region = ACCOUNT_ID, REGION
        else:
            account_id, region = account_id_of(account), region_of(account)
        return JobRef(account_id=account_id, region=region, job_id=job_id)

    def audit(self, job_id: str, *, account: str | None = None) -> list[Any]:
        """The job's audit records (``account``: which account's job, when the ID is in several)."""
        from approvals.adapters.store import DynamoRequestStore

        store = DynamoRequestStore(self.aws.client("dynamodb"), self.aws.requests_table, self.aws.audit_table)
        return store.history(self._job_ref(job_id, account))

    def request_record(self, job_id: str, *, account: str | None = None) -> Any:
        from approvals.adapters.store import DynamoRequestStore

        store = DynamoRequestStore(self.aws.client("dynamodb"), self.aws.requests_table, self.aws.audit_table)
        return store.get(self._job_ref(job_id, account))

    # -- the approver's queue: Slack's side of the Home tab and the slash command ---------------------

    def open_home(self, person: Person) -> list[Any]:
        """``person`` opens the app's Home tab: Slack sends app_home_opened (signed, 3 s, retried as Slack
        retries); the decider publishes their view. Returns Slack's deliveries (sandbox.slack.Delivery)."""
        envelope = self.slack.app_home_opened_event(person.id)
        deliveries = self.slack.send_event(self.api.url_for("/" + c.SLACK_EVENTS_PATH), envelope, self.signing_secret)
        self.settle()
        return deliveries

    def home(self, person: Person) -> str:
        """``person``'s Home tab, rendered as text, after opening it."""
        self.open_home(person)
        return self.slack.render_home(person.id)

    def command(self, text: str, person: Person, channel: str = CHANNEL) -> list[str]:
        """``person`` runs ``text`` (for example ``/s3-approvals pending``): the replies they see."""
        name, _, rest = text.strip().partition(" ")
        before = len(self.slack.ephemerals(person.id))
        form = self.slack.slash_command_form(name, rest.strip(), user=person.id, channel=channel)
        delivery = self.slack.send_command(self.api.url_for("/" + c.SLACK_COMMANDS_PATH), form, self.signing_secret)
        self.settle()
        replies = [self.slack.render_ephemeral(e) for e in self.slack.ephemerals(person.id)[before:]]
        if delivery.status != 200:
            replies.insert(0, f"(Slack: the command failed, HTTP {delivery.status})")
        elif delivery.body:
            answer = delivery.json() if delivery.body.startswith("{") else {"text": delivery.body}
            replies.insert(0, str(answer.get("text", "")))
        return replies

    def click_home(self, job_id: str, action_id: str, person: Person) -> Click:
        """``person`` clicks Approve or Cancel for ``job_id`` on their Home tab (as last published)."""
        return self.post_payload(self.slack.home_block_actions_payload(person.id, job_id, action_id))
