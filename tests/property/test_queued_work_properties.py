"""Properties of the decider's reading of a queue message (``QueuedWork.handle``): whatever the queue holds,
it never raises, and S3 is asked to change a job only for a request Slack provably signed that an approver
made, in the served workspace, for a job that waits for a decision.

A real DecisionService over DynamoRequestStore (moto, tables once per module) with FakeJobs and FakeChat,
and the real SlackRequestVerifier over the module's Slack secret. Each example gets a fresh job with a
pending request (its ID put where the samples say PENDING_JOB), fresh fakes, and a clock fixed at NOW.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from hypothesis import Phase, event, given, note, reject, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from approvals.adapters.secrets import SlackSecrets
from approvals.adapters.signature import SlackRequestVerifier
from approvals.adapters.store import DynamoRequestStore
from approvals.domain.authorisation import Approvers
from approvals.domain.decisions import DecisionResult, DecisionService, Outcome
from approvals.domain.work import QueuedWork
from approvals.models.job import JobRef
from sandbox.aws_local import LocalAws
from tests.fakes import FakeChat, FakeJobs, make_job, post_request
from tests.property.slack_payloads import (
    ACCOUNT_ID,
    ALICE,
    BOT_TOKEN,
    CHANNEL,
    FORM_EXTRAS,
    GINA,
    GROUP,
    MAX_BODY_BYTES,
    MESSAGE_TS,
    PYDANTIC_JSON_MAX_DEPTH,
    REGION,
    SERVED_TEAM,
    SIGNING_SECRET,
    Kind,
    Reading,
    all_unicode,
    approve_click,
    form,
    other_payloads,
    payload_docs,
    payload_text,
    read_body,
    slack_signature,
    unicode,
)
from tests.property.strategies import (
    awkward_text,
    deep_json_text,
    depth,
    examples,
    json_values,
    mutated,
    near_misses,
)

NOW = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()), UTC)  # whole seconds, as Slack's timestamps
NOW_TS = int(NOW.timestamp())
APPROVERS = frozenset({ALICE, GINA})  # ALICE by name, GINA through GROUP
INTENTS = ("decide", "refuse_cancel", "modal_failed", "invalid")
FIELDS = {"kind", "intent", "body", "timestamp", "signature", "correlation_id"}
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LAST_SECOND_OF_9999 = 253_402_300_799  # datetime's limit; the timestamp pattern allows up to 15 digits


@dataclass
class World:
    aws: LocalAws
    store: DynamoRequestStore
    verifier: SlackRequestVerifier

    def pending_job(self) -> JobRef:
        """A job that waits for a decision, with its request posted to Slack."""
        ref = JobRef(account_id=ACCOUNT_ID, region=REGION, job_id="job-" + uuid.uuid4().hex[:16])
        post_request(self.store, ref, NOW, CHANNEL, MESSAGE_TS)
        return ref


@pytest.fixture(scope="module")
def world(moto_server: LocalAws) -> World:
    aws = LocalAws(server=moto_server.server, url=moto_server.url).provision(BOT_TOKEN, SIGNING_SECRET)
    secrets = SlackSecrets(SecretsProvider(boto3_client=aws.client("secretsmanager")), aws.secret_name)
    store = DynamoRequestStore(aws.client("dynamodb"), aws.requests_table, aws.audit_table)
    return World(aws, store, SlackRequestVerifier(secrets))


@dataclass
class Decider:
    work: QueuedWork
    jobs: FakeJobs
    chat: FakeChat
    job: JobRef


@pytest.fixture(scope="module")
def fresh(world: World) -> Any:
    """A factory: a decider with fresh fakes and (unless told not to) a fresh pending job, per example."""

    def make(*, pending: bool = True) -> Decider:
        ref = (
            world.pending_job()
            if pending
            else JobRef(account_id=ACCOUNT_ID, region=REGION, job_id="job-never-requested")
        )
        jobs, chat = FakeJobs(), FakeChat({GROUP: {GINA}})
        jobs.add(make_job(ref.job_id))
        service = DecisionService(
            jobs=jobs,
            store=world.store,
            chat=chat,
            approvers=Approvers(frozenset({ALICE}), (GROUP,)),
            members_of=chat.group_members,
            clock=lambda: NOW,
            large_job_threshold=1_000_000,
        )
        work = QueuedWork(
            decisions=service, verified=world.verifier.verify_signed, teams=(SERVED_TEAM,), clock=lambda: NOW
        )
        return Decider(work, jobs, chat, ref)

    return make


# -- messages --------------------------------------------------------------------------------------


@dataclass
class Message:
    """A queue message to build once the example's pending job is known."""

    doc: Any = None  # a sample payload (PENDING_JOB where the job goes), or
    body: str | None = None  # a body as it is
    extra: str = ""
    intent: Any = "decide"
    timestamp: str | int = 0  # an offset from NOW, or the timestamp as written
    signing: str = "right"
    fields: dict[str, Any] = field(default_factory=dict)  # correlation_id, kind, extras; None value: drop
    mutate: Any = None  # a mutation of the whole message, drawn later

    def body_for(self, job_id: str) -> str:
        return self.body if self.body is not None else form(payload_text(self.doc, job_id), self.extra)


