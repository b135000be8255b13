"""JobEvent: the CloudTrail service events S3 Batch Operations sends through EventBridge, parsed at the edge.

Every sample in tests/events/eventbridge_*.json is shaped after the documented event (FACTS.md section 1).
The last tests hand events S3 could never send to the notifier's handler, in the environment test_notifier
gives it, and check that each is dropped rather than crashing the function.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import parse
from pydantic import ValidationError

from approvals import wiring
from approvals.models.events import JobEvent
from approvals.names import METRIC_EVENT_DROPPED, METRICS_NAMESPACE, SERVICE_NAME
from sandbox.apigw import LambdaContext
from sandbox.aws_local import LocalAws
from tests.helpers import emf_metrics, load_event

ACCOUNT = "111122223333"
REGION = "eu-west-1"
JOB_ID = "c0ffee00-1234-4abc-8def-001122334455"
JOB_ARN = f"arn:aws:s3:{REGION}:{ACCOUNT}:job/{JOB_ID}"


@pytest.mark.parametrize(
    ("sample", "event_name", "status"),
    [
        ("eventbridge_job_created", "JobCreated", "New"),
        ("eventbridge_job_status_changed_suspended", "JobStatusChanged", "Suspended"),
        ("eventbridge_job_status_changed_active", "JobStatusChanged", "Active"),
        ("eventbridge_job_status_changed_complete", "JobStatusChanged", "Complete"),
        ("eventbridge_job_status_changed_failed", "JobStatusChanged", "Failed"),
        ("eventbridge_job_status_changed_cancelled", "JobStatusChanged", "Cancelled"),
    ],
)
def test_each_job_event_sample_parses_into_which_job_and_what_status(sample: str, event_name: str, status: str) -> None:
    # given
    event = load_event(sample)

    # when
    parsed = parse(event=event, model=JobEvent)

    # then
    assert parsed.source == "aws.s3"
    assert parsed.detail_type == "AWS Service Event via CloudTrail"
    assert (parsed.account, parsed.region) == (ACCOUNT, REGION)
    assert parsed.detail.event_source == "s3.amazonaws.com"
    assert parsed.detail.event_type == "AwsServiceEvent"
    assert parsed.detail.event_name == event_name
    details = parsed.detail.service_event_details
    assert details.job_id == JOB_ID
    assert details.job_arn == JOB_ARN
    assert details.status == status
    assert details.job_event_id == event["detail"]["serviceEventDetails"]["jobEventId"]


def test_a_job_created_event_carries_status_new_and_the_envelope_time() -> None:
    # when
    parsed = parse(event=load_event("eventbridge_job_created"), model=JobEvent)

    # then
    assert parsed.detail.service_event_details.status == "New"
    assert parsed.time == datetime(2025, 3, 14, 9, 30, 5, tzinfo=UTC)
    assert parsed.resources == []


def test_a_failed_job_event_keeps_its_failure_codes_and_reasons() -> None:
    # when
    details = parse(
        event=load_event("eventbridge_job_status_changed_failed"), model=JobEvent
    ).detail.service_event_details

    # then
    assert details.failure_codes == ["TaskFailureRateExceeded"]
    assert details.status_change_reason == ["The job failed because more than 50 percent of its tasks failed"]


def test_a_status_change_without_failures_has_empty_failure_lists() -> None:
    # when
    details = parse(
        event=load_event("eventbridge_job_status_changed_complete"), model=JobEvent
    ).detail.service_event_details

    # then
    assert details.failure_codes == []
    assert details.status_change_reason == []


def test_the_two_deliveries_of_one_job_event_share_the_job_event_id_not_the_event_id() -> None:
    # when
    first = parse(event=load_event("eventbridge_job_status_changed_suspended_duplicate_1"), model=JobEvent)
    second = parse(event=load_event("eventbridge_job_status_changed_suspended_duplicate_2"), model=JobEvent)

    # then
    assert first.id != second.id
    assert first.detail.service_event_details.job_event_id == second.detail.service_event_details.job_event_id


def test_the_powertools_parser_and_model_validate_agree() -> None:
    # given
    event = load_event("eventbridge_job_status_changed_suspended")

    # when / then
    assert parse(event=event, model=JobEvent) == JobEvent.model_validate(event)


def test_fields_aws_may_add_later_are_ignored() -> None:
    # given
    event = load_event("eventbridge_job_status_changed_suspended")
    event["detail"]["eventCategory"] = "Management"
    event["detail"]["serviceEventDetails"]["jobPriority"] = 10

    # when
    parsed = parse(event=event, model=JobEvent)

    # then
    assert parsed.detail.service_event_details.job_id == JOB_ID


@pytest.mark.parametrize(
    ("sample", "where"),
    [
        ("eventbridge_malformed_missing_service_event_details", ("detail", "serviceEventDetails")),
        ("eventbridge_malformed_missing_job_id", ("detail", "serviceEventDetails", "jobId")),
        ("eventbridge_unrelated_put_object", ("detail", "eventName")),
        ("eventbridge_scheduled_reconcile", ("detail", "eventSource")),
    ],
)
def test_malformed_and_unrelated_samples_are_rejected_naming_the_wrong_field(
    sample: str, where: tuple[str, ...]
) -> None:
    # given
    event = load_event(sample)

    # when
    with pytest.raises(ValidationError) as rejected:
        parse(event=event, model=JobEvent)

    # then
    assert where in [error["loc"] for error in rejected.value.errors()]


@pytest.mark.parametrize(
    ("field", "value"),
    [("jobId", ""), ("jobEventId", ""), ("status", "")],
)
def test_an_empty_job_id_event_id_or_status_is_rejected(field: str, value: str) -> None:
    # given
    event = load_event("eventbridge_job_status_changed_suspended")
    event["detail"]["serviceEventDetails"][field] = value

    # when / then
    with pytest.raises(ValidationError):
        parse(event=event, model=JobEvent)


def test_an_event_from_another_source_is_rejected_even_when_its_detail_looks_like_s3() -> None:
    # given
    event = load_event("eventbridge_wrong_source")

    # when / then
    with pytest.raises(ValidationError):
        parse(event=event, model=JobEvent)


# -- the notifier's handler, given events whose detail is not an object --------------------------------

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture(scope="module")
def notifier_module() -> ModuleType:
    """The handler module, imported as Lambda would: Powertools reads its own settings at import."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in POWERTOOLS_ENV.items():
            env.setenv(name, value)
        module = importlib.import_module("approvals.handlers.notifier")
    assert module.metrics.namespace == METRICS_NAMESPACE, "the notifier was imported earlier without its settings"
    return module


