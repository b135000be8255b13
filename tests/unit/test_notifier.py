"""The notifier: a job that waits for confirmation becomes one Slack approval request, kept up to date.

Two levels, both with the real adapters:

- the domain call, ``RequestService.on_job_event``, with ``S3ControlJobs`` on a boto3 ``s3control`` client
  under botocore's ``Stubber`` (every answer states the exact call it expects), ``DynamoRequestStore`` on
  moto and ``SlackChat`` on the Slack stand-in through ``web_client`` (Slack's retry handlers included);
- the handler as Lambda runs it: settings from the environment, a new execution environment per test,
  the real boto3 and slack_sdk clients over HTTP to the S3 Batch Operations emulator (through the
  loopback proxy), moto and the Slack stand-in. Metrics are read from the EMF lines it prints.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from approvals import wiring
from approvals.adapters.aws import RETRYING
from approvals.adapters.s3control import S3ControlJobs
from approvals.adapters.slack import SlackChat, web_client
from approvals.adapters.store import DynamoRequestStore
from approvals.domain.ports import ChatUnavailable, JobNotFound, JobsUnavailable
from approvals.domain.requests import EventOutcome, PostingInProgress, RequestService
from approvals.models.job import JobRef
from approvals.models.records import AuditEventType, RequestState
from approvals.models.slack import APPROVE_ACTION_ID, CANCEL_ACTION_ID
from approvals.names import (
    METRIC_APPROVAL_REQUESTED,
    METRIC_DUPLICATE_EVENT,
    METRIC_EVENT_DROPPED,
    METRICS_NAMESPACE,
    SERVICE_NAME,
)
from sandbox.apigw import LambdaContext
from sandbox.aws_local import LocalAws
from sandbox.proxy import LoopbackProxy, s3control_client_env
from sandbox.s3batch import JobStore, S3ControlEmulator, example_create_job_params
from sandbox.slack import SlackStandIn
from tests.helpers import emf_metrics, load_event

# The account and region of tests/events/describe_job_tagging.json and of the eventbridge_*.json samples.
ACCOUNT = "111122223333"
REGION = "eu-west-1"
CHANNEL = "C0APPROVALS"
BOT_TOKEN = "xoxb-test-token"
NOW = datetime(2025, 3, 14, 9, 32, tzinfo=UTC)
# botocore's max_attempts counts the retries after the first call.
ATTEMPTS = RETRYING.retries["max_attempts"] + 1


# -- what DescribeJob answers ---------------------------------------------------------------------


def described(ref: JobRef, status: str = "Suspended", **fields: Any) -> dict[str, Any]:
    """DescribeJob's answer for the sample tagging job (48,211 objects) as job ``ref``, in ``status``."""
    job = load_event("describe_job_tagging")["Job"]
    job.update({"JobId": ref.job_id, "JobArn": ref.arn, "Status": status}, **fields)
    return {"Job": job}


def progress(succeeded: int, failed: int) -> dict[str, Any]:
    return {
        "TotalNumberOfTasks": 48211,
        "NumberOfTasksSucceeded": succeeded,
        "NumberOfTasksFailed": failed,
        "Timers": {"ElapsedTimeInActiveSeconds": 2100},
    }


# What DescribeJob says once the job moved on, and what the thread reply must say ({job} is the job ID).
LATER_STATUSES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "Active": ({"ProgressSummary": progress(0, 0)}, ["Job is running", "48,211 objects"]),
    "Complete": (
        {"ProgressSummary": progress(48200, 11), "TerminationDate": "2025-03-14T10:41:03+00:00"},
        [
            "Job complete with failures",
            "48,200 succeeded, 11 failed (of 48,211)",
            "Completion report: `s3://acme-batch-reports/batch-reports/job-{job}/`",
        ],
    ),
    "Failed": (
        {
            "ProgressSummary": progress(120, 260),
            "TerminationDate": "2025-03-14T10:12:55+00:00",
            "FailureReasons": [
                {
                    "FailureCode": "TaskFailureRateExceeded",
                    "FailureReason": "The job failed because more than 50 percent of its tasks failed",
                }
            ],
        },
        [
            "Job failed",
            "`TaskFailureRateExceeded` The job failed because more than 50 percent of its tasks failed",
            "120 succeeded, 260 failed before it stopped",
        ],
    ),
    "Cancelled": (
        {
            "StatusUpdateReason": "Cancelled in the console: wrong prefix",
            "TerminationDate": "2025-03-14T09:45:17+00:00",
        },
        ["Job cancelled", "Reason: Cancelled in the console: wrong prefix"],
    ),
}


class StubbedS3Control:
    """A real boto3 ``s3control`` client under botocore's Stubber; no request leaves the process."""

    def __init__(self, ref: JobRef) -> None:
        self.ref = ref
        self.client = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client("s3control")
        self.stubber = Stubber(self.client)
        self.regions: list[str] = []

    def client_for(self, account_id: str, region: str, job_id: str | None) -> Any:
        self.regions.append(region)
        return self.client

    @property
    def _expected(self) -> dict[str, str]:
        return {"AccountId": self.ref.account_id, "JobId": self.ref.job_id}

    def answers(self, status: str = "Suspended", *, times: int = 1, **fields: Any) -> None:
        for _ in range(times):
            self.stubber.add_response("describe_job", described(self.ref, status, **fields), self._expected)

    def refuses(self, code: str, http_status: int) -> None:
        self.stubber.add_client_error(
            "describe_job",
            service_error_code=code,
            service_message=f"{code} (stubbed)",
            http_status_code=http_status,
            expected_params=self._expected,
        )


