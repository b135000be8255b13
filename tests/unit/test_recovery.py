"""Claims whose holder died: finished by the reconciliation, never dropped, never decided twice.

A decider claims a decision (``deciding``) before it calls UpdateJobStatus. If it dies, its claim stays.
Two ways finish it: the next delivery of the same click (after the lease), and the notifier's
reconciliation, which finds claims past their lease (``store.stuck``) and calls ``DecisionService.recover``.
A delivery that finds the claim held within its lease must come back later (``retry_later``), not vanish.

Two levels: ``DecisionService`` over ``DynamoRequestStore`` on moto with the fakes; then the handlers as
Lambda runs them (``notifier.handler`` with a Scheduled Event, ``decider.handler`` with an SQS batch),
over HTTP to the S3 Batch Operations emulator (through the loopback proxy), moto and the Slack stand-in.
"""

from __future__ import annotations

import importlib
import json
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from approvals import wiring
from approvals.adapters.store import DynamoRequestStore
from approvals.domain import message
from approvals.domain.authorisation import Approvers
from approvals.domain.decisions import DecisionService, Outcome
from approvals.models.job import JobRef
from approvals.models.records import Actor, ApprovalRequest, AuditEventType, RequestState
from approvals.models.slack import APPROVE_ACTION_ID, CANCEL_ACTION_ID, ButtonValue, DecisionCommand
from approvals.names import METRIC_DECISION_STUCK, METRIC_DUPLICATE_DECISION, METRICS_NAMESPACE, SERVICE_NAME
from infra import constants as c
from sandbox.apigw import LambdaContext
from sandbox.aws_local import LocalAws
from sandbox.proxy import LoopbackProxy, s3control_client_env
from sandbox.s3batch import JobStore, S3ControlEmulator, example_create_job_params
from sandbox.slack import SlackStandIn
from tests.fakes import FakeChat, FakeJobs, SlackSigner, make_job, post_request
from tests.helpers import emf_metrics, load_event

ALICE = Actor(user_id="UALICE001", name="alice", team_id="T0APPROVE")
BOB = Actor(user_id="UBOB00001", name="bob", team_id="T0APPROVE")
CHANNEL, MESSAGE_TS = "C0APPROVALS", "1700000000.000100"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
LEASE = 120
APPROVED_BY_ALICE = "Approved by alice (UALICE001) via Slack"


def action_ids(blocks: list[dict[str, Any]] | None) -> list[str]:
    return [e["action_id"] for b in blocks or [] if b["type"] == "actions" for e in b["elements"]]


# -- DecisionService.recover and the lease, with the fakes -----------------------------------------------

REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0006-abcdef")


class World:
    def __init__(self, local_aws: LocalAws) -> None:
        self.jobs = FakeJobs()
        self.jobs.add(make_job(REF.job_id))
        self.chat = FakeChat()
        self.store = DynamoRequestStore(local_aws.client("dynamodb"), local_aws.requests_table, local_aws.audit_table)
        self.now = NOW
        self.service = DecisionService(
            jobs=self.jobs,
            store=self.store,
            chat=self.chat,
            approvers=Approvers(frozenset({ALICE.user_id, BOB.user_id}), ()),
            members_of=self.chat.group_members,
            clock=lambda: self.now,
            large_job_threshold=1_000_000,
            lease_seconds=LEASE,
        )
        post_request(self.store, REF, NOW, CHANNEL, MESSAGE_TS)

    def click(self, actor: Actor = ALICE, decision_id: str = "UALICE001:1700000100.1") -> DecisionCommand:
        return DecisionCommand(
            job=REF, decision="approve", actor=actor, decision_id=decision_id, channel=CHANNEL, message_ts=MESSAGE_TS
        )

    def decider_died_holding(self, command: DecisionCommand) -> None:
        """A decider claimed ``command`` at NOW, then stopped (before or after its S3 call)."""
        assert self.store.claim_decision(command, NOW, LEASE).won

    def request(self) -> ApprovalRequest:
        request = self.store.get(REF)
        assert request is not None
        return request

    def trail(self) -> list[tuple[AuditEventType, str | None]]:
        return [(r.event_type, r.actor_id) for r in self.store.history(REF)]


@pytest.fixture
def world(local_aws: LocalAws) -> World:
    return World(local_aws)