def sign(body: str, timestamp: str, how: str) -> str:
    if how == "right" and unicode(body):
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
        assert signature is not None
        return signature
    if how == "right":
        return slack_signature(SIGNING_SECRET, timestamp, body)
    if how == "other secret":
        return slack_signature("another-secret", timestamp, body)
    if how == "altered body":
        return slack_signature(SIGNING_SECRET, timestamp, body + " ")
    if how == "altered timestamp":
        return slack_signature(SIGNING_SECRET, str(int(timestamp) + 1) if timestamp.isdigit() else "1", body)
    right = slack_signature(SIGNING_SECRET, timestamp, body)
    return {"upper": "v0=" + right[3:].upper(), "v1": "v1=" + right[3:], "short": right[:-1]}.get(how, "v0=" + "0" * 64)


message_fields = st.fixed_dictionaries(
    {},
    optional={
        "correlation_id": st.sampled_from(["req-0001", "a" * 128, "a" * 129]) | near_misses("req-0001") | json_values(),
        "kind": st.sampled_from(["slack_request", "decision", None]) | awkward_text,
        "job": st.just({"account_id": ACCOUNT_ID, "region": REGION, "job_id": "job-0001-abcdef"}) | json_values(),
        "intent": st.none(),
        "timestamp": st.none(),
        "body": st.none(),
    },
)

signed_messages = st.builds(
    Message,
    doc=payload_docs(),
    extra=st.just("") | st.sampled_from(FORM_EXTRAS),
    intent=st.one_of(*[st.just("decide")] * 4, st.sampled_from(INTENTS), awkward_text, json_values()),
    timestamp=st.one_of(
        *[st.just(0)] * 4,
        st.sampled_from([-1, -3599, -3600, -3601, 299, 300, 301, "0", "1", "1" * 16, "-5", "1e3", " 1", "\u0661"]),
        st.integers(-(10**10), 10**10),
        # Any timestamp the message's pattern allows, up to the last second of year 9999 (past it: its own test).
        st.integers(0, LAST_SECOND_OF_9999).map(str),
    ),
    signing=st.sampled_from(
        ["right"] * 5 + ["other secret", "altered body", "altered timestamp", "upper", "v1", "short", "zeros"]
    ),
    fields=st.one_of(*[st.just({})] * 3, message_fields),
    mutate=st.sampled_from([None, None, None, "once"]),
)
other_signed_messages = st.builds(
    Message,
    body=st.builds(form, other_payloads) | awkward_text | st.just(""),
    intent=st.sampled_from(INTENTS),
    signing=st.sampled_from(["right", "right", "other secret"]),
)
not_messages = st.one_of(
    awkward_text,
    json_values().map(json.dumps),
    deep_json_text(),
    st.builds(lambda v: json.dumps({"job": v}), json_values()),
)


def build(message: Message, job_id: str, data: st.DataObject | None) -> str:
    body = message.body_for(job_id)
    timestamp = str(NOW_TS + message.timestamp) if isinstance(message.timestamp, int) else message.timestamp
    doc: Any = {
        "kind": "slack_request",
        "intent": message.intent,
        "body": body,
        "timestamp": timestamp,
        "signature": sign(body, timestamp, message.signing),
        "correlation_id": "req-0001",
    }
    for key, value in message.fields.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    if message.mutate and data is not None:
        doc = data.draw(mutated(doc, json_values() | awkward_text, max_mutations=1), label="mutated message")
    return json.dumps(doc)


# -- the oracle ------------------------------------------------------------------------------------


def proven(raw: str) -> dict[str, Any] | None:
    """The message, if it is one the callback could have queued and Slack's signature over it checks out
    (computed here from Slack's recipe), signed within the last hour and not in the future."""
    try:
        msg = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not (
        isinstance(msg, dict)
        and all_unicode(msg)
        and depth(msg) <= PYDANTIC_JSON_MAX_DEPTH
        and set(msg) <= FIELDS
        and {"intent", "body", "timestamp", "signature"} <= set(msg)
        and msg.get("kind", "slack_request") == "slack_request"
        and msg["intent"] in INTENTS
        and isinstance(msg["body"], str)
        and len(msg["body"]) <= MAX_BODY_BYTES
        and isinstance(msg["timestamp"], str)
        and re.fullmatch(r"[0-9]{1,15}", msg["timestamp"])
        and isinstance(msg["signature"], str)
        and re.fullmatch(r"v0=[0-9a-f]{64}", msg["signature"])
        and (
            msg.get("correlation_id") is None
            or (isinstance(msg["correlation_id"], str) and CORRELATION_ID.fullmatch(msg["correlation_id"]))
        )
    ):
        return None
    age = NOW_TS - int(msg["timestamp"])
    if msg["signature"] != slack_signature(SIGNING_SECRET, msg["timestamp"], msg["body"]) or not -300 <= age <= 3600:
        return None
    return msg