@pytest.fixture(scope="module")
def tables(moto_server: LocalAws) -> LocalAws:
    """One set of tables, secret and queue per module on the session's moto server.

    Provisioning costs about a second, so the tests share it; each one works on its own job
    (and the handler tests on their own jobEventIds), so none sees another's records.
    """
    return LocalAws(server=moto_server.server, url=moto_server.url).provision(
        bot_token=BOT_TOKEN, signing_secret="test-signing-secret"
    )


@pytest.fixture(scope="module")
def dynamodb(tables: LocalAws) -> Any:
    return tables.client("dynamodb")


@pytest.fixture
def ref() -> JobRef:
    return JobRef(account_id=ACCOUNT, region=REGION, job_id=str(uuid.uuid4()))


@pytest.fixture
def s3control(ref: JobRef) -> Iterator[StubbedS3Control]:
    stub = StubbedS3Control(ref)
    with stub.stubber:
        yield stub


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    # slack_sdk calls urllib's urlopen, whose process-wide opener keeps the proxies of the environment it was
    # first built in (an earlier test's proxy, maybe stopped since); urllib checks NO_PROXY on every request.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    standin = SlackStandIn(BOT_TOKEN, channels=[{"id": CHANNEL, "name": "s3-approvals"}]).start()
    yield standin
    standin.stop()