def test_a_claim_left_past_its_lease_after_update_job_status_went_through_is_recorded_as_approved(
    world: World,
) -> None:
    # given: Alice's decider called UpdateJobStatus, then died before recording it
    world.decider_died_holding(world.click())
    world.jobs.update_status(REF, "Ready", APPROVED_BY_ALICE)
    world.now = NOW + timedelta(seconds=LEASE + 1)
    [stuck] = world.store.stuck(world.now, LEASE)
    # when
    result = world.service.recover(stuck)
    again = world.service.recover(stuck)  # a second reconciliation run, with what the first one found
    # then
    assert (result.outcome, again.outcome) == (Outcome.APPLIED, Outcome.DUPLICATE)
    request = world.request()
    assert (request.state, request.decider, request.s3_status) == (RequestState.APPROVED, ALICE, "Ready")
    assert world.trail() == [(AuditEventType.DECISION_TAKEN, ALICE.user_id)]
    assert world.store.history(REF)[0].origin == "slack"
    assert len(world.jobs.calls_to("update_status")) == 1, "S3 was not asked again"
    [update] = world.chat.calls_to("chat.update")
    assert (update["ts"], action_ids(update["blocks"])) == (MESSAGE_TS, [])
    assert world.chat.calls_to("chat.postEphemeral") == []
    assert world.store.stuck(world.now, LEASE) == []


def test_a_claim_left_before_update_job_status_reopens_the_request_and_tells_the_person(world: World) -> None:
    # given: Alice's decider claimed the decision and died before asking S3
    world.decider_died_holding(world.click())
    world.now = NOW + timedelta(seconds=LEASE + 1)
    [stuck] = world.store.stuck(world.now, LEASE)
    # when
    result = world.service.recover(stuck)
    # then
    assert result.outcome == Outcome.FAILED
    request = world.request()
    assert (request.state, request.decision_id, request.decider) == (RequestState.PENDING, None, None)
    assert world.trail() == [(AuditEventType.DECISION_FAILED, ALICE.user_id)]
    assert world.jobs.calls_to("update_status") == []
    [notice] = world.chat.calls_to("chat.postEphemeral")
    assert (notice["channel"], notice["user"], notice["text"]) == (
        CHANNEL,
        ALICE.user_id,
        message.decision_stuck_text(REF.job_id),
    )
    [update] = world.chat.calls_to("chat.update")
    assert action_ids(update["blocks"]) == [APPROVE_ACTION_ID, CANCEL_ACTION_ID], "anyone may decide again"
    assert world.store.stuck(world.now, LEASE) == []
    # and the request is open: the next click decides
    assert world.service.apply(world.click(BOB, "UBOB00001:1700000200.1")).outcome == Outcome.APPLIED


def test_a_claim_still_within_its_lease_is_not_touched(world: World) -> None:
    # given: a decider is at work on Alice's click
    world.decider_died_holding(world.click())
    world.now = NOW + timedelta(seconds=LEASE - 1)
    held = world.request()
    # when
    found = world.store.stuck(world.now, LEASE)
    result = world.service.recover(held)  # even when handed to recover, it is not taken over
    # then
    assert found == []
    assert result.outcome == Outcome.DUPLICATE
    assert (world.request().state, world.request().decision_id) == (RequestState.DECIDING, "UALICE001:1700000100.1")
    assert world.trail() == []
    assert world.jobs.calls == []
    assert world.chat.calls == []


def test_a_redelivery_that_finds_the_claim_held_within_its_lease_comes_back_later(world: World) -> None:
    # given: the first delivery of Alice's click holds the claim (regression: this redelivery was deleted silently)
    command = world.click()
    world.decider_died_holding(command)
    world.now = NOW + timedelta(seconds=10)
    # when
    result = world.service.apply(command)
    # then
    assert (result.outcome, result.retry_later) == (Outcome.DUPLICATE, True)
    assert world.jobs.calls_to("update_status") == []
    assert world.chat.calls_to("chat.postEphemeral") == [], "the person is not refused their own click"
    assert world.trail() == []
    assert world.request().state == RequestState.DECIDING
    # and when it comes back after the lease, with the holder gone, it decides
    world.now = NOW + timedelta(seconds=LEASE + 1)
    back = world.service.apply(command)
    assert (back.outcome, back.retry_later) == (Outcome.APPLIED, False)
    assert world.jobs.calls_to("update_status") == [("Ready", APPROVED_BY_ALICE)]


