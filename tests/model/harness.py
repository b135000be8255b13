"""The world around one job, with faults injected at each call, and models of SQS and Lambda's async retries.

What is real: ``DecisionService`` and ``RequestService``, ``DynamoRequestStore`` on moto (one server per
test module, behind the serialising front of ``sandbox.aws_local``), ``QueuedWork`` with the real
``SlackRequestVerifier`` reading the signing secret from moto's Secrets Manager, and the decider's
``_observe``, whose metrics are read from ``approvals.observability.metrics``. What is faked: S3 Control
(``tests.fakes.FakeJobs``) and Slack (``tests.fakes.FakeChat``).

A fault is injected where a call leaves the process, and raises what the adapter raises once the SDK
has given up retrying: for DynamoDB the botocore error itself (the store does not map it), for S3
Control and Slack the domain error the adapter maps it to (produced by the real adapter, from the SDK's
error). Each fault is one of:

- throttled, 5xx, timeout: the call did nothing and failed;
- answer lost: the call took effect, then the caller got the timeout error;
- answer lost, retried: the call took effect, its answer was lost, and the SDK sent the identical
  request again; the caller gets the answer to that (a conditional write fails its condition,
  UpdateJobStatus answers JobStatusException, a Slack post is posted again);
- crash: the call took effect, then the invocation died (timeout, out of memory): nothing of the
  invocation runs any more, not even its ``except``/``finally`` blocks' calls.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlencode

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import ClientError, ReadTimeoutError
from hypothesis import settings
from hypothesis.errors import InvalidArgument
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from approvals.adapters.s3control import S3ControlJobs
from approvals.adapters.secrets import SlackSecrets
from approvals.adapters.signature import SlackRequestVerifier
from approvals.adapters.slack import NOT_IDEMPOTENT, SlackChat
from approvals.adapters.store import REQUEST_SK, DynamoRequestStore
from approvals.domain.authorisation import Approvers
from approvals.domain.decisions import AFTER_APPROVE, DecisionResult, DecisionService
from approvals.domain.ports import Claim, JobNotFound
from approvals.domain.reasons import recorded_by
from approvals.domain.requests import EventResult, RequestService
from approvals.domain.work import QueuedWork
from approvals.handlers.decider import RetryLater, _observe
from approvals.models.job import Job, JobRef
from approvals.models.policy import Approvers as RuleApprovers
from approvals.models.policy import Rule
from approvals.models.records import (
    Actor,
    ApprovalRequest,
    AuditEventType,
    AuditRecord,
    DecisionKind,
    Requester,
    RequestState,
)
from approvals.models.slack import ButtonValue, DecisionCommand, SignedSlackRequest
from approvals.names import METRIC_DECISION_FAILED, METRIC_DECISION_STUCK
from approvals.observability import MetricUnit, metrics
from infra import constants as c
from sandbox.aws_local import LocalAws
from sandbox.lambda_async import AWS_RETRY_DELAYS
from tests.fakes import FakeChat, FakeJobs, make_job
from tests.helpers import load_event

T = TypeVar("T")

# The stack's timing (infra.constants): the lease outlasts one decider run; SQS redelivers after the
# visibility timeout, which outlasts the lease; the decisions queue dead-letters on the 5th receive
# (infra/slack_api.py, maxReceiveCount); the notifier is retried twice by Lambda, 1 then 2 minutes later,
# and the reconciliation runs every 15 minutes (infra/notifier.py).
LEASE = c.DEFAULT_DECISION_LEASE_SECONDS
VISIBILITY = c.DECISIONS_QUEUE_VISIBILITY_SECONDS
MAX_RECEIVES = c.DECISIONS_QUEUE_MAX_RECEIVES
STUCK_AFTER = c.decision_stuck_after(LEASE)
ASYNC_ATTEMPTS = 1 + c.NOTIFIER_ASYNC_RETRY_ATTEMPTS
JOB_EVENT_RECEIVES = c.JOB_EVENTS_QUEUE_MAX_RECEIVES
JOB_EVENT_VISIBILITY = c.JOB_EVENTS_QUEUE_VISIBILITY_SECONDS
RETRY_DELAYS = AWS_RETRY_DELAYS
RECONCILE_EVERY = timedelta(minutes=15)

ACCOUNT = "123456789012"
REGION = "us-east-1"
CHANNEL = "C0APPROVALS"
TEAM = "T0APPROVE"
GROUP = "S0APPROVERS"
SIGNING_SECRET = "model-signing-secret"
BOT_TOKEN = "xoxb-model-token"
START = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

ALICE = Actor(user_id="UALICE001", name="alice", team_id=TEAM)  # a named approver
BOB = Actor(user_id="UBOB00001", name="bob", team_id=TEAM)  # a named approver
GINA = Actor(user_id="UGINA0001", name="gina", team_id=TEAM)  # an approver through the group
MALLORY = Actor(user_id="UMALLORY1", name="mallory", team_id=TEAM)  # nobody's approver
DAVE = Actor(user_id="UDAVE0001", name="dave", team_id=TEAM)  # an approver named by a rule only
APPROVERS = Approvers(frozenset({ALICE.user_id, BOB.user_id}), (GROUP,))
# Who created the job when the test does not say: a principal that maps to nobody in Slack.
UNMAPPED_REQUESTER = Requester(
    principal_arn=f"arn:aws:iam::{ACCOUNT}:user/batch-operator", principal_type="IAMUser", found_in="event"
)


def quorum_rule(quorum: int, *, name: str = "four-eyes") -> Rule:
    """A rule that needs ``quorum`` distinct approvals from Alice, Bob, Dave (named) and Gina (the group)."""
    return Rule(
        name=name,
        quorum=quorum,
        approvers=RuleApprovers(users=[ALICE.user_id, BOB.user_id, DAVE.user_id], groups=[GROUP]),
    )


def requester_of(actor: Actor | None) -> Requester:
    """The job's creator, as the notifier records it: ``actor`` in Slack, or a principal that maps to nobody."""
    if actor is None:
        return UNMAPPED_REQUESTER
    return Requester(
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/{actor.name}",
        principal_type="IAMUser",
        slack_user_id=actor.user_id,
        mapped_by="mapping",
        found_in="event",
    )