@pytest.fixture
def service(tables: LocalAws, dynamodb: Any, s3control: StubbedS3Control, slack: SlackStandIn) -> RequestService:
    return RequestService(
        jobs=S3ControlJobs(s3control.client_for),
        store=DynamoRequestStore(dynamodb, tables.requests_table, tables.audit_table),
        chat=SlackChat(web_client(BOT_TOKEN, slack.api_url)),
        channel=CHANNEL,
        clock=lambda: NOW,
        large_job_threshold=1_000_000,
    )


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def texts(blocks: list[dict[str, Any]] | None) -> str:
    """Every text in the blocks, one per line."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return "\n".join(found)


# -- the domain call with the real adapters -------------------------------------------------------


def test_a_suspended_job_posts_exactly_one_approval_request(
    service: RequestService, s3control: StubbedS3Control, slack: SlackStandIn, ref: JobRef
) -> None:
    # given
    s3control.answers("Suspended")

    # when
    result = service.on_job_event(ref)

    # then
    assert result.outcome == EventOutcome.POSTED
    [post] = slack.calls_to("chat.postMessage")
    assert post.ok
    assert post.params["channel"] == CHANNEL
    assert post.params["unfurl_links"] is False
    assert post.params["unfurl_media"] is False
    assert post.params["metadata"] == {
        "event_type": "s3_batch_approval_request",
        "event_payload": {"job_id": ref.job_id, "account_id": ACCOUNT, "region": REGION},
    }
    assert action_ids(post.params["blocks"]) == [APPROVE_ACTION_ID, CANCEL_ACTION_ID]
    assert ref.job_id in post.params["text"]
    assert s3control.regions == [REGION]
    s3control.stubber.assert_no_pending_responses()


def test_the_request_record_keeps_the_channel_and_ts_of_the_posted_message(
    service: RequestService, s3control: StubbedS3Control, slack: SlackStandIn, ref: JobRef
) -> None:
    # given
    s3control.answers("Suspended")

    # when
    service.on_job_event(ref)

    # then
    [message] = slack.messages(CHANNEL)
    stored = service.store.get(ref)
    assert stored is not None
    assert stored.state == RequestState.PENDING
    assert (stored.channel, stored.message_ts) == (CHANNEL, message.ts)
    assert (stored.operation, stored.object_count, stored.job_status) == ("S3PutObjectTagging", 48211, "Suspended")
    [audit] = service.store.history(ref)
    assert audit.event_type == AuditEventType.APPROVAL_REQUESTED
    assert (audit.slack_channel, audit.slack_message_ts) == (CHANNEL, message.ts)


@pytest.mark.parametrize(
    ("status", "confirmation_required"),
    [("New", True), ("Preparing", True), ("Ready", False), ("Active", False)],
)
def test_a_job_that_is_not_awaiting_confirmation_posts_nothing(
    service: RequestService,
    s3control: StubbedS3Control,
    slack: SlackStandIn,
    ref: JobRef,
    status: str,
    confirmation_required: bool,
) -> None:
    # given
    s3control.answers(status, ConfirmationRequired=confirmation_required)

    # when
    result = service.on_job_event(ref)

    # then
    assert result.outcome == EventOutcome.NOT_AWAITING
    assert len(slack) == 0
    assert service.store.get(ref) is None


def test_a_second_event_for_the_same_job_posts_nothing_more(
    service: RequestService, s3control: StubbedS3Control, slack: SlackStandIn, ref: JobRef
) -> None:
    # given
    s3control.answers("Suspended", times=2)
    first = service.on_job_event(ref)

    # when
    second = service.on_job_event(ref)

    # then
    assert (first.outcome, second.outcome) == (EventOutcome.POSTED, EventOutcome.UNCHANGED)
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert slack.calls_to("chat.update") == []
    s3control.stubber.assert_no_pending_responses()


def test_two_concurrent_deliveries_for_the_same_job_post_once(
    service: RequestService, s3control: StubbedS3Control, slack: SlackStandIn, ref: JobRef
) -> None:
    # given
    s3control.answers("Suspended", times=2)
    start = threading.Barrier(2)
    outcomes: list[EventOutcome] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        start.wait()
        try:
            outcomes.append(service.on_job_event(ref).outcome)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    # when
    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # then: one posts; the other saw the request posted, or saw it being posted and failed so that
    # Lambda retries it (never acknowledged while the request may still go unposted)
    assert outcomes.count(EventOutcome.POSTED) == 1
    assert all(isinstance(exc, PostingInProgress) for exc in errors)
    assert set(outcomes) - {EventOutcome.POSTED} <= {EventOutcome.ALREADY_POSTED, EventOutcome.UNCHANGED}
    assert len(outcomes) + len(errors) == 2
    if errors:  # and Lambda's retry, once the first delivery is done, finds the request posted
        s3control.answers("Suspended", times=1)
        assert service.on_job_event(ref).outcome in {EventOutcome.ALREADY_POSTED, EventOutcome.UNCHANGED}
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert len(slack.messages(CHANNEL)) == 1


@pytest.mark.parametrize("status", list(LATER_STATUSES))
def test_a_later_status_updates_the_request_in_place_and_replies_in_its_thread(
    service: RequestService, s3control: StubbedS3Control, slack: SlackStandIn, ref: JobRef, status: str
) -> None:
    # given
    s3control.answers("Suspended")
    service.on_job_event(ref)
    [request] = slack.messages(CHANNEL)
    fields, expected_reply = LATER_STATUSES[status]
    s3control.answers(status, **fields)

    # when
    result = service.on_job_event(ref)

    # then
    assert result.outcome == EventOutcome.STATUS_UPDATED
    [update] = slack.calls_to("chat.update")
    assert (update.params["channel"], update.params["ts"]) == (CHANNEL, request.ts)
    assert action_ids(update.params["blocks"]) == [], "no Approve/Cancel once the job moved on"
    assert f"Status now: {status}" in texts(update.params["blocks"])
    assert len(slack.message(CHANNEL, request.ts).edits) == 1
    [_, reply_call] = slack.calls_to("chat.postMessage")
    assert reply_call.params["thread_ts"] == request.ts
    assert "metadata" not in reply_call.params
    [reply] = slack.thread(CHANNEL, request.ts)
    for fragment in expected_reply:
        assert fragment.format(job=ref.job_id) in texts(reply.blocks)
    assert len(slack.messages(CHANNEL)) == 1, "the reply is in the thread, not a new message"
    stored = service.store.get(ref)
    assert stored is not None
    assert (stored.state, stored.job_status) == (RequestState.CLOSED, status)
    [changed] = [r for r in service.store.history(ref) if r.event_type == AuditEventType.JOB_STATUS_CHANGED]
    assert (changed.status_before, changed.status_after) == ("Suspended", status)


def test_slack_rate_limiting_once_then_answering_posts_the_request_once(
    service: RequestService, s3control: StubbedS3Control, slack: SlackStandIn, ref: JobRef
) -> None:
    # given
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    s3control.answers("Suspended")

    # when
    result = service.on_job_event(ref)

    # then
    assert result.outcome == EventOutcome.POSTED
    assert [call.status for call in slack.calls_to("chat.postMessage")] == [429, 200]
    [message] = slack.messages(CHANNEL)
    stored = service.store.get(ref)
    assert stored is not None
    assert stored.message_ts == message.ts


@pytest.mark.parametrize("fault", ["error", "rate_limit_longer_than_the_time_left"])
def test_slack_failing_for_good_releases_the_claim_so_a_retry_looks_for_the_message_then_posts(
    service: RequestService, s3control: StubbedS3Control, slack: SlackStandIn, ref: JobRef, fault: str
) -> None:
    # given
    if fault == "error":
        slack.fail("chat.postMessage", "internal_error")
    else:
        slack.rate_limit("chat.postMessage", times=1, retry_after=120)
    s3control.answers("Suspended", times=2)
    with pytest.raises(ChatUnavailable):
        service.on_job_event(ref)
    left = service.store.get(ref)
    assert left is not None
    assert left.state == RequestState.POSTING
    assert left.message_ts is None
    assert left.claimed_at is not None
    assert left.claimed_at.year == 1970, "the claim is released for the retry"

    # when
    retried = service.on_job_event(ref)

    # then: the retry read the history (Slack might have posted it) and, finding nothing, posted once
    assert retried.outcome == EventOutcome.POSTED
    assert [call.ok for call in slack.calls_to("conversations.history")] == [True]
    assert [call.ok for call in slack.calls_to("chat.postMessage")] == [False, True]
    assert len(slack.messages(CHANNEL)) == 1


def test_a_post_whose_answer_was_lost_is_found_in_the_history_and_not_posted_again(
    service: RequestService, s3control: StubbedS3Control, slack: SlackStandIn, ref: JobRef
) -> None:
    # given: Slack posts the request, but the answer never comes back (the connection drops after the post)
    slack.slow("chat.postMessage", seconds=2.0, times=1)
    s3control.answers("Suspended", times=2)
    impatient = RequestService(
        jobs=service.jobs,
        store=service.store,
        chat=SlackChat(web_client(BOT_TOKEN, slack.api_url, timeout=1)),
        channel=CHANNEL,
        clock=service.clock,
        large_job_threshold=service.large_job_threshold,
    )
    with pytest.raises(ChatUnavailable, match="did not answer"):
        impatient.on_job_event(ref)
    [posted] = _wait_for_messages(slack, 1)

    # when: Lambda's retry
    retried = service.on_job_event(ref)

    # then: slack_sdk did not resend the post, and the retry recorded the message Slack had posted
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert retried.request is not None
    assert retried.request.message_ts == posted.ts
    stored = service.store.get(ref)
    assert stored is not None
    assert stored.state == RequestState.PENDING
    assert stored.message_ts == posted.ts
    assert len(slack.messages(CHANNEL)) == 1


def _wait_for_messages(slack: SlackStandIn, count: int) -> list[Any]:
    """The channel's messages once there are ``count`` (a slowed answer is still being written)."""
    for _ in range(200):
        found = slack.messages(CHANNEL)
        if len(found) >= count:
            return found
        threading.Event().wait(0.02)
    raise AssertionError(f"fewer than {count} messages in the channel")