# -- the handlers as Lambda runs them ---------------------------------------------------------------------

ACCOUNT, REGION = "111122223333", "eu-west-1"  # as in tests/events/eventbridge_*.json
BOT_TOKEN, SIGNING_SECRET = "xoxb-test-token", "test-signing-secret"
TEAM = "T0APPROVE"  # the workspace of tests/events/slack_block_actions_approve.json


@pytest.fixture(scope="module")
def handlers() -> dict[str, ModuleType]:
    """The handler modules, imported as Lambda would: Powertools reads its own settings at import."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
        env.setenv("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
        env.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        modules = {name: importlib.import_module(f"approvals.handlers.{name}") for name in ("notifier", "decider")}
    assert modules["notifier"].metrics.namespace == METRICS_NAMESPACE, "imported earlier without its settings"
    return modules


class Deployment:
    """The notifier and the decider with what they talk to: S3 Control (emulator), DynamoDB (moto), Slack."""

    def __init__(
        self,
        handlers: dict[str, ModuleType],
        aws: LocalAws,
        jobs: JobStore,
        slack: SlackStandIn,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.handlers = handlers
        self.aws = aws
        self.jobs = jobs
        self.slack = slack
        self._capsys = capsys
        self.store = DynamoRequestStore(aws.client("dynamodb"), aws.requests_table, aws.audit_table)
        self.lease = aws.timing.lease
        # When the reconciliation may finish a claim: once its message cannot come back from the queue.
        self.stuck_after = c.decision_stuck_after(aws.timing.lease, aws.timing.visibility_timeout)

    def suspended_job(self) -> JobRef:
        job_id = self.jobs.create_job(ACCOUNT, example_create_job_params(), region=REGION, object_count=1200)
        self.jobs.advance_until(job_id, "Suspended")
        return JobRef(account_id=ACCOUNT, region=REGION, job_id=job_id)

    def job_event(self, ref: JobRef) -> dict[str, Any]:
        event = load_event("eventbridge_job_status_changed_suspended")
        details = event["detail"]["serviceEventDetails"]
        details.update(jobId=ref.job_id, jobArn=ref.arn, jobEventId=uuid.uuid4().hex)
        return event

    def posted_request(self) -> tuple[JobRef, str]:
        """A Suspended job whose approval request the notifier posted; returns the job and the message ts."""
        ref = self.suspended_job()
        assert self.notifier(self.job_event(ref))["outcome"] == "posted"
        [posted] = self.slack.messages(CHANNEL)
        return ref, posted.ts

    def decider_died_holding(self, ref: JobRef, ts: str, claimed_at: datetime) -> DecisionCommand:
        """Alice's decider claimed her approval at ``claimed_at``, then stopped."""
        command = DecisionCommand(
            job=ref,
            decision="approve",
            actor=ALICE,
            decision_id="UALICE001:1700000100.123456",
            channel=CHANNEL,
            message_ts=ts,
        )
        assert self.store.claim_decision(command, claimed_at, self.lease).won
        return command

    def notifier(self, event: dict[str, Any]) -> Any:
        return self.handlers["notifier"].handler(event, LambdaContext("notifier", timeout_seconds=30))

    def reconcile(self) -> Any:
        return self.notifier(load_event("eventbridge_scheduled_reconcile"))

    def decider(self, *bodies: str) -> tuple[dict[str, Any], list[str]]:
        """An SQS batch of these message bodies, as Lambda's event source sends it; returns the response
        and the batch's message IDs."""
        ids = [str(uuid.uuid4()) for _ in bodies]
        records = [
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:decisions",
                "awsRegion": REGION,
            }
            for message_id, body in zip(ids, bodies, strict=True)
        ]
        response = self.handlers["decider"].handler({"Records": records}, LambdaContext("decider", timeout_seconds=20))
        return response, ids

    def request(self, ref: JobRef) -> ApprovalRequest:
        request = self.store.get(ref)
        assert request is not None
        return request

    def trail(self, ref: JobRef) -> list[AuditEventType]:
        return [r.event_type for r in self.store.history(ref)]

    def metrics(self) -> Counter[str]:
        """The metrics printed as EMF since the last call."""
        return emf_metrics(self._capsys.readouterr().out)