# -- faults -------------------------------------------------------------------------------------------


class Fault(StrEnum):
    THROTTLED = "throttled"
    SERVER_ERROR = "5xx"
    TIMEOUT = "timeout"
    ANSWER_LOST = "answer lost"
    RETRIED = "answer lost, retried"
    CRASH = "crash right after"


BEFORE = frozenset({Fault.THROTTLED, Fault.SERVER_ERROR, Fault.TIMEOUT})  # nothing was done


class Crash(BaseException):
    """The invocation died right after a call took effect. A BaseException, like the end of a process:
    the product's ``except Exception`` cannot catch it, and every later call of the invocation raises it."""


ErrorFor = Callable[[Fault], BaseException]


@dataclass
class Injection:
    step: str
    fault: Fault
    times: int | None = 1  # None: every call, for the whole case (an outage)
    skip: int = 0  # calls of the step that go through first
    fired: int = 0

    def due(self) -> bool:
        if self.skip:
            self.skip -= 1
            return False
        return self.times is None or self.fired < self.times


class Faults:
    """Where faults are planned (by step name) and applied; knows whether the invocation is still alive."""

    def __init__(self) -> None:
        self.planned: dict[str, Injection] = {}
        self.dead = False

    def inject(self, step: str, fault: Fault, times: int | None = 1, *, skip: int = 0) -> Injection:
        injection = Injection(step, fault, times, skip)
        self.planned[step] = injection
        return injection

    def new_invocation(self) -> None:
        self.dead = False

    @contextmanager
    def within(self, step: str, fault: Fault) -> Iterator[Injection]:
        """``fault`` on the first call of ``step`` within the block, if there is one; none after it."""
        injection = self.inject(step, fault)
        try:
            yield injection
        finally:
            self.planned.pop(step, None)

    def call(self, step: str | None, effect: Callable[[], T], error: ErrorFor, *, sdk_retries: bool = True) -> T:
        """``effect`` under the step's planned fault. ``sdk_retries=False`` for a call the SDK never resends
        after a lost answer: "answer lost, retried" is then just a lost answer."""
        if self.dead:
            raise Crash(f"{step or 'a call'} after the invocation died")
        injection = self.planned.get(step) if step else None
        if injection is None or not injection.due():
            return effect()
        injection.fired += 1
        if injection.fault in BEFORE:
            raise error(injection.fault)
        effect()
        if injection.fault == Fault.ANSWER_LOST or (injection.fault == Fault.RETRIED and not sdk_retries):
            raise error(Fault.TIMEOUT)
        if injection.fault == Fault.RETRIED and sdk_retries:
            return effect()  # the SDK's retry of the identical request; its answer is the one the caller sees
        self.dead = True
        raise Crash(f"died right after {step}")