@pytest.mark.parametrize(
    ("code", "http_status", "raised"),
    [
        ("NotFoundException", 404, JobNotFound),
        ("TooManyRequestsException", 400, JobsUnavailable),
        ("InternalServiceException", 500, JobsUnavailable),
    ],
)
def test_describe_job_errors_become_domain_errors_and_nothing_is_posted(
    service: RequestService,
    s3control: StubbedS3Control,
    slack: SlackStandIn,
    ref: JobRef,
    code: str,
    http_status: int,
    raised: type[Exception],
) -> None:
    # given
    s3control.refuses(code, http_status)

    # when / then
    with pytest.raises(raised):
        service.on_job_event(ref)
    assert len(slack) == 0
    assert service.store.get(ref) is None


def test_a_status_update_that_slack_failed_is_applied_when_the_event_is_retried(
    service: RequestService, s3control: StubbedS3Control, slack: SlackStandIn, ref: JobRef
) -> None:
    # given
    s3control.answers("Suspended")
    service.on_job_event(ref)
    [request] = slack.messages(CHANNEL)
    fields, _ = LATER_STATUSES["Complete"]
    s3control.answers("Complete", times=2, **fields)
    slack.fail("chat.update", "internal_error")
    with pytest.raises(ChatUnavailable):
        service.on_job_event(ref)

    # when
    retried = service.on_job_event(ref)

    # then
    assert retried.outcome == EventOutcome.STATUS_UPDATED
    assert len(slack.message(CHANNEL, request.ts).edits) == 1
    assert len(slack.thread(CHANNEL, request.ts)) == 1


# -- the handler as Lambda runs it ----------------------------------------------------------------


