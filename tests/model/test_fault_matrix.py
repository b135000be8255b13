"""Every step of a decision and of a request's posting, under every fault: the end state is consistent.

One approve click goes through the decisions queue as SQS runs it (a failed receive comes back after the
visibility timeout; the 5th goes to the dead-letter queue), then one reconciliation runs after the lease.
One job event goes through the notifier as Lambda runs it asynchronously (one try, two retries, then the
on-failure destination), then one reconciliation 15 minutes later. A fault is planned on one step,
either once or for the whole case (an outage); see tests/model/harness.py for what each fault raises.

What must hold at the end: S3, the request record, the Slack message and the audit agree; the person who
clicked was told; and where a person must act (the decision did not happen, or a message was given up)
an alarmed signal exists: the DecisionFailed or DecisionStuck metric (alarmed by the stack), a message in
the dead-letter queue or an event in the on-failure destination (both alarmed on depth).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from approvals import wiring
from approvals.models.records import AuditEventType, RequestState
from approvals.names import METRICS_NAMESPACE, SERVICE_NAME
from approvals.observability import metrics
from infra import constants as c
from sandbox.apigw import LambdaContext
from tests.model.harness import (
    ALICE,
    BEFORE,
    CHANNEL,
    LEASE,
    RECONCILE_EVERY,
    TEAM,
    Backend,
    Fault,
    World,
    decision_problems,
    posting_problems,
)

CONFIRMED_ELSEWHERE = "Confirmed with the CLI by the storage team"


@pytest.fixture(autouse=True)
def no_metrics_yet() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@dataclass(frozen=True)
class Case:
    scenario: str  # "waiting": the job awaits confirmation; "moved_on": it was confirmed outside Slack
    step: str
    fault: Fault
    times: int | None  # 1: once; None: for the whole case

    @property
    def id(self) -> str:
        return f"{self.scenario}/{self.step}/{self.fault.value}/{'outage' if self.times is None else 'once'}"


FAULTS: list[tuple[Fault, int | None]] = [(fault, 1) for fault in Fault] + [
    (fault, None) for fault in Fault if fault in BEFORE
]

# The steps each scenario's approve click goes through (a step it never reaches would make a vacuous case).
DECISION_STEPS = {
    "waiting": ["claim", "describe", "update_status", "record", "audit", "chat.update"],
    "moved_on": ["claim", "describe", "audit", "chat.update", "chat.postEphemeral"],
}
POSTING_STEPS = ["describe", "claim_posting", "chat.postMessage", "mark_posted", "audit"]

# Product bugs these cases show, each marked xfail(strict=True) until it is fixed:
#
# Fixed since this matrix found them (now plain cases): finish_decision's own retried write raising ClaimLost;
# _fail reopening a request whose job it had just read as moved on.
# Fixed since: a retry that found the posting claim held with no message answered ALREADY_POSTED; it now
# raises PostingInProgress, so Lambda retries and then sends the event to the on-failure destination.
# Fixed since: a post that went through but was not recorded (mark_posted failed, the invocation died, or the
# answer was lost) was posted again by the retry or the reconciliation; the next delivery now looks in the
# channel's history for the message before posting (RequestService._adopt_posted), and slack_sdk no longer
# resends chat.postMessage on a 5xx or a dropped connection (adapters/slack.py NOT_IDEMPOTENT).
KNOWN_BUGS: dict[tuple[str, str, Fault, int | None], str] = {}


def _params(scenario: str, steps: list[str]) -> list[object]:
    params: list[object] = []
    for step in steps:
        for fault, times in FAULTS:
            case = Case(scenario, step, fault, times)
            bug = KNOWN_BUGS.get((scenario, step, fault, times))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            params.append(pytest.param(case, id=case.id, marks=marks))
    return params


DECISION_CASES = _params("waiting", DECISION_STEPS["waiting"]) + _params("moved_on", DECISION_STEPS["moved_on"])
POSTING_CASES = _params("posting", POSTING_STEPS)


# -- the decider --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", DECISION_CASES)
def test_an_approve_click_ends_consistent_whichever_step_fails(backend: Backend, case: Case) -> None:
    # given
    world = World(backend)
    world.post_request()
    if case.scenario == "moved_on":
        world.jobs.fake.set_status(world.ref.job_id, "Ready", CONFIRMED_ELSEWHERE)
    injection = world.faults.inject(case.step, case.fault, case.times)
    # when
    world.deliver(world.click(ALICE))
    world.clock.advance(LEASE + 1)
    world.reconcile_decisions()
    # then
    assert injection.fired, f"the click never reached {case.step}"
    assert decision_problems(world.observe(), moved_on=case.scenario == "moved_on") == []


def test_dynamodb_throttling_every_claim_dead_letters_the_click_and_applies_nothing(backend: Backend) -> None:
    # given
    world = World(backend)
    world.post_request()
    world.faults.inject("claim", Fault.THROTTLED, times=None)
    # when
    delivery = world.deliver(world.click(ALICE))
    world.clock.advance(LEASE + 1)
    world.reconcile_decisions()
    # then
    seen = world.observe()
    assert delivery.gave_up
    assert delivery.attempts == 5
    assert all("ProvisionedThroughputExceededException" in error for error in delivery.errors)
    assert seen.changes == []
    assert seen.request is not None
    assert seen.request.state == RequestState.PENDING
    assert seen.dead_letters == 1
    assert decision_problems(seen, moved_on=False) == []


# -- the notifier -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", POSTING_CASES)
def test_a_job_awaiting_confirmation_gets_one_request_whichever_step_fails(backend: Backend, case: Case) -> None:
    # given
    world = World(backend)
    injection = world.faults.inject(case.step, case.fault, case.times)
    # when
    world.invoke_queued(world.follow, "job event")
    after_retries = world.observe()
    world.clock.advance(RECONCILE_EVERY.total_seconds())
    world.invoke_async(world.follow, "reconciliation")
    settled = world.observe()
    # then
    assert injection.fired, f"the event never reached {case.step}"
    assert (
        posting_problems(after_retries, "after the queue's redeliveries") + posting_problems(settled, "settled") == []
    )


@pytest.mark.parametrize(
    ("fault", "times"), [pytest.param(f, t, id=f"{f.value}/{'outage' if t is None else 'once'}") for f, t in FAULTS]
)
def test_a_lost_post_answer_then_a_failing_history_lookup_still_ends_with_one_request(
    backend: Backend, fault: Fault, times: int | None
) -> None:
    # given: Slack posts the request but its answer is lost, and then reading the channel's history fails
    world = World(backend)
    lost = world.faults.inject("chat.postMessage", Fault.ANSWER_LOST)
    lookup = world.faults.inject("conversations.history", fault, times)
    # when
    world.invoke_queued(world.follow, "job event")
    after_retries = world.observe()
    world.clock.advance(RECONCILE_EVERY.total_seconds())
    world.invoke_async(world.follow, "reconciliation")
    settled = world.observe()
    # then: never a second request; the request is recorded once the history answers
    assert lost.fired
    assert lookup.fired
    assert (
        posting_problems(after_retries, "after the queue's redeliveries") + posting_problems(settled, "settled") == []
    )
    assert len(settled.posted) == 1
    if times is None:  # the history never answered: the event waits, alarmed, in the dead-letter queue
        assert settled.failure_destination
    else:
        assert settled.request is not None
        assert settled.request.message_ts == settled.posted[0]


# -- Secrets Manager down at cold start ------------------------------------------------------------------


class _Unavailable(BaseHTTPRequestHandler):
    """Secrets Manager answering every call with a 500 (InternalServiceError), as in an outage."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"__type": "InternalServiceError", "message": "injected outage"}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def secrets_down() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _sqs_event(body: str) -> dict[str, object]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "receipt-handle",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764324000000",
                    "SenderId": "AROAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1764324000001",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:decisions",
                "awsRegion": "us-east-1",
            }
        ]
    }