@pytest.fixture(scope="module")
def tables(moto_server: LocalAws) -> LocalAws:
    return LocalAws(server=moto_server.server, url=moto_server.url).provision(
        bot_token="xoxb-test-token", signing_secret="test-signing-secret"
    )


@pytest.fixture
def notifier(notifier_module: ModuleType, tables: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A new execution environment with the notifier's settings (as test_notifier sets them)."""
    env = {
        **tables.env(),
        **POWERTOOLS_ENV,
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never called: a dropped event reaches no service
        "SLACK_CHANNEL_ID": "C0APPROVALS",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV", "HTTPS_PROXY", "https_proxy", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    wiring.reset_cold_start()
    yield notifier_module
    wiring.reset_cold_start()


@pytest.mark.parametrize(
    "detail",
    ["JobStatusChanged", ["JobStatusChanged", {"eventName": "JobStatusChanged"}], nested_list(10_000)],
    ids=["a-string", "a-list", "a-list-nested-10000-deep"],
)
def test_an_event_whose_detail_is_not_an_object_is_dropped_and_never_raises(
    notifier: ModuleType, capsys: pytest.CaptureFixture[str], detail: Any
) -> None:
    # given a job event whose detail is replaced
    event = load_event("eventbridge_job_status_changed_suspended")
    event["detail"] = detail

    # when
    response = notifier.handler(event, LambdaContext("notifier", timeout_seconds=30))

    # then (reading detail.get("eventName") for the log line used to raise AttributeError)
    assert response["outcome"] == "dropped"
    assert response["reason"]
    assert METRIC_EVENT_DROPPED in emf_metrics(capsys.readouterr().out)