@pytest.fixture(scope="module")
def notifier() -> ModuleType:
    """The handler module, imported as Lambda would: Powertools reads its own settings at import."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
        env.setenv("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
        env.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        env.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
        module = importlib.import_module("approvals.handlers.notifier")
    assert module.metrics.namespace == METRICS_NAMESPACE, "the notifier was imported earlier without its settings"
    return module


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, message: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.getMessage() == message]


class NotifierLambda:
    """The notifier function and what it talks to: S3 Control (emulator), DynamoDB (moto) and Slack."""

    def __init__(
        self,
        module: ModuleType,
        tables: LocalAws,
        dynamodb: Any,
        jobs: JobStore,
        slack: SlackStandIn,
        logs: RecordingHandler,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.module = module
        self.tables = tables
        self.dynamodb = dynamodb
        self.jobs = jobs
        self.slack = slack
        self.logs = logs
        self._capsys = capsys
        self.requests = DynamoRequestStore(dynamodb, tables.requests_table, tables.audit_table)

    def invoke(self, event: Any) -> Any:
        return self.module.handler(event, LambdaContext("notifier", timeout_seconds=30))

    def metrics(self) -> Counter[str]:
        """The metrics printed as EMF since the last call."""
        return emf_metrics(self._capsys.readouterr().out, METRICS_NAMESPACE)

    def create_job(self, *, confirmation: bool = True) -> str:
        params = example_create_job_params(ConfirmationRequired=confirmation)
        return self.jobs.create_job(ACCOUNT, params, region=REGION, object_count=1200)

    def suspended_job(self) -> str:
        job_id = self.create_job()
        self.jobs.advance_until(job_id, "Suspended")
        return job_id

    def event(self, sample: str, job_id: str) -> dict[str, Any]:
        """A sample event about job ``job_id``.

        Its jobEventId is made unique to the job (the same sample gives the same id for the same job),
        so tests sharing the idempotency table never see each other's events as duplicates.
        """
        event = load_event(sample)
        details = event["detail"]["serviceEventDetails"]
        details["jobId"] = job_id
        details["jobArn"] = f"arn:aws:s3:{REGION}:{ACCOUNT}:job/{job_id}"
        details["jobEventId"] = uuid.uuid5(uuid.NAMESPACE_URL, f"{job_id}/{details['jobEventId']}").hex
        return event

    def request(self, job_id: str) -> Any:
        return self.requests.get(JobRef(account_id=ACCOUNT, region=REGION, job_id=job_id))

    def idempotency_records(self) -> int:
        return int(self.dynamodb.scan(TableName=self.tables.idempotency_table, Select="COUNT")["Count"])


def new_execution_environment(notifier: ModuleType) -> None:
    """Forget settings, clients and the idempotency layer, as a fresh Lambda environment would."""
    wiring.reset_cold_start()


@pytest.fixture
def aws_lambda(
    notifier: ModuleType,
    tables: LocalAws,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[NotifierLambda]:
    """A new execution environment for every test, with its own S3 Control emulator, proxy and Slack."""
    jobs = JobStore(region=REGION)
    emulator = S3ControlEmulator(jobs).start()
    proxy = LoopbackProxy(emulator.url).start()
    slack = SlackStandIn(BOT_TOKEN, channels=[{"id": CHANNEL, "name": "s3-approvals"}]).start()
    env = {
        **tables.env(),
        **s3control_client_env(proxy.url),
        "SLACK_API_URL": slack.api_url,
        "SLACK_CHANNEL_ID": CHANNEL,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV", "HTTPS_PROXY", "https_proxy", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    new_execution_environment(notifier)
    # The Powertools logger writes to the stream it found at import; its records are read from a handler.
    logs = RecordingHandler()
    underlying = logging.getLogger(notifier.logger.name)
    level = underlying.level
    underlying.addHandler(logs)
    underlying.setLevel(logging.INFO)
    try:
        yield NotifierLambda(notifier, tables, dynamodb, jobs, slack, logs, capsys)
    finally:
        underlying.removeHandler(logs)
        underlying.setLevel(level)
        slack.stop()
        proxy.stop()
        emulator.stop()
        jobs.close()
        new_execution_environment(notifier)


def test_a_suspended_event_posts_one_request_and_counts_it(aws_lambda: NotifierLambda) -> None:
    # given
    job_id = aws_lambda.suspended_job()
    event = aws_lambda.event("eventbridge_job_status_changed_suspended", job_id)

    # when
    response = aws_lambda.invoke(event)

    # then
    assert response == {"outcome": "posted", "job_id": job_id, "job_status": "Suspended"}
    assert aws_lambda.metrics()[METRIC_APPROVAL_REQUESTED] == 1
    [message] = aws_lambda.slack.messages(CHANNEL)
    assert message.metadata is not None
    assert message.metadata["event_payload"]["job_id"] == job_id
    assert aws_lambda.request(job_id).message_ts == message.ts


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (load_event("eventbridge_malformed_missing_service_event_details"), {"detail.serviceEventDetails"}),
        (load_event("eventbridge_malformed_missing_job_id"), {"detail.serviceEventDetails.jobId"}),
        # A data event: its detail-type, eventName and eventType are all not S3 Batch Operations'.
        (load_event("eventbridge_unrelated_put_object"), {"detail-type", "detail.eventName", "detail.eventType"}),
        ({}, {"version"}),
    ],
    ids=["missing_service_event_details", "missing_job_id", "put_object", "empty"],
)
def test_malformed_and_unrelated_events_are_dropped_with_a_reason_and_a_metric(
    aws_lambda: NotifierLambda, event: dict[str, Any], fields: set[str]
) -> None:
    # when
    response = aws_lambda.invoke(event)

    # then
    assert response["outcome"] == "dropped"
    [dropped] = aws_lambda.logs.named("event dropped")
    assert dropped.levelno == logging.WARNING
    assert dropped.reason == response["reason"]  # type: ignore[attr-defined]
    assert dropped.reason  # type: ignore[attr-defined]
    assert dropped.field in fields  # type: ignore[attr-defined]
    assert aws_lambda.metrics()[METRIC_EVENT_DROPPED] == 1
    assert aws_lambda.jobs.calls["DescribeJob"] == 0
    assert len(aws_lambda.slack) == 0


def test_a_redelivered_event_posts_nothing_and_counts_a_duplicate(aws_lambda: NotifierLambda) -> None:
    # given
    job_id = aws_lambda.suspended_job()
    first = aws_lambda.invoke(aws_lambda.event("eventbridge_job_status_changed_suspended_duplicate_1", job_id))
    assert aws_lambda.metrics()[METRIC_APPROVAL_REQUESTED] == 1

    # when
    again = aws_lambda.invoke(aws_lambda.event("eventbridge_job_status_changed_suspended_duplicate_2", job_id))

    # then
    assert again == first
    counted = aws_lambda.metrics()
    assert counted[METRIC_DUPLICATE_EVENT] == 1
    assert counted[METRIC_APPROVAL_REQUESTED] == 0
    assert aws_lambda.jobs.calls["DescribeJob"] == 1, "the duplicate never reached S3"
    assert len(aws_lambda.slack.calls_to("chat.postMessage")) == 1


def test_an_event_for_a_job_s3_does_not_know_is_dropped_with_a_metric(aws_lambda: NotifierLambda) -> None:
    # given
    unknown = str(uuid.uuid4())

    # when
    response = aws_lambda.invoke(aws_lambda.event("eventbridge_job_status_changed_suspended", unknown))

    # then
    assert response == {"outcome": "job_not_found", "job_id": unknown}
    assert aws_lambda.metrics()[METRIC_EVENT_DROPPED] == 1
    [dropped] = aws_lambda.logs.named("job not found, event dropped")
    assert dropped.reason == "DescribeJob NotFound"  # type: ignore[attr-defined]
    assert aws_lambda.jobs.calls["DescribeJob"] == 1
    assert len(aws_lambda.slack) == 0


def test_s3_control_throttling_that_ends_within_botocore_retries_still_posts_once(aws_lambda: NotifierLambda) -> None:
    # given
    job_id = aws_lambda.suspended_job()
    aws_lambda.jobs.throttle_next("DescribeJob", 2)

    # when
    response = aws_lambda.invoke(aws_lambda.event("eventbridge_job_status_changed_suspended", job_id))

    # then
    assert response["outcome"] == "posted"
    assert aws_lambda.jobs.calls["DescribeJob"] == 3
    assert len(aws_lambda.slack.messages(CHANNEL)) == 1


def test_s3_control_failing_beyond_botocore_retries_fails_the_invocation_so_eventbridge_retries(
    aws_lambda: NotifierLambda,
) -> None:
    # given
    job_id = aws_lambda.suspended_job()
    event = aws_lambda.event("eventbridge_job_status_changed_suspended", job_id)
    aws_lambda.jobs.fail_next("DescribeJob", ATTEMPTS)
    records = aws_lambda.idempotency_records()

    # when
    with pytest.raises(JobsUnavailable):
        aws_lambda.invoke(event)

    # then
    assert aws_lambda.jobs.calls["DescribeJob"] == ATTEMPTS
    assert aws_lambda.idempotency_records() == records, "the failed event must not be remembered as handled"
    assert len(aws_lambda.slack) == 0
    assert aws_lambda.request(job_id) is None
    retried = aws_lambda.invoke(event)
    assert retried["outcome"] == "posted"
    assert len(aws_lambda.slack.messages(CHANNEL)) == 1


def test_the_schedule_posts_a_request_for_a_suspended_job_whose_event_was_lost(aws_lambda: NotifierLambda) -> None:
    # given
    lost = aws_lambda.suspended_job()
    announced = aws_lambda.suspended_job()
    aws_lambda.invoke(aws_lambda.event("eventbridge_job_status_changed_suspended", announced))
    aws_lambda.jobs.advance_until(aws_lambda.create_job(confirmation=False), "Active")
    aws_lambda.metrics()  # forget what the first invocation counted

    # when
    response = aws_lambda.invoke(load_event("eventbridge_scheduled_reconcile"))

    # then
    assert response == {"outcome": "reconciled", "suspended_jobs": 2, "recovered": 0, "posted": 1, "unchanged": 1}
    assert aws_lambda.metrics()[METRIC_APPROVAL_REQUESTED] == 1
    posted_for = [m.metadata["event_payload"]["job_id"] for m in aws_lambda.slack.messages(CHANNEL) if m.metadata]
    assert posted_for == [announced, lost]
    assert aws_lambda.request(lost).state == RequestState.PENDING


def test_an_event_from_another_source_is_dropped_even_when_it_names_a_real_suspended_job(
    aws_lambda: NotifierLambda,
) -> None:
    # given
    job_id = aws_lambda.suspended_job()
    event = aws_lambda.event("eventbridge_wrong_source", job_id)

    # when
    response = aws_lambda.invoke(event)

    # then
    assert response["outcome"] == "dropped"
    assert len(aws_lambda.slack) == 0


def test_an_event_naming_a_job_id_s3_could_never_issue_is_dropped_not_retried(aws_lambda: NotifierLambda) -> None:
    # given: S3 job IDs are 5 to 36 characters of A-Z, a-z, 0-9, - and _
    event = aws_lambda.event("eventbridge_job_status_changed_suspended", "job/../1")

    # when
    try:
        response = aws_lambda.invoke(event)
    except Exception as exc:
        raise AssertionError(f"the invocation raised {type(exc).__name__}, so EventBridge retries it") from exc

    # then
    assert response["outcome"] == "dropped"
    assert aws_lambda.metrics()[METRIC_EVENT_DROPPED] == 1


# -- the job events queue: what Lambda's SQS event source hands the notifier ----------------------


def sqs_event(*bodies: str) -> dict[str, Any]:
    """Lambda's SQS event for messages whose bodies are ``bodies`` (EventBridge puts the event as JSON)."""
    return {
        "Records": [
            {
                "messageId": f"message-{index}",
                "receiptHandle": f"handle-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:job-events",
                "awsRegion": REGION,
            }
            for index, body in enumerate(bodies)
        ]
    }