@pytest.mark.parametrize("outage", ["the secret is gone", "Secrets Manager answers 500"])
def test_a_decider_that_cannot_read_the_signing_secret_at_cold_start_applies_nothing_and_gets_the_message_back(
    backend: Backend, secrets_down: str, monkeypatch: pytest.MonkeyPatch, outage: str
) -> None:
    aws = backend.aws
    # given: a posted request, Alice's signed click on the queue, and a new execution environment
    world = World(backend)
    world.post_request()
    body = world.click(ALICE)
    env = {
        **aws.env(),
        "AWS_ENDPOINT_URL_S3_CONTROL": aws.url,  # nothing may reach AWS, should the decider get that far
        c.ENV_SLACK_CHANNEL_ID: CHANNEL,
        c.ENV_SLACK_TEAM_ID: TEAM,
        c.ENV_APPROVER_USER_IDS: ALICE.user_id,
        c.ENV_DECISION_LEASE_SECONDS: str(LEASE),
        "SLACK_API_URL": f"{secrets_down}/slack/",
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    if outage == "the secret is gone":
        env[c.ENV_SLACK_SECRET_NAME] = f"{aws.secret_name}-deleted"
    else:
        env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = secrets_down
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wiring.reset_cold_start()
    from approvals.handlers import decider

    # when
    try:
        with pytest.raises(BatchProcessingError, match=r"All 1 records failed") as failed:
            decider.handler(_sqs_event(body), LambdaContext("decider", timeout_seconds=60))
    finally:
        wiring.reset_cold_start()
    # then: the one record failed (so SQS redelivers it, and the Errors alarm counts the invocation) ...
    assert [type(error).__name__ for _, error, _ in failed.value.child_exceptions] == ["SecretError"]
    # ... and nothing was applied, recorded or said
    seen = world.observe()
    assert seen.request is not None
    assert seen.request.state == RequestState.PENDING
    assert [r.event_type for r in seen.audit] == [AuditEventType.APPROVAL_REQUESTED]
    assert seen.changes == []
    assert seen.ephemerals == []