def _raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except Exception as exc:  # the point: what the adapter raises
        return exc
    raise AssertionError("the adapter did not raise")


class _Raising:
    """An SDK client whose every method raises ``error``: to read what an adapter makes of it."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*_: Any, **__: Any) -> Any:
            raise self._error

        return fail


def _client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code} (injected)"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


def dynamodb_error(operation: str) -> ErrorFor:
    """What botocore raises from a DynamoDB call once its retries are spent."""
    name = "".join(part.title() for part in operation.split("_"))

    def error(fault: Fault) -> BaseException:
        if fault == Fault.THROTTLED:
            return _client_error("ProvisionedThroughputExceededException", 400, name)
        if fault == Fault.SERVER_ERROR:
            return _client_error("InternalServerError", 500, name)
        return ReadTimeoutError(endpoint_url=f"https://dynamodb.{REGION}.amazonaws.com/")

    return error


def s3control_error(ref: JobRef) -> ErrorFor:
    """What ``S3ControlJobs`` raises when botocore gives up: JobsUnavailable, made by the adapter itself."""

    def error(fault: Fault) -> BaseException:
        if fault == Fault.THROTTLED:
            cause: BaseException = _client_error("TooManyRequestsException", 429, "DescribeJob")
        elif fault == Fault.SERVER_ERROR:
            cause = _client_error("InternalError", 500, "DescribeJob")
        else:
            cause = ReadTimeoutError(endpoint_url=f"https://{ACCOUNT}.s3-control.{REGION}.amazonaws.com/")
        return _raised(lambda: S3ControlJobs(lambda _account, _region, _job: _Raising(cause)).describe(ref))

    return error


SLACK_CALLS: dict[str, Callable[[SlackChat], object]] = {
    "chat.postMessage": lambda chat: chat.post(CHANNEL, "text", [], None),
    "chat.update": lambda chat: chat.update(CHANNEL, "1700000000.000100", "text", []),
    "chat.postEphemeral": lambda chat: chat.ephemeral(CHANNEL, ALICE.user_id, "text"),
    "usergroups.users.list": lambda chat: chat.group_members(GROUP),
    "users.info": lambda chat: chat.display_name(ALICE.user_id),
    "conversations.history": lambda chat: chat._call("conversations_history", channel=CHANNEL),
}


def slack_error(method: str) -> ErrorFor:
    """What ``SlackChat`` raises when slack_sdk gives up: ChatUnavailable, made by the adapter itself."""

    def error(fault: Fault) -> BaseException:
        if fault == Fault.THROTTLED:
            cause: BaseException = SlackApiError("ratelimited", {"ok": False, "error": "ratelimited"})  # type: ignore[arg-type]
        elif fault == Fault.SERVER_ERROR:
            cause = SlackApiError("fatal_error", {"ok": False, "error": "fatal_error"})  # type: ignore[arg-type]
        else:
            cause = TimeoutError("The read operation timed out")
        chat = SlackChat(lambda: _Raising(cause))  # type: ignore[arg-type, return-value]
        return _raised(lambda: SLACK_CALLS[method](chat))

    return error


# -- the outside world, with faults -----------------------------------------------------------------


class FaultyDynamoDB:
    """A boto3 DynamoDB client whose first request within a store step may meet that step's fault."""

    def __init__(self, client: Any, faults: Faults) -> None:
        self._client = client
        self._faults = faults
        self._step: str | None = None

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._step = name
        try:
            yield
        finally:
            self._step = None

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        method = getattr(self._client, operation)

        def call(**kwargs: Any) -> Any:
            step, self._step = self._step, None  # the step's own request; what follows it runs plain
            return self._faults.call(step, lambda: method(**kwargs), dynamodb_error(operation))

        return call


class FaultyStore:
    """``DynamoRequestStore`` on a ``FaultyDynamoDB``: names each store call's step for the faults
    ("claim" for claim_decision). With ``watch_claims``, keeps what each won claim took over."""

    STEPS = {
        "add_vote": "vote",
        "finish_decision": "record",
        "put_audit": "audit",
        "claim_posting": "claim_posting",
        "mark_posted": "mark_posted",
    }

    def __init__(self, store: DynamoRequestStore, db: FaultyDynamoDB, *, watch_claims: bool = False) -> None:
        self._store = store
        self._db = db
        self._watch_claims = watch_claims
        self.claims: list[tuple[ApprovalRequest | None, datetime, Claim]] = []  # (record before, now, claim won)

    def claim_decision(
        self, command: DecisionCommand, now: datetime, lease_seconds: int, without_requester: bool = False
    ) -> Claim:
        before = self._store.get(command.job) if self._watch_claims else None
        with self._db.step("claim"):
            claim = self._store.claim_decision(command, now, lease_seconds, without_requester)
        if self._watch_claims and claim.won:
            self.claims.append((before, now, claim))
        return claim

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        step = self.STEPS.get(name)
        if step is None:
            return attr

        def stepped(*args: Any, **kwargs: Any) -> Any:
            with self._db.step(step):
                return attr(*args, **kwargs)

        return stepped