def test_a_queued_suspended_event_posts_one_request_and_acknowledges_the_message(aws_lambda: NotifierLambda) -> None:
    # given
    job_id = aws_lambda.suspended_job()
    event = aws_lambda.event("eventbridge_job_status_changed_suspended", job_id)

    # when
    response = aws_lambda.invoke(sqs_event(json.dumps(event)))

    # then
    assert response == {"batchItemFailures": []}
    assert aws_lambda.metrics()[METRIC_APPROVAL_REQUESTED] == 1
    [message] = aws_lambda.slack.messages(CHANNEL)
    assert aws_lambda.request(job_id).message_ts == message.ts


def test_a_queued_message_that_fails_comes_back_alone(aws_lambda: NotifierLambda) -> None:
    # given: two jobs in one batch, and Slack failing every post of the first (then the second succeeds)
    first, second = aws_lambda.suspended_job(), aws_lambda.suspended_job()
    aws_lambda.slack.fail("chat.postMessage", error="internal_error", times=1)
    bodies = [json.dumps(aws_lambda.event("eventbridge_job_status_changed_suspended", j)) for j in (first, second)]

    # when
    response = aws_lambda.invoke(sqs_event(*bodies))

    # then: only the failed message returns to the queue; the other job has its request
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert aws_lambda.request(first).state == RequestState.POSTING
    assert aws_lambda.request(second).state == RequestState.PENDING