def expected_outcome(intent: str, reading: Reading, pending: JobRef) -> Outcome:
    """What a proven message with this intent and body leads to."""
    approver = reading.user in APPROVERS
    if reading.kind in {Kind.BAD, Kind.FOREIGN}:
        return Outcome.INVALID_REQUEST if intent == "invalid" else Outcome.UNVERIFIED
    if intent == "decide" and reading.kind is Kind.DECIDE:
        if reading.job != (pending.account_id, pending.region, pending.job_id):
            return Outcome.NO_REQUEST
        return Outcome.APPLIED if approver else Outcome.NOT_AN_APPROVER
    if intent == "refuse_cancel" and reading.kind is Kind.CANCEL_CLICK:
        return Outcome.INVALID_REQUEST if approver else Outcome.NOT_AN_APPROVER
    if intent == "modal_failed" and reading.kind is Kind.CANCEL_CLICK and reading.channel:
        return Outcome.INVALID_REQUEST
    return Outcome.UNVERIFIED


def check(decider: Decider, raw: str, result: DecisionResult) -> None:
    updates = decider.jobs.calls_to("update_status")
    msg = proven(raw)
    if msg is None:
        event("unverified: not proven")
        assert result.outcome is Outcome.UNVERIFIED
        assert (len(decider.jobs), len(decider.chat)) == (0, 0)  # neither S3 nor anyone in Slack hears of it
        return
    reading = read_body(msg["body"])
    pending = decider.job
    event(f"proven: {msg['intent']} / {reading.kind.value}")
    if updates:  # the property itself: only a signed, valid decision by an approver for a pending job
        assert msg["intent"] == "decide"
        assert reading.kind is Kind.DECIDE
        assert reading.job == (pending.account_id, pending.region, pending.job_id)
        assert reading.user in APPROVERS
        assert updates == [("Ready" if reading.decision == "approve" else "Cancelled", updates[0][1])]
    if not reading.certain:
        event("not judged: the product is looser than S3 here")
        return
    expected = expected_outcome(msg["intent"], reading, pending)
    event(f"expected: {expected.value}")
    assert result.outcome is expected
    assert bool(updates) == (expected is Outcome.APPLIED)
    assert result.refused or expected is Outcome.APPLIED


# -- properties ------------------------------------------------------------------------------------


@examples(0.6)
@given(message=signed_messages | other_signed_messages, data=st.data())
def test_a_queued_request_changes_a_job_only_when_slack_signed_an_approvers_decision_for_it(
    fresh: Any, message: Message, data: st.DataObject
) -> None:
    # given
    decider = fresh()
    raw = build(message, decider.job.job_id, data)
    note(f"raw message: {raw[:2000]!r}")
    body = json.loads(raw).get("body") if isinstance(json.loads(raw), dict) else None
    reading = read_body(body) if isinstance(body, str) else None
    if reading is not None and reading.reason is not None and not unicode(reading.reason):
        reject()  # a reason that is not Unicode: the callback should not queue it (pinned by its own callback test)
    # when
    result = decider.work.handle(raw)
    # then
    check(decider, raw, result)


@examples(0.5)
@given(raw=not_messages)
def test_anything_else_on_the_queue_is_refused_as_unverified_and_changes_nothing(fresh: Any, raw: str) -> None:
    # given
    decider = fresh(pending=False)
    # when
    result = decider.work.handle(raw)
    # then
    assert result.outcome is Outcome.UNVERIFIED
    assert result.audit[0].reason == "unverified"
    assert (len(decider.jobs), len(decider.chat)) == (0, 0)


# -- found by the property above: pinned until fixed -----------------------------------------------


@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])  # no explain phase: known failure
@given(timestamp=st.integers(LAST_SECOND_OF_9999 + 1, 10**15 - 1), intent=st.sampled_from(INTENTS))
def test_a_signed_request_from_beyond_year_9999_is_refused_as_unverified(
    fresh: Any, timestamp: int, intent: str
) -> None:
    # given
    decider = fresh(pending=False)
    raw = build(Message(doc=approve_click(), intent=intent, timestamp=str(timestamp)), decider.job.job_id, None)
    # when
    result = decider.work.handle(raw)
    # then
    assert result.outcome is Outcome.UNVERIFIED
    assert decider.jobs.calls_to("update_status") == []