class FaultyJobs:
    """``FakeJobs`` behind faults; keeps every status change UpdateJobStatus made (answered or not)."""

    def __init__(self, fake: FakeJobs, faults: Faults) -> None:
        self.fake = fake
        self._faults = faults
        self.changes: list[tuple[str, str, str]] = []  # (status before, status after, StatusUpdateReason)
        self.reads: list[bool] = []  # each DescribeJob: answered (True) or failed (False)
        # Called with (requested status, StatusUpdateReason) as each UpdateJobStatus is sent, before any fault.
        self.on_update: Callable[[str, str], None] | None = None

    def describe(self, ref: JobRef) -> Job:
        try:
            job = self._faults.call("describe", lambda: self.fake.describe(ref), s3control_error(ref))
        except BaseException:
            self.reads.append(False)
            raise
        self.reads.append(True)
        return job

    def update_status(self, ref: JobRef, requested: str, reason: str) -> str:
        if self.on_update is not None:
            self.on_update(requested, reason)

        def effect() -> str:
            before = self.fake.jobs[ref.job_id].status
            after = self.fake.update_status(ref, requested, reason)
            self.changes.append((before, after, reason))
            return after

        return self._faults.call("update_status", effect, s3control_error(ref))

    def list_awaiting(self, account_id: str, region: str, limit: int | None = None) -> list[str]:
        return self.fake.list_awaiting(account_id, region, limit)


class FaultyChat:
    """``FakeChat`` behind faults. Steps: chat.postMessage (the request, not thread replies), chat.update,
    chat.postEphemeral."""

    def __init__(self, fake: FakeChat, faults: Faults) -> None:
        self.fake = fake
        self._faults = faults
        self.requests_posted: list[str] = []  # the ts of every request message Slack posted

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        metadata: dict[str, Any] | None,
        thread_ts: str | None = None,
    ) -> str:
        def effect() -> str:
            ts = self.fake.post(channel, text, blocks, metadata, thread_ts)
            if thread_ts is None:
                self.requests_posted.append(ts)
            return ts

        step = "chat.postMessage" if thread_ts is None else "chat.postMessage (thread)"
        resent = "chat.postMessage" not in NOT_IDEMPOTENT  # as adapters/slack.py web_client retries it
        return self._faults.call(step, effect, slack_error("chat.postMessage"), sdk_retries=resent)

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self._faults.call(
            "chat.update", lambda: self.fake.update(channel, ts, text, blocks), slack_error("chat.update")
        )

    def ephemeral(self, channel: str, user_id: str, text: str) -> None:
        self._faults.call(
            "chat.postEphemeral",
            lambda: self.fake.ephemeral(channel, user_id, text),
            slack_error("chat.postEphemeral"),
        )

    def group_members(self, group_id: str) -> frozenset[str]:
        return self._faults.call(None, lambda: self.fake.group_members(group_id), slack_error("usergroups.users.list"))

    def cached_group_members(self, group_id: str) -> frozenset[str] | None:
        return self.fake.cached_group_members(group_id)

    def display_name(self, user_id: str) -> str | None:
        return self._faults.call(None, lambda: self.fake.display_name(user_id), slack_error("users.info"))

    def user_by_email(self, email: str) -> str | None:
        return self._faults.call(None, lambda: self.fake.user_by_email(email), slack_error("users.info"))

    def find_own_message(self, channel: str, since: datetime, metadata: dict[str, Any]) -> str | None:
        return self._faults.call(
            "conversations.history",
            lambda: self.fake.find_own_message(channel, since, metadata),
            slack_error("conversations.history"),
        )


class Clock:
    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# -- one job and everything around it -----------------------------------------------------------------