def test_a_queued_message_that_fails_is_logged_at_once_with_why(aws_lambda: NotifierLambda) -> None:
    # given Slack failing the post (the bot not in the channel, say)
    job = aws_lambda.suspended_job()
    aws_lambda.slack.fail("chat.postMessage", error="not_in_channel", times=1)

    # when
    aws_lambda.invoke(sqs_event(json.dumps(aws_lambda.event("eventbridge_job_status_changed_suspended", job))))

    # then an ERROR record names the message and the cause (the batch processor alone logs nothing above DEBUG)
    [failed] = aws_lambda.logs.named("event failed, the queue delivers it again")
    assert failed.levelno == logging.ERROR
    assert failed.__dict__.get("message_id") == "message-0"
    assert failed.exc_info is not None
    assert "not_in_channel" in str(failed.exc_info[1])


# -- one hub, many accounts: where the notifier acts ----------------------------------------------

SPOKE = "210987654321"


class RefusingSts:
    """An STS endpoint that refuses every AssumeRole as STS does when the role's trust does not admit the caller
    (HTTP 403, an ErrorResponse of code AccessDenied); it counts the calls."""

    def __init__(self) -> None:
        import http.server

        calls: list[str] = []
        self.calls = calls

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                calls.append(self.rfile.read(length).decode())
                body = (
                    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                    b"<Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error>"
                    b"<RequestId>r-1</RequestId></ErrorResponse>"
                )
                self.send_response(403)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(aws_lambda: NotifierLambda, monkeypatch: pytest.MonkeyPatch) -> Iterator[RefusingSts]:
    """The notifier as a hub in ACCOUNT/REGION with one member, SPOKE (same region), whose role STS refuses."""
    sts = RefusingSts()
    monkeypatch.setenv("HUB_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("MEMBER_ACCOUNTS", json.dumps([{"id": SPOKE, "name": "analytics"}]))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    aws_lambda.requests.forget_notice(f"UNREACHABLE#{SPOKE}#{REGION}")  # the tests share the table: said anew
    yield sts
    sts.stop()


def _spoke_event(aws_lambda: NotifierLambda, account: str) -> tuple[str, dict[str, Any]]:
    job_id = aws_lambda.jobs.create_job(account, example_create_job_params(), region=REGION, object_count=10)
    aws_lambda.jobs.advance_until(job_id, "Suspended")
    event = aws_lambda.event("eventbridge_job_status_changed_suspended", job_id)
    event["account"] = account
    event["detail"]["serviceEventDetails"]["jobArn"] = f"arn:aws:s3:{REGION}:{account}:job/{job_id}"
    return job_id, event


def test_a_hub_drops_and_counts_an_event_of_an_account_it_does_not_serve(
    aws_lambda: NotifierLambda, hub: RefusingSts
) -> None:
    # given: a job event of an account that is neither the hub's nor a member
    _, event = _spoke_event(aws_lambda, "999999999999")
    records = aws_lambda.idempotency_records()

    # when
    response = aws_lambda.invoke(sqs_event(json.dumps(event)))

    # then: acknowledged, counted, never acted on (no DescribeJob, no AssumeRole, no message, nothing remembered)
    assert response == {"batchItemFailures": []}
    assert aws_lambda.metrics()[METRIC_EVENT_DROPPED] == 1
    assert aws_lambda.jobs.calls["DescribeJob"] == 0
    assert hub.calls == []
    assert len(aws_lambda.slack) == 0
    assert aws_lambda.idempotency_records() == records


def test_a_hub_drops_a_create_job_call_of_an_account_it_does_not_serve(
    aws_lambda: NotifierLambda, hub: RefusingSts
) -> None:
    event = load_event("eventbridge_create_job_api_call")
    event["account"] = "999999999999"
    event["detail"]["recipientAccountId"] = "999999999999"
    event["detail"]["userIdentity"]["accountId"] = "999999999999"

    response = aws_lambda.invoke(event)

    assert response["outcome"] == "dropped"
    assert "999999999999" in response["reason"]
    assert aws_lambda.metrics()[METRIC_EVENT_DROPPED] == 1


def test_a_member_whose_role_cannot_be_assumed_keeps_its_event_and_says_so_once(
    aws_lambda: NotifierLambda, hub: RefusingSts
) -> None:
    # given: a member's job, whose spoke role STS refuses
    job_id, event = _spoke_event(aws_lambda, SPOKE)

    # when: delivered, then delivered again (the queue's redelivery)
    first = aws_lambda.invoke(sqs_event(json.dumps(event)))
    again = aws_lambda.invoke(sqs_event(json.dumps(event)))

    # then: the record fails both times (SQS keeps it, then dead-letters it), nothing was done in the account
    assert first == again == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert aws_lambda.jobs.calls["DescribeJob"] == 0
    assert len(hub.calls) == 2
    assert "RoleArn=arn%3Aaws%3Aiam%3A%3A210987654321%3Arole%2Fs3-batch-approvals-spoke-eu-west-1" in hub.calls[0]
    assert f"RoleSessionName=notifier-{job_id}" in hub.calls[0]
    # and the channel is told once, by the account's name, that the hub cannot act there
    [notice] = aws_lambda.slack.messages(CHANNEL)
    assert "cannot act in that account" in notice.text
    assert "analytics" in notice.text
    assert job_id in notice.text
    assert aws_lambda.metrics()["AccountUnreachable"] == 2
    assert aws_lambda.request(job_id) is None


def test_the_reconciliation_covers_the_hub_and_fails_loudly_for_a_member_it_cannot_reach(
    aws_lambda: NotifierLambda, hub: RefusingSts
) -> None:
    # given: a Suspended job in the hub's own account whose event was lost
    lost = aws_lambda.suspended_job()

    # when
    with pytest.raises(RuntimeError, match=f"reconciliation failed for 1: {SPOKE}/{REGION}"):
        aws_lambda.invoke(load_event("eventbridge_scheduled_reconcile"))

    # then: the hub's own job got its request all the same; the member was tried through its role
    assert aws_lambda.request(lost).state == RequestState.PENDING
    assert any("RoleSessionName=notifier-reconcile" in call for call in hub.calls)


def test_the_reconciliation_is_bounded_in_calls_and_defers_the_rest(
    aws_lambda: NotifierLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: three Suspended jobs whose events were lost, and a budget of one ListJobs call and two jobs
    for _ in range(3):
        aws_lambda.suspended_job()
    monkeypatch.setattr(aws_lambda.module, "RECONCILE_MAX_CALLS", 3)

    # when
    response = aws_lambda.invoke(load_event("eventbridge_scheduled_reconcile"))

    # then: two followed, one left for the next run
    assert response["posted"] == 2
    assert response["deferred"] == 1
    assert aws_lambda.jobs.calls["ListJobs"] == 1
    assert aws_lambda.jobs.calls["DescribeJob"] == 2


def test_the_reconciliation_spends_no_s3_call_on_a_job_already_requested(
    aws_lambda: NotifierLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: no history lookup (nothing left to learn once requested), three Suspended jobs the first run posts
    monkeypatch.setenv("REQUESTER_LOOKUP", "off")
    for _ in range(3):
        aws_lambda.suspended_job()
    first = aws_lambda.invoke(load_event("eventbridge_scheduled_reconcile"))
    calls = aws_lambda.jobs.calls["DescribeJob"]

    # when
    second = aws_lambda.invoke(load_event("eventbridge_scheduled_reconcile"))

    # then: the second run lists them and reads nothing more of S3
    assert first["posted"] == 3
    assert second["pending"] == 3
    assert aws_lambda.jobs.calls["DescribeJob"] == calls


def test_the_reconciliation_runs_take_turns_to_start_with_each_place(
    aws_lambda: NotifierLambda, hub: RefusingSts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a budget of one call, and two places (the hub's own, and the member whose role STS refuses)
    monkeypatch.setattr(aws_lambda.module, "RECONCILE_MAX_CALLS", 1)
    started: list[str] = []
    for run in range(2):
        # when: two consecutive runs (the schedule's 15 minutes apart)
        moment = datetime.fromtimestamp((1_900_000_000 // 900 + run) * 900, UTC)
        monkeypatch.setattr(wiring, "utc_now", lambda moment=moment: moment)
        try:
            aws_lambda.invoke(load_event("eventbridge_scheduled_reconcile"))
            started.append("hub")  # the hub's ListJobs took the whole budget; the member waits
        except RuntimeError:
            started.append("member")  # the member came first, and could not be reached

    # then: one run started with each
    assert sorted(started) == ["hub", "member"]


def test_the_unreachable_notice_is_said_once_per_account_and_again_if_it_could_not_be_posted(
    aws_lambda: NotifierLambda, hub: RefusingSts
) -> None:
    # given: two jobs in the unreachable member, and Slack refusing the first notice
    _, first_event = _spoke_event(aws_lambda, SPOKE)
    _, second_event = _spoke_event(aws_lambda, SPOKE)
    aws_lambda.slack.fail("chat.postMessage", "internal_error")

    # when: the first job's event fails (its notice too), then both are delivered again
    aws_lambda.invoke(sqs_event(json.dumps(first_event)))
    aws_lambda.invoke(sqs_event(json.dumps(first_event)))
    aws_lambda.invoke(sqs_event(json.dumps(second_event)))

    # then: one notice for the account, posted at the second try
    notices = [m for m in aws_lambda.slack.messages(CHANNEL) if "cannot act in that account" in m.text]
    assert len(notices) == 1