@pytest.fixture
def deployment(
    handlers: dict[str, ModuleType],
    local_aws: LocalAws,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Deployment]:
    """A new execution environment for every test, with its own S3 Control emulator, proxy and Slack."""
    jobs = JobStore(region=REGION)
    emulator = S3ControlEmulator(jobs).start()
    proxy = LoopbackProxy(emulator.url).start()
    slack = SlackStandIn(BOT_TOKEN, channels=[{"id": CHANNEL, "name": "s3-approvals"}], team_id=TEAM).start()
    env = {
        **local_aws.env(),
        **s3control_client_env(proxy.url),
        "SLACK_API_URL": slack.api_url,
        c.ENV_SLACK_CHANNEL_ID: CHANNEL,
        c.ENV_SLACK_TEAM_ID: TEAM,
        c.ENV_APPROVER_USER_IDS: ALICE.user_id,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV", "HTTPS_PROXY", "https_proxy", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    urllib.request.install_opener(None)  # slack_sdk's urllib opener is rebuilt with this environment's proxies
    wiring.reset_cold_start()
    try:
        yield Deployment(handlers, local_aws, jobs, slack, capsys)
    finally:
        slack.stop()
        proxy.stop()
        emulator.stop()
        jobs.close()
        wiring.reset_cold_start()


def test_the_reconciliation_records_a_decision_s3_applied_before_its_decider_died(deployment: Deployment) -> None:
    # given: Alice's decider claimed her approval, UpdateJobStatus went through, and it died before recording it
    ref, ts = deployment.posted_request()
    deployment.decider_died_holding(
        ref, ts, claimed_at=wiring.utc_now() - timedelta(seconds=deployment.stuck_after + 1)
    )
    deployment.jobs.update_job_status(ACCOUNT, ref.job_id, "Ready", APPROVED_BY_ALICE)
    deployment.metrics()  # forget what posting counted
    # when
    response = deployment.reconcile()
    # then
    assert response["recovered"] == 1
    request = deployment.request(ref)
    assert (request.state, request.decider, request.s3_status) == (RequestState.APPROVED, ALICE, "Ready")
    assert deployment.trail(ref) == [AuditEventType.APPROVAL_REQUESTED, AuditEventType.DECISION_TAKEN]
    assert deployment.jobs.calls["UpdateJobStatus"] == 0, "S3 is not asked a second time"
    shown = deployment.slack.message(CHANNEL, ts)
    assert (len(shown.edits), shown.buttons()) == (1, [])
    assert deployment.slack.ephemerals() == []
    assert deployment.metrics()[METRIC_DECISION_STUCK] == 1


def test_the_reconciliation_reopens_a_request_whose_decider_died_before_asking_s3(deployment: Deployment) -> None:
    # given
    ref, ts = deployment.posted_request()
    deployment.decider_died_holding(
        ref, ts, claimed_at=wiring.utc_now() - timedelta(seconds=deployment.stuck_after + 1)
    )
    # when
    response = deployment.reconcile()
    # then
    assert response["recovered"] == 1
    assert deployment.request(ref).state == RequestState.PENDING
    assert deployment.trail(ref) == [AuditEventType.APPROVAL_REQUESTED, AuditEventType.DECISION_FAILED]
    assert deployment.jobs.calls["UpdateJobStatus"] == 0
    assert deployment.jobs.job_status(ref.job_id) == "Suspended"
    [notice] = deployment.slack.ephemerals(ALICE.user_id)
    assert (notice.channel, notice.text) == (CHANNEL, message.decision_stuck_text(ref.job_id))
    shown = deployment.slack.message(CHANNEL, ts)
    assert len(shown.edits) == 1
    assert [b["action_id"] for b in shown.buttons()] == [APPROVE_ACTION_ID, CANCEL_ACTION_ID]


@pytest.mark.parametrize("held_for", ["now", "past its lease, its click still on the queue"])
def test_the_reconciliation_leaves_a_claim_alone_while_its_click_can_come_back(
    deployment: Deployment, held_for: str
) -> None:
    # given: a decider is at work on Alice's click, or died past the lease while SQS will still redeliver it
    ref, ts = deployment.posted_request()
    ago = 0 if held_for == "now" else deployment.lease + 1
    command = deployment.decider_died_holding(ref, ts, claimed_at=wiring.utc_now() - timedelta(seconds=ago))
    deployment.metrics()
    # when
    response = deployment.reconcile()
    # then
    assert response["recovered"] == 0
    request = deployment.request(ref)
    assert (request.state, request.decision_id) == (RequestState.DECIDING, command.decision_id)
    assert deployment.trail(ref) == [AuditEventType.APPROVAL_REQUESTED]
    assert deployment.slack.ephemerals() == []
    assert deployment.slack.message(CHANNEL, ts).edits == []
    assert deployment.metrics()[METRIC_DECISION_STUCK] == 0


def test_the_decider_reports_a_delivery_whose_claim_is_held_as_a_batch_item_failure(deployment: Deployment) -> None:
    # given: the first delivery of Alice's click holds the claim; SQS delivers the click again, in a batch
    # with a forged message (refused, and not retried)
    ref, ts = deployment.posted_request()
    deployment.decider_died_holding(ref, ts, claimed_at=wiring.utc_now())
    payload = load_event("slack_block_actions_approve")
    payload["actions"][0]["value"] = ButtonValue.from_ref(ref).encode()
    payload["message"]["ts"] = ts
    again = SlackSigner(SIGNING_SECRET).queued("decide", SlackSigner.form(payload), at=wiring.utc_now())
    forged = json.dumps({"kind": "decision", "job": ref.model_dump(), "decision": "approve", "decision_id": "x"})
    s3_calls = Counter(deployment.jobs.calls)
    deployment.metrics()
    # when
    response, (again_id, _) = deployment.decider(again, forged)
    # then
    assert response == {"batchItemFailures": [{"itemIdentifier": again_id}]}
    request = deployment.request(ref)
    assert (request.state, request.decision_id) == (RequestState.DECIDING, "UALICE001:1700000100.123456")
    assert deployment.jobs.calls == s3_calls, "S3 is neither read nor asked"
    assert deployment.slack.ephemerals() == [], "nobody is refused"
    refused = [r for r in deployment.store.history(ref) if r.event_type == AuditEventType.DECISION_REFUSED]
    assert [r.reason for r in refused] == ["unverified"], "only the forged message is refused"
    assert deployment.metrics()[METRIC_DUPLICATE_DECISION] == 1


def test_a_batch_of_one_held_duplicate_comes_back_without_failing_the_invocation(deployment: Deployment) -> None:
    # given: the event source's batch size is one, and the only record is a delivery whose claim is held
    ref, ts = deployment.posted_request()
    deployment.decider_died_holding(ref, ts, claimed_at=wiring.utc_now())
    payload = load_event("slack_block_actions_approve")
    payload["actions"][0]["value"] = ButtonValue.from_ref(ref).encode()
    payload["message"]["ts"] = ts
    again = SlackSigner(SIGNING_SECRET).queued("decide", SlackSigner.form(payload), at=wiring.utc_now())
    # when: no error is raised (a function error would trip the decider's error alarm)
    response, (again_id,) = deployment.decider(again)
    # then: SQS brings the record back after the visibility timeout
    assert response == {"batchItemFailures": [{"itemIdentifier": again_id}]}


def test_a_batch_whose_every_record_failed_with_an_error_still_fails_the_invocation(deployment: Deployment) -> None:
    # given: a signed click for a job, while Slack's signing secret cannot be read at all
    ref, ts = deployment.posted_request()
    payload = load_event("slack_block_actions_approve")
    payload["actions"][0]["value"] = ButtonValue.from_ref(ref).encode()
    payload["message"]["ts"] = ts
    queued = SlackSigner(SIGNING_SECRET).queued("decide", SlackSigner.form(payload), at=wiring.utc_now())
    deployment.aws.client("secretsmanager").delete_secret(
        SecretId=deployment.aws.secret_name, ForceDeleteWithoutRecovery=True
    )
    wiring.reset_cold_start()
    # when / then: the invocation fails, so Lambda's error metric (and its alarm) sees it
    with pytest.raises(BatchProcessingError):
        deployment.decider(queued)
    assert deployment.jobs.calls["UpdateJobStatus"] == 0