@dataclass
class Backend:
    """moto with the product's tables and secret, and the clients on it, made once per test module: each
    case gets a job of its own (a fresh ID), so cases share the tables."""

    aws: LocalAws
    dynamodb: Any
    secretsmanager: Any

    @classmethod
    def provision(cls, aws: LocalAws) -> Backend:
        aws.provision(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
        return cls(aws, aws.client("dynamodb"), aws.client("secretsmanager"))


@dataclass
class Run:
    """One message or event, as the queue or Lambda saw it."""

    attempts: int
    result: Any = None
    errors: list[str] = field(default_factory=list)
    gave_up: bool = False  # dead-lettered (SQS) or sent to the on-failure destination (Lambda async)


class World:
    """One S3 Batch Operations job awaiting confirmation, and the functions that act on it."""

    def __init__(self, backend: Backend, *, watch_claims: bool = False) -> None:
        aws = backend.aws
        self._backend = backend
        self.ref = JobRef(account_id=ACCOUNT, region=REGION, job_id=f"job-{uuid.uuid4().hex[:24]}")
        self.faults = Faults()
        self.clock = Clock()
        self.jobs = FaultyJobs(FakeJobs(), self.faults)
        self.jobs.fake.add(make_job(self.ref.job_id))
        self.chat = FaultyChat(FakeChat({GROUP: {GINA.user_id}}, clock=self.clock), self.faults)
        self.db = FaultyDynamoDB(backend.dynamodb, self.faults)
        self.records = DynamoRequestStore(backend.dynamodb, aws.requests_table, aws.audit_table)  # to look, faultless
        self.store = FaultyStore(
            DynamoRequestStore(self.db, aws.requests_table, aws.audit_table), self.db, watch_claims=watch_claims
        )
        self.decisions = DecisionService(
            jobs=self.jobs,
            store=self.store,  # type: ignore[arg-type]
            chat=self.chat,
            approvers=APPROVERS,
            members_of=self.chat.group_members,
            clock=self.clock,
            large_job_threshold=1_000_000,
            lease_seconds=LEASE,
        )
        self.requests = RequestService(
            jobs=self.jobs,
            store=self.store,  # type: ignore[arg-type]
            chat=self.chat,
            channel=CHANNEL,
            clock=self.clock,
            large_job_threshold=1_000_000,
        )
        secrets = SlackSecrets(SecretsProvider(boto3_client=backend.secretsmanager), aws.secret_name)
        self.work = QueuedWork(
            decisions=self.decisions,
            verified=SlackRequestVerifier(secrets).verify_signed,
            teams=(TEAM,),
            clock=self.clock,
        )
        self.dead_letters: list[str] = []
        self.failure_destination: list[str] = []
        self.message_ts: str | None = None
        self._action_ts = 0

    # -- the notifier ---------------------------------------------------------------------------

    def follow(self) -> EventResult | None:
        """``notifier.follow`` for this job: the event's effect; a job S3 does not know is dropped."""
        try:
            return self.requests.on_job_event(self.ref)
        except JobNotFound:
            return None

    def post_request(self, rule: Rule | None = None, requester: Requester | None = None) -> str:
        """The notifier posts the approval request (no faults planned yet).

        With ``rule`` (or ``requester``), the request then records who created the job (``requester``, by
        default a principal that maps to nobody in Slack) and the rule that applies, as the notifier does once
        CloudTrail has said.
        """
        result = self.follow()
        assert result is not None
        assert result.request is not None
        assert result.request.message_ts
        self.message_ts = result.request.message_ts
        if rule is not None or requester is not None:
            recorded = self.records.set_requester(self.ref, requester or UNMAPPED_REQUESTER, rule)
            assert recorded is not None, "the requester was recorded before"
        return self.message_ts

    def votes(self) -> dict[str, str]:
        """Every vote on the request item, as DynamoDB holds it (not trimmed to the quorum): voter's
        Slack ID → the decision ID of the click that cast it."""
        item = self._backend.dynamodb.get_item(
            TableName=self._backend.aws.requests_table,
            Key={"pk": {"S": self.ref.key}, "sk": {"S": REQUEST_SK}},
            ConsistentRead=True,
        ).get("Item", {})
        votes = item.get("votes", {}).get("M", {})
        return {user: vote["M"]["decision_id"]["S"] for user, vote in votes.items()}

    def invoke_async(self, function: Callable[[], T], name: str) -> Run:
        """Lambda's asynchronous invocation: one try and two retries (1 and 2 minutes apart), then the
        on-failure destination. A crash is a function error, retried like any other."""
        return self._retried(function, name, [0.0, *RETRY_DELAYS[: ASYNC_ATTEMPTS - 1]])

    def invoke_queued(self, function: Callable[[], T], name: str) -> Run:
        """The job events queue: a failed receive (an exception, a crash) comes back after the visibility
        timeout; after the queue's maximum receives the event moves to its dead-letter queue (alarmed)."""
        return self._retried(function, name, [0.0] + [JOB_EVENT_VISIBILITY] * (JOB_EVENT_RECEIVES - 1))

    def _retried(self, function: Callable[[], T], name: str, waits: list[float]) -> Run:
        """One attempt after each wait (seconds on this clock); when every one failed, ``name`` ends in the
        failure destination."""
        run = Run(attempts=0)
        for wait in waits:
            self.clock.advance(wait)
            self.faults.new_invocation()
            run.attempts += 1
            try:
                run.result = function()
            except (Exception, Crash) as exc:
                run.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            return run
        run.gave_up = True
        self.failure_destination.append(name)
        return run

    def reconcile_decisions(self) -> Run:
        """The reconciliation's part for decisions (``notifier.recover_stuck``, on this clock): every claim
        held past its lease is counted (DecisionStuck, alarmed) and finished."""

        def recover_stuck() -> list[DecisionResult]:
            results = [r for r in self.decisions.recover_stuck(STUCK_AFTER) if r.request and r.request.job == self.ref]
            for _ in results:
                metrics.add_metric(name=METRIC_DECISION_STUCK, unit=MetricUnit.Count, value=1)
            return results

        return self.invoke_async(recover_stuck, "reconciliation")

    # -- the decider ----------------------------------------------------------------------------

    def click(self, actor: Actor = ALICE) -> str:
        """A signed Approve click on the request message, queued as the callback queues it."""
        assert self.message_ts, "post the request first"
        self._action_ts += 1
        payload = load_event("slack_block_actions_approve")
        payload["user"].update(id=actor.user_id, username=actor.name, name=actor.name, team_id=TEAM)
        payload["team"]["id"] = TEAM
        payload["channel"]["id"] = CHANNEL
        payload["message"]["ts"] = self.message_ts
        payload["container"].update(message_ts=self.message_ts, channel_id=CHANNEL)
        payload["actions"][0]["value"] = ButtonValue.from_ref(self.ref).encode()
        payload["actions"][0]["action_ts"] = f"{int(self.clock().timestamp())}.{self._action_ts:06d}"
        body = urlencode({"payload": json.dumps(payload)})
        timestamp = str(int(self.clock().timestamp()))
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
        return SignedSlackRequest(
            intent="decide", body=body, timestamp=timestamp, signature=signature, correlation_id=f"req-{uuid.uuid4()}"
        ).model_dump_json()

    def command(self, actor: Actor, decision: DecisionKind = "approve") -> DecisionCommand:
        """What the decider reads from a signed click (interactions.read): one decision ID per click."""
        assert self.message_ts, "post the request first"
        self._action_ts += 1
        return DecisionCommand(
            job=self.ref,
            decision=decision,
            actor=actor,
            reason="wrong manifest" if decision == "cancel" else None,
            decision_id=f"{actor.user_id}:{int(self.clock().timestamp())}.{self._action_ts:06d}",
            channel=CHANNEL,
            message_ts=self.message_ts,
        )

    def handle_record(self, body: str) -> DecisionResult:
        """``decider.handle_record`` with this world's dependencies."""
        result = self.work.handle(body)
        _observe(result)
        if result.retry_later:
            raise RetryLater(f"{result.outcome.value}: {result.detail or 'the claim is held'}")
        return result

    def deliver(self, body: str) -> Run:
        """SQS: a batch item failure (an exception, RetryLater, a crash) comes back after the visibility
        timeout; the 5th failed receive moves the message to the dead-letter queue (alarmed on depth)."""
        self.jobs.reads.clear()  # what the decider read from S3, from here on
        run = Run(attempts=0)
        for _ in range(MAX_RECEIVES):
            self.faults.new_invocation()
            run.attempts += 1
            try:
                run.result = self.handle_record(body)
            except (Exception, Crash) as exc:
                run.errors.append(f"{type(exc).__name__}: {exc}")
                self.clock.advance(VISIBILITY)
                continue
            return run
        run.gave_up = True
        self.dead_letters.append(body)
        return run

    # -- what there is to see -------------------------------------------------------------------

    def observe(self) -> Seen:
        request = self.records.get(self.ref)
        history = self.records.history(self.ref)
        updates = [
            call
            for call in self.chat.fake.calls_to("chat.update")
            if (call["channel"], call["ts"]) == (CHANNEL, self.message_ts)
        ]
        posted = list(self.chat.requests_posted)
        return Seen(
            job=self.jobs.fake.jobs[self.ref.job_id],
            changes=list(self.jobs.changes),
            request=request,
            audit=history,
            posted=posted,
            message=updates[-1] if updates else self._as_posted(),
            updated=bool(updates),
            ephemerals=self.chat.fake.calls_to("chat.postEphemeral"),
            metrics=set(metrics.metric_set),
            dead_letters=len(self.dead_letters),
            failure_destination=list(self.failure_destination),
            last_read_answered=self.jobs.reads[-1] if self.jobs.reads else None,
        )

    def _as_posted(self) -> dict[str, Any] | None:
        posted = [call for call in self.chat.fake.calls_to("chat.postMessage") if call["thread_ts"] is None]
        return posted[0] if posted else None


@dataclass
class Seen:
    """Everything a person or an operator could look at once the dust settled."""

    job: Job
    changes: list[tuple[str, str, str]]
    request: ApprovalRequest | None
    audit: list[AuditRecord]
    posted: list[str]  # the ts of each request message posted
    message: dict[str, Any] | None  # the request message as it shows now (last update, else as posted)
    updated: bool
    ephemerals: list[dict[str, Any]]
    metrics: set[str]
    dead_letters: int
    failure_destination: list[str]
    last_read_answered: bool | None

    def taken(self) -> list[AuditRecord]:
        return [r for r in self.audit if r.event_type == AuditEventType.DECISION_TAKEN]

    def of_type(self, event_type: AuditEventType) -> list[AuditRecord]:
        return [r for r in self.audit if r.event_type == event_type]

    @property
    def shows_buttons(self) -> bool:
        return self.message is not None and any(b.get("type") == "actions" for b in self.message["blocks"])

    @property
    def headline(self) -> str:
        if self.message is None:
            return ""
        return str(self.message["blocks"][0]["text"]["text"])

    def told(self, actor: Actor) -> bool:
        return any(e["user"] == actor.user_id for e in self.ephemerals)


# -- what consistent means -----------------------------------------------------------------------------

ALARMED_METRICS = frozenset({METRIC_DECISION_FAILED, METRIC_DECISION_STUCK})


def decision_problems(seen: Seen, *, moved_on: bool) -> list[str]:
    """Where S3, the record, the message, the audit and the alarms disagree after Alice's approve click."""
    problems: list[str] = []
    request = seen.request
    state = request.state if request else None
    dead_lettered = seen.dead_letters > 0
    alarmed = bool(seen.metrics & ALARMED_METRICS) or dead_lettered or bool(seen.failure_destination)
    ours = seen.job.status in AFTER_APPROVE and recorded_by(seen.job.status_update_reason, "approve", ALICE)
    taken = seen.taken()

    if len(seen.changes) > (0 if moved_on else 1):
        problems.append(f"UpdateJobStatus changed the job {len(seen.changes)} times")
    if len(taken) > 1:
        problems.append(f"{len(taken)} decision_taken records for one decision")
    if taken and not ours:
        problems.append("a decision_taken record, but S3 does not carry that decision")
    if any((r.actor_id, r.action, r.status_after) != (ALICE.user_id, "approve", "Ready") for r in taken):
        problems.append("the decision_taken record names another person, decision or status")

    if state == RequestState.APPROVED:
        if not ours:
            problems.append("the record says approved, but S3 does not carry Alice's approval")
        if not taken and not dead_lettered:
            problems.append("approved without its decision_taken record (and nothing left to retry)")
        if (seen.shows_buttons or "approved" not in seen.headline) and not dead_lettered:
            problems.append("the message does not show the approval (and nothing left to retry)")
    elif state == RequestState.PENDING:
        if ours:
            problems.append("released to pending although S3 carries Alice's approval")
        if not seen.job.awaiting_confirmation and seen.last_read_answered:
            problems.append(f"released to pending although S3 answered that the job is {seen.job.status}")
        if not seen.shows_buttons:
            problems.append("the request is open again, but the message shows no buttons")
        if not alarmed:
            problems.append("the decision did not happen and nothing alarmed")
    elif state == RequestState.CLOSED:
        if seen.job.awaiting_confirmation or ours:
            problems.append(f"closed, but the job is {seen.job.status} ({seen.job.status_update_reason})")
        if seen.shows_buttons and not dead_lettered:
            problems.append("closed, but the message still shows buttons")
    elif state == RequestState.DECIDING:
        if not alarmed:
            problems.append("left deciding, and nothing alarmed")
    else:
        problems.append(f"the record is {state}")

    shown = seen.updated and not seen.shows_buttons
    if not (seen.told(ALICE) or shown or dead_lettered):
        problems.append("Alice was never told what became of her click")
    return problems


def posting_problems(seen: Seen, when: str) -> list[str]:
    """Where Slack, the record and the audit disagree about the request for a job awaiting confirmation."""
    problems: list[str] = []
    gave_up = bool(seen.failure_destination)
    requested = seen.of_type(AuditEventType.APPROVAL_REQUESTED)
    request = seen.request
    if len(seen.posted) > 1:
        problems.append(f"{when}: {len(seen.posted)} request messages posted for one job")
    if not seen.posted and not gave_up:
        problems.append(f"{when}: no request posted, and nothing in the on-failure destination")
    if len(requested) > 1:
        problems.append(f"{when}: {len(requested)} approval_requested records")
    if requested and not seen.posted:
        problems.append(f"{when}: approval_requested recorded, but no message was posted")
    if len(seen.posted) == 1 and not gave_up:
        if request is None or request.state != RequestState.PENDING or request.message_ts != seen.posted[0]:
            shown = (request.state.value, request.message_ts) if request else None
            problems.append(f"{when}: the record {shown} does not point at the posted message {seen.posted[0]}")
        if len(requested) != 1:
            problems.append(f"{when}: a request was posted, but approval_requested was not recorded")
    return problems


# -- the decisions queue under a state machine ------------------------------------------------------


@dataclass
class Message:
    """A click on the decisions queue."""

    command: DecisionCommand
    visible_at: datetime
    receives: int = 0


def stale(request: ApprovalRequest, now: datetime) -> bool:
    """A claim held past its lease: another delivery may take it over."""
    return request.deciding_since is not None and request.deciding_since < now - timedelta(seconds=LEASE)


def stuck(request: ApprovalRequest, now: datetime) -> bool:
    """Past the point where the claim's click could still come back from the queue (the reconciliation's mark)."""
    return request.deciding_since is not None and request.deciding_since < now - timedelta(seconds=STUCK_AFTER)


PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def machine_budget(budgets: dict[str, tuple[int, int]]) -> tuple[int, int, int]:
    """(max_examples, stateful_step_count, pytest-timeout seconds) for the loaded profile: a generous 0.2 s a
    step, and 5 minutes to shrink."""
    examples, steps = budgets.get(PROFILE, budgets["ci"])
    return examples, steps, 300 + examples * steps // 5


def machine_settings(examples: int, steps: int) -> settings:
    """The loaded profile's settings (tests/property/conftest.py registers them when it is collected too),
    with a machine's budget."""
    try:
        parent = settings.get_profile(PROFILE)
    except InvalidArgument:  # not registered in this run
        parent = settings(deadline=None, derandomize=False, print_blob=True)
    return settings(parent, max_examples=examples, stateful_step_count=steps, deadline=None)


class QueueModel:
    """The decisions queue as SQS runs it, for a state machine over ``world``: a failed receive comes back
    after the visibility timeout, the last one goes to the dead-letter queue. The machine sets
    ``world``, ``in_flight``, ``surprises`` and ``settled``."""

    world: World
    in_flight: list[Message]
    surprises: list[str]  # exceptions no injected fault explains
    settled: bool  # nothing in flight, and a reconciliation ran past the lease of any claim

    def _record(self) -> ApprovalRequest:
        request = self.world.records.get(self.world.ref)
        assert request is not None
        return request

    def _visible(self) -> list[Message]:
        return [m for m in self.in_flight if m.visible_at <= self.world.clock()]

    def _received(self, command: DecisionCommand) -> None:
        """Called as each delivery reaches the decider."""

    def _apply(self, command: DecisionCommand) -> bool:
        """One receive: True when the message is done with (handled, and not to come back later)."""
        self.world.faults.new_invocation()
        self._received(command)
        try:
            result = self.world.decisions.apply(command)
        except Crash:
            return False
        except Exception as exc:  # an injected lost answer is handled inside; anything else is a surprise
            self.surprises.append(f"{command.decision_id}: {type(exc).__name__}: {exc}")
            return False
        return not result.retry_later

    def _receive(self, message: Message) -> None:
        self.settled = False
        message.receives += 1
        if self._apply(message.command):
            self.in_flight.remove(message)
            return
        message.visible_at = self.world.clock() + timedelta(seconds=VISIBILITY)
        if message.receives >= MAX_RECEIVES:
            self.in_flight.remove(message)
            self.world.dead_letters.append(message.command.decision_id)
