"""The S3 Batch Operations emulator, driven by the real boto3 s3control client through the proxy."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from slack_sdk import WebClient

from sandbox.proxy import S3_CONTROL_ENDPOINT, LoopbackProxy, s3control_client_env
from sandbox.s3batch import JobStore, S3ControlEmulator, example_create_job_params

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3_CONTROL", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[JobStore]:
    # These tests read the job's own service events; the CreateJob API-call event a trail adds is
    # tested in test_s3batch_principal.py.
    store = JobStore(clock=clock, active_steps=3, trail_enabled=False)
    yield store
    store.close()


@pytest.fixture
def emulator(store: JobStore) -> Iterator[S3ControlEmulator]:
    with S3ControlEmulator(store, auto_advance=False) as emulator:
        yield emulator


@pytest.fixture
def proxy(emulator: S3ControlEmulator) -> Iterator[LoopbackProxy]:
    with LoopbackProxy(emulator.url) as proxy:
        yield proxy


@cache
def _session() -> boto3.session.Session:
    """One session for the module's explicit clients: building the s3control model once keeps tests fast."""
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


def make_client(proxy: LoopbackProxy, **config: Any) -> BaseClient:
    return _session().client(
        "s3control",
        region_name="us-east-1",
        endpoint_url=S3_CONTROL_ENDPOINT,
        config=Config(proxies={"http": proxy.url}, **config),
    )


@pytest.fixture
def client(proxy: LoopbackProxy) -> BaseClient:
    return make_client(proxy, retries={"mode": "standard", "total_max_attempts": 1})


def create_job(client: BaseClient, **overrides: Any) -> str:
    return client.create_job(AccountId=ACCOUNT, **example_create_job_params(**overrides))["JobId"]


def describe(client: BaseClient, job_id: str) -> dict[str, Any]:
    return client.describe_job(AccountId=ACCOUNT, JobId=job_id)["Job"]


def error_code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


class EventLog:
    """A listener that records what it was given."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def statuses(self, job_id: str | None = None) -> list[str]:
        details = [e["detail"]["serviceEventDetails"] for e in self.events]
        return [d["status"] for d in details if job_id is None or d["jobId"] == job_id]


@pytest.fixture
def events(store: JobStore) -> EventLog:
    log = EventLog()
    store.subscribe(log)
    return log


# --------------------------------------------------------------------------- lifecycle


def test_job_that_needs_confirmation_waits_in_suspended_with_its_task_count(
    client: BaseClient, store: JobStore
) -> None:
    # given
    job_id = create_job(client, ConfirmationRequired=True)
    assert describe(client, job_id)["Status"] == "New"

    # when
    store.advance(job_id)
    store.advance(job_id)
    store.advance(job_id)

    # then
    job = describe(client, job_id)
    assert job["Status"] == "Suspended"
    assert job["ConfirmationRequired"] is True
    assert job["SuspendedCause"] == "AWAITING_CONFIRMATION"
    assert job["SuspendedDate"] is not None
    assert job["ProgressSummary"]["TotalNumberOfTasks"] == 1200
    assert job["JobArn"] == f"arn:aws:s3:us-east-1:{ACCOUNT}:job/{job_id}"
    assert len(job_id) == 36


def test_new_job_has_no_task_count_until_it_is_prepared(client: BaseClient) -> None:
    # given / when
    job_id = create_job(client)

    # then
    assert "TotalNumberOfTasks" not in describe(client, job_id)["ProgressSummary"]


def test_job_without_confirmation_goes_straight_to_ready(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client, ConfirmationRequired=False)

    # when
    store.advance_until(job_id, "Ready")

    # then
    job = describe(client, job_id)
    assert job["Status"] == "Ready"
    assert job["ConfirmationRequired"] is False
    assert "SuspendedCause" not in job


def test_confirmed_job_runs_to_complete_and_reports_its_progress(
    client: BaseClient, store: JobStore, clock: FakeClock
) -> None:
    # given
    store.set_manifest_object_count("arn:aws:s3:::example-manifests/manifest.csv", 900)
    job_id = create_job(client)
    store.advance_until(job_id, "Suspended")

    # when
    answer = client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Ready")
    store.advance(job_id)
    clock.advance(seconds=30)
    store.advance(job_id)
    during = describe(client, job_id)
    clock.advance(seconds=30)
    store.advance_until(job_id, "Complete")

    # then
    assert answer["Status"] == "Ready"
    assert during["Status"] == "Active"
    assert 0 < during["ProgressSummary"]["NumberOfTasksSucceeded"] < 900
    assert during["ProgressSummary"]["Timers"]["ElapsedTimeInActiveSeconds"] == 30
    job = describe(client, job_id)
    progress = job["ProgressSummary"]
    assert progress["TotalNumberOfTasks"] == 900
    assert progress["NumberOfTasksSucceeded"] + progress["NumberOfTasksFailed"] == 900
    assert progress["Timers"]["ElapsedTimeInActiveSeconds"] == 60
    assert job["TerminationDate"] is not None


def test_object_count_and_failed_tasks_can_be_set_per_job(store: JobStore) -> None:
    # given
    job_id = store.create_job(
        ACCOUNT, example_create_job_params(ConfirmationRequired=False), object_count=10, failed_tasks=2
    )

    # when
    store.advance_until(job_id, "Complete")

    # then
    progress = store.describe_job(ACCOUNT, job_id)["ProgressSummary"]
    assert (progress["TotalNumberOfTasks"], progress["NumberOfTasksSucceeded"]) == (10, 8)
    assert progress["NumberOfTasksFailed"] == 2


@pytest.mark.parametrize("status", ["New", "Preparing", "Ready", "Active", "Complete"])
def test_ready_is_refused_unless_the_job_is_suspended(client: BaseClient, store: JobStore, status: str) -> None:
    # given
    job_id = create_job(client, ConfirmationRequired=False)
    store.advance_until(job_id, status)

    # when
    with pytest.raises(client.exceptions.JobStatusException) as caught:
        client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Ready")

    # then
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert status in caught.value.response["Error"]["Message"]
    assert describe(client, job_id)["Status"] == status


def test_suspended_job_never_returns_to_suspended_once_ready(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client)
    store.advance_until(job_id, "Suspended")
    client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Ready")

    # when
    statuses = [store.advance(job_id) for _ in range(6)]

    # then
    assert "Suspended" not in statuses
    assert statuses[-1] == "Complete"


@pytest.mark.parametrize("status", ["New", "Preparing", "Suspended", "Ready"])
def test_cancelling_a_job_that_is_not_running_cancels_it_at_once(
    client: BaseClient, store: JobStore, status: str
) -> None:
    # given
    job_id = create_job(client, ConfirmationRequired=status == "Suspended")
    store.advance_until(job_id, status)

    # when
    answer = client.update_job_status(
        AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Cancelled", StatusUpdateReason="not needed"
    )

    # then
    assert answer["Status"] == "Cancelled"
    job = describe(client, job_id)
    assert job["Status"] == "Cancelled"
    assert job["TerminationDate"] is not None


def test_cancelling_an_active_job_goes_through_cancelling(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client, ConfirmationRequired=False)
    store.advance_until(job_id, "Active")

    # when
    answer = client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Cancelled")
    after_call = describe(client, job_id)["Status"]
    store.advance(job_id)

    # then
    assert answer["Status"] == "Cancelling"
    assert after_call == "Cancelling"
    assert describe(client, job_id)["Status"] == "Cancelled"


def test_cancelling_a_paused_job_goes_through_cancelling(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client, ConfirmationRequired=False)
    store.advance_until(job_id, "Active")
    store.pause(job_id)
    store.advance(job_id)
    assert describe(client, job_id)["Status"] == "Paused"

    # when
    answer = client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Cancelled")

    # then
    assert answer["Status"] == "Cancelling"


@pytest.mark.parametrize("final", ["Complete", "Failed", "Cancelled"])
@pytest.mark.parametrize("requested", ["Ready", "Cancelled"])
def test_a_finished_job_refuses_every_status_change(
    client: BaseClient, store: JobStore, final: str, requested: str
) -> None:
    # given
    job_id = create_job(client, ConfirmationRequired=False)
    if final == "Complete":
        store.advance_until(job_id, "Complete")
    elif final == "Failed":
        store.fail(job_id, "manifest unreadable")
        store.advance(job_id)
    else:
        client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Cancelled")

    # when
    with pytest.raises(client.exceptions.JobStatusException):
        client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus=requested)

    # then
    assert describe(client, job_id)["Status"] == final


def test_unknown_job_is_not_found(client: BaseClient) -> None:
    # given
    job_id = "00000000-0000-0000-0000-000000000000"

    # when / then
    with pytest.raises(client.exceptions.NotFoundException) as described:
        client.describe_job(AccountId=ACCOUNT, JobId=job_id)
    with pytest.raises(client.exceptions.NotFoundException) as updated:
        client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Cancelled")
    assert described.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert updated.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_another_accounts_job_is_not_found(client: BaseClient) -> None:
    # given
    job_id = create_job(client)

    # when / then
    with pytest.raises(client.exceptions.NotFoundException):
        client.describe_job(AccountId=OTHER_ACCOUNT, JobId=job_id)


def test_requested_status_other_than_ready_or_cancelled_is_a_bad_request(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client)
    store.advance_until(job_id, "Suspended")

    # when
    with pytest.raises(client.exceptions.BadRequestException):
        client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Active")

    # then
    assert describe(client, job_id)["Status"] == "Suspended"


def test_reason_of_257_characters_is_a_bad_request_and_256_is_fine(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client)
    store.advance_until(job_id, "Suspended")

    # when
    with pytest.raises(client.exceptions.BadRequestException):
        client.update_job_status(
            AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Ready", StatusUpdateReason="x" * 257
        )
    answer = client.update_job_status(
        AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Ready", StatusUpdateReason="y" * 256
    )

    # then
    assert answer["StatusUpdateReason"] == "y" * 256


def test_status_update_reason_is_returned_and_described(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client)
    store.advance_until(job_id, "Suspended")
    reason = "Approved in Slack by U012AB3CD (ticket CHG-42 & more)"

    # when
    answer = client.update_job_status(
        AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Ready", StatusUpdateReason=reason
    )

    # then
    assert answer["JobId"] == job_id
    assert answer["StatusUpdateReason"] == reason
    assert describe(client, job_id)["StatusUpdateReason"] == reason


def test_five_digit_account_is_a_bad_request(client: BaseClient) -> None:
    # given / when
    with pytest.raises(client.exceptions.BadRequestException) as caught:
        client.describe_job(AccountId="12345", JobId="00000000-0000-0000-0000-000000000000")

    # then
    assert "12 digits" in caught.value.response["Error"]["Message"]


def test_unsigned_request_is_refused(proxy: LoopbackProxy) -> None:
    # given
    unsigned = make_client(proxy, signature_version=UNSIGNED, retries={"mode": "standard", "total_max_attempts": 1})

    # when
    with pytest.raises(ClientError) as caught:
        unsigned.list_jobs(AccountId=ACCOUNT)

    # then
    assert error_code(caught.value) == "AccessDenied"


# --------------------------------------------------------------------------- CreateJob


def test_same_client_request_token_returns_the_same_job(client: BaseClient, store: JobStore) -> None:
    # given
    params = example_create_job_params(ClientRequestToken="token-1")

    # when
    first = client.create_job(AccountId=ACCOUNT, **params)["JobId"]
    second = client.create_job(AccountId=ACCOUNT, **params)["JobId"]

    # then
    assert first == second
    assert store.job_ids() == [first]


def test_reused_token_with_other_parameters_is_an_idempotency_error(client: BaseClient) -> None:
    # given
    client.create_job(AccountId=ACCOUNT, **example_create_job_params(ClientRequestToken="token-2"))

    # when / then
    with pytest.raises(client.exceptions.IdempotencyException):
        client.create_job(AccountId=ACCOUNT, **example_create_job_params(ClientRequestToken="token-2", Priority=99))


def test_job_with_two_operations_is_a_bad_request(client: BaseClient) -> None:
    # given
    operation = {"S3PutObjectTagging": {"TagSet": []}, "S3DeleteObjectTagging": {}}

    # when / then
    with pytest.raises(client.exceptions.BadRequestException) as caught:
        create_job(client, Operation=operation)
    assert "exactly one" in caught.value.response["Error"]["Message"]


def test_job_needs_a_manifest_or_a_manifest_generator(client: BaseClient) -> None:
    # given
    params = example_create_job_params()
    del params["Manifest"]

    # when / then
    with pytest.raises(client.exceptions.BadRequestException):
        client.create_job(AccountId=ACCOUNT, **params)


def test_job_with_a_manifest_generator_is_described_with_its_generated_manifest(
    client: BaseClient, store: JobStore
) -> None:
    # given
    generator = {
        "S3JobManifestGenerator": {
            "SourceBucket": "arn:aws:s3:::photos",
            "EnableManifestOutput": True,
            "ManifestOutputLocation": {
                "Bucket": "arn:aws:s3:::manifests",
                "ManifestPrefix": "generated/",
                "ManifestFormat": "S3InventoryReport_CSV_20211130",
            },
            "Filter": {"KeyNameConstraint": {"MatchAnyPrefix": ["2024/"]}},
        }
    }
    store.set_manifest_object_count("arn:aws:s3:::photos", 42)
    params = example_create_job_params(ManifestGenerator=generator)
    del params["Manifest"]

    # when
    job_id = client.create_job(AccountId=ACCOUNT, **params)["JobId"]
    store.advance_until(job_id, "Suspended")

    # then
    job = describe(client, job_id)
    assert job["ManifestGenerator"] == generator
    assert job["ProgressSummary"]["TotalNumberOfTasks"] == 42
    assert job["GeneratedManifestDescriptor"]["Format"] == "S3InventoryReport_CSV_20211130"


def test_described_job_echoes_what_was_created(client: BaseClient) -> None:
    # given
    params = example_create_job_params(
        Operation={
            "LambdaInvoke": {
                "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:resize",
                "InvocationSchemaVersion": "2.0",
                "UserArguments": {"size": "small", "mode": "fast"},
            }
        },
        Priority=7,
    )

    # when
    job = describe(client, client.create_job(AccountId=ACCOUNT, **params)["JobId"])

    # then
    for key in ("Operation", "Manifest", "Report", "Priority", "RoleArn", "Description"):
        assert job[key] == params[key]


# --------------------------------------------------------------------------- ListJobs


def test_list_jobs_pages_through_seven_jobs_three_at_a_time(client: BaseClient) -> None:
    # given
    created = [create_job(client) for _ in range(7)]

    # when
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = client.list_jobs(AccountId=ACCOUNT, MaxResults=3, **kwargs)
        pages.append([job["JobId"] for job in page["Jobs"]])
        token = page.get("NextToken")
        if not token:
            break

    # then
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [job_id for page in pages for job_id in page] == list(reversed(created))


def test_list_jobs_filters_by_status(client: BaseClient, store: JobStore) -> None:
    # given
    suspended = [create_job(client) for _ in range(2)]
    for job_id in suspended:
        store.advance_until(job_id, "Suspended")
    create_job(client)
    client.create_job(AccountId=ACCOUNT, **example_create_job_params())

    # when
    listed = client.list_jobs(AccountId=ACCOUNT, JobStatuses=["Suspended"])["Jobs"]

    # then
    assert sorted(job["JobId"] for job in listed) == sorted(suspended)
    assert {job["Status"] for job in listed} == {"Suspended"}
    assert listed[0]["Operation"] == "S3PutObjectTagging"
    assert listed[0]["ProgressSummary"]["TotalNumberOfTasks"] == 1200


def test_list_jobs_shows_only_the_callers_account(client: BaseClient) -> None:
    # given
    client.create_job(AccountId=OTHER_ACCOUNT, **example_create_job_params())

    # when
    listed = client.list_jobs(AccountId=ACCOUNT)

    # then
    assert listed["Jobs"] == []


def test_list_jobs_refuses_max_results_out_of_range_and_foreign_tokens(client: BaseClient) -> None:
    # given
    for _ in range(3):
        create_job(client)
    token = client.list_jobs(AccountId=ACCOUNT, MaxResults=1)["NextToken"]

    # when / then
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.list_jobs(AccountId=ACCOUNT, MaxResults=0)
    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.list_jobs(AccountId=ACCOUNT, NextToken="bm90LWEtdG9rZW4=")
    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.list_jobs(AccountId=ACCOUNT, NextToken=token, JobStatuses=["Active"])


# --------------------------------------------------------------------------- events


def test_every_status_change_is_an_event_in_the_documented_shape(
    client: BaseClient, store: JobStore, events: EventLog
) -> None:
    # given
    job_id = create_job(client)

    # when
    store.advance_until(job_id, "Suspended")
    client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Ready")
    store.advance_until(job_id, "Complete")
    assert store.drain(5)

    # then
    assert events.statuses(job_id) == [
        "New",
        "Preparing",
        "Suspended",
        "Ready",
        "Active",
        "Completing",
        "Complete",
    ]
    names = [event["detail"]["eventName"] for event in events.events]
    assert names == ["JobCreated"] + ["JobStatusChanged"] * 6
    first = events.events[0]
    assert first["source"] == "aws.s3"
    assert first["detail-type"] == "AWS Service Event via CloudTrail"
    assert first["account"] == ACCOUNT
    assert first["region"] == "us-east-1"
    assert first["resources"] == []
    assert first["time"].endswith("Z")
    detail = first["detail"]
    assert detail["eventSource"] == "s3.amazonaws.com"
    assert detail["eventType"] == "AwsServiceEvent"
    assert detail["userIdentity"] == {"accountId": ACCOUNT, "invokedBy": "s3.amazonaws.com"}
    assert detail["serviceEventDetails"] == {
        "jobId": job_id,
        "jobArn": f"arn:aws:s3:us-east-1:{ACCOUNT}:job/{job_id}",
        "status": "New",
        "jobEventId": detail["serviceEventDetails"]["jobEventId"],
        "failureCodes": [],
        "statusChangeReason": [],
    }
    job_event_ids = [e["detail"]["serviceEventDetails"]["jobEventId"] for e in events.events]
    assert len(set(job_event_ids)) == len(job_event_ids)
    assert len({e["id"] for e in events.events}) == len(events.events)


def test_events_match_the_documented_rule_pattern(store: JobStore, events: EventLog) -> None:
    # given
    from infra.constants import JOB_EVENT_PATTERN

    # when
    store.create_job(ACCOUNT, example_create_job_params())
    assert store.drain(5)

    # then
    event = events.events[0]
    assert event["source"] in JOB_EVENT_PATTERN["source"]
    assert event["detail-type"] in JOB_EVENT_PATTERN["detail-type"]
    for key, allowed in JOB_EVENT_PATTERN["detail"].items():
        assert event["detail"][key] in allowed


def test_failed_job_event_carries_its_failure_codes(store: JobStore, events: EventLog) -> None:
    # given
    job_id = store.create_job(ACCOUNT, example_create_job_params())

    # when
    store.fail(job_id, "The manifest could not be read", code="ManifestNotFound")
    store.advance(job_id)
    assert store.drain(5)

    # then
    assert events.statuses(job_id) == ["New", "Failing", "Failed"]
    assert events.events[-1]["detail"]["serviceEventDetails"]["failureCodes"] == ["ManifestNotFound"]
    job = store.describe_job(ACCOUNT, job_id)
    assert job["FailureReasons"] == [
        {"FailureCode": "ManifestNotFound", "FailureReason": "The manifest could not be read"}
    ]


def test_job_suspended_for_more_than_thirty_days_fails(store: JobStore, clock: FakeClock) -> None:
    # given
    job_id = store.create_job(ACCOUNT, example_create_job_params())
    store.advance_until(job_id, "Suspended")

    # when
    clock.advance(days=29)
    store.tick()
    still_waiting = store.job_status(job_id)
    clock.advance(days=2)
    store.tick()
    store.tick()

    # then
    assert still_waiting == "Suspended"
    assert store.job_status(job_id) == "Failed"
    assert store.describe_job(ACCOUNT, job_id)["FailureReasons"]


def test_dropped_events_are_never_delivered(store: JobStore, events: EventLog) -> None:
    # given
    job_id = store.create_job(ACCOUNT, example_create_job_params())
    store.drop_next_events(2)

    # when
    store.advance_until(job_id, "Suspended")
    assert store.drain(5)

    # then
    assert events.statuses(job_id) == ["New"]
    assert [e["detail"]["serviceEventDetails"]["status"] for e in store.emitted] == [
        "New",
        "Preparing",
        "Suspended",
    ]


def test_duplicated_events_are_delivered_twice_with_the_same_job_event_id(store: JobStore, events: EventLog) -> None:
    # given
    store.duplicate_next_events(1)

    # when
    job_id = store.create_job(ACCOUNT, example_create_job_params())
    store.advance(job_id)
    assert store.drain(5)

    # then
    assert events.statuses(job_id) == ["New", "New", "Preparing"]
    assert events.events[0] == events.events[1]


def test_listener_can_call_the_emulator_back_over_http(client: BaseClient, store: JobStore, events: EventLog) -> None:
    # given
    def confirm_when_suspended(event: dict[str, Any]) -> None:
        details = event["detail"]["serviceEventDetails"]
        if details["status"] == "Suspended":
            client.update_job_status(
                AccountId=ACCOUNT, JobId=details["jobId"], RequestedJobStatus="Ready", StatusUpdateReason="auto"
            )

    store.subscribe(confirm_when_suspended)
    job_id = create_job(client)

    # when
    store.advance_until(job_id, "Suspended")
    assert store.drain(5)

    # then
    assert events.statuses(job_id) == ["New", "Preparing", "Suspended", "Ready"]
    assert describe(client, job_id)["StatusUpdateReason"] == "auto"


def test_update_job_status_answers_without_waiting_for_listeners(client: BaseClient, store: JobStore) -> None:
    # given
    release = threading.Event()
    store.subscribe(lambda event: release.wait(5))
    job_id = create_job(client)
    store.advance_until(job_id, "Suspended")

    # when
    started = time.monotonic()
    answer = client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Ready")
    elapsed = time.monotonic() - started

    # then
    release.set()
    assert answer["Status"] == "Ready"
    assert elapsed < 2
    assert store.drain(10)


# --------------------------------------------------------------------------- fault hooks


def test_throttled_call_is_retried_by_standard_retry_mode(proxy: LoopbackProxy, store: JobStore) -> None:
    # given
    retrying = make_client(proxy, retries={"mode": "standard", "max_attempts": 3})
    store.throttle_next("ListJobs", 1)

    # when
    answer = retrying.list_jobs(AccountId=ACCOUNT)

    # then
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert store.calls["ListJobs"] == 2


def test_throttled_call_without_retries_raises_too_many_requests(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client)
    store.throttle_next("DescribeJob", 1)

    # when
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.describe_job(AccountId=ACCOUNT, JobId=job_id)

    # then
    assert describe(client, job_id)["JobId"] == job_id


def test_internal_error_is_an_internal_service_exception_with_status_500(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client)
    store.fail_next("UpdateJobStatus", 1)

    # when
    with pytest.raises(client.exceptions.InternalServiceException) as caught:
        client.update_job_status(AccountId=ACCOUNT, JobId=job_id, RequestedJobStatus="Cancelled")

    # then
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert describe(client, job_id)["Status"] == "New"


def test_delay_slows_only_the_chosen_operation(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client)
    store.delay["DescribeJob"] = 0.4

    # when
    started = time.monotonic()
    client.list_jobs(AccountId=ACCOUNT)
    listed = time.monotonic() - started
    started = time.monotonic()
    describe(client, job_id)
    described = time.monotonic() - started

    # then
    assert listed < 0.4 <= described


def test_auto_advance_runs_an_unconfirmed_job_to_complete() -> None:
    # given
    store = JobStore()
    with S3ControlEmulator(store, auto_advance=True, interval=0.01):
        job_id = store.create_job(ACCOUNT, example_create_job_params(ConfirmationRequired=False))

        # when
        deadline = time.monotonic() + 5
        while store.job_status(job_id) != "Complete" and time.monotonic() < deadline:
            time.sleep(0.01)

    # then
    assert store.job_status(job_id) == "Complete"
    store.close()


def test_auto_advance_leaves_a_job_awaiting_confirmation_suspended() -> None:
    # given
    store = JobStore()
    with S3ControlEmulator(store, auto_advance=True, interval=0.01):
        job_id = store.create_job(ACCOUNT, example_create_job_params(ConfirmationRequired=True))

        # when
        time.sleep(0.2)

    # then
    assert store.job_status(job_id) == "Suspended"
    store.close()


# --------------------------------------------------------------------------- the proxy


class Recorder(BaseHTTPRequestHandler):
    """A loopback HTTP server that answers JSON and records what it received."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    received: list[dict[str, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.received.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        payload = json.dumps({"ok": True}).encode()
        self.send_response(201 if self.command == "PUT" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "recorder")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (Recorder,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join(5)


def open_via(proxy: LoopbackProxy) -> Callable[..., Any]:
    return urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url})).open


def test_proxy_forwards_other_loopback_requests_unchanged(
    proxy: LoopbackProxy, recorder: tuple[str, list[dict[str, Any]]]
) -> None:
    # given
    url, received = recorder
    request = urllib.request.Request(
        f"{url}/api/chat.postMessage?x=1&y=two",
        data=b'{"text": "hello"}',
        method="PUT",
        headers={"Content-Type": "application/json", "Authorization": "Bearer xoxb-test"},
    )

    # when
    with open_via(proxy)(request, timeout=5) as response:
        status, header, body = response.status, response.headers["X-Upstream"], response.read()

    # then
    assert (status, header, json.loads(body)) == (201, "recorder", {"ok": True})
    [seen] = received
    assert seen["method"] == "PUT"
    assert seen["path"] == "/api/chat.postMessage?x=1&y=two"
    assert seen["body"] == b'{"text": "hello"}'
    assert seen["headers"]["Authorization"] == "Bearer xoxb-test"
    assert seen["headers"]["Host"] == url.removeprefix("http://")


@pytest.mark.parametrize("url", ["http://example.com/", "http://169.254.169.254/latest/meta-data/"])
def test_proxy_refuses_hosts_outside_loopback(proxy: LoopbackProxy, url: str) -> None:
    # given / when
    with pytest.raises(urllib.error.HTTPError) as caught:
        open_via(proxy)(url, timeout=5)

    # then
    assert caught.value.code == 403
    assert b"only loopback" in caught.value.read()
    assert proxy.requests[-1].upstream is None


def test_proxy_answers_connect_with_405(proxy: LoopbackProxy) -> None:
    # given
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]), timeout=5)

    # when
    connection.request("CONNECT", "slack.com:443")
    response = connection.getresponse()

    # then
    assert response.status == 405
    assert b"CONNECT" in response.read()
    connection.close()


def test_client_env_sends_the_default_s3control_client_through_the_proxy(
    proxy: LoopbackProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    for name, value in s3control_client_env(proxy.url).items():
        monkeypatch.setenv(name, value)
    plain = boto3.session.Session().client("s3control", region_name="us-east-1")

    # when
    job_id = plain.create_job(AccountId=ACCOUNT, **example_create_job_params())["JobId"]

    # then
    assert plain.describe_job(AccountId=ACCOUNT, JobId=job_id)["Job"]["Status"] == "New"
    assert proxy.requests[0].url.startswith(f"http://{ACCOUNT}.s3-control.test/v20180820/jobs")


def test_client_env_lets_other_aws_clients_on_loopback_bypass_the_proxy(
    proxy: LoopbackProxy, recorder: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    url, received = recorder
    for name, value in s3control_client_env(proxy.url).items():
        monkeypatch.setenv(name, value)
    dynamodb = boto3.session.Session().client("dynamodb", region_name="us-east-1", endpoint_url=url)

    # when
    dynamodb.list_tables()

    # then
    assert len(received) == 1
    assert proxy.requests == []


def test_slack_sdk_calls_to_loopback_are_forwarded_by_the_proxy(
    proxy: LoopbackProxy, recorder: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    url, received = recorder
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    slack = WebClient(token="xoxb-test", base_url=f"{url}/api/")

    # when
    answer = slack.chat_postMessage(channel="C0123456789", text="hello")

    # then
    assert answer["ok"] is True
    assert received[0]["path"] == "/api/chat.postMessage"
    assert received[0]["headers"]["Authorization"] == "Bearer xoxb-test"
    assert [r.upstream for r in proxy.requests] == [url.removeprefix("http://")]


def test_slack_sdk_still_reaches_a_loopback_stand_in_with_the_full_client_env(
    proxy: LoopbackProxy, recorder: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: slack_sdk passes HTTP_PROXY to urllib's ProxyHandler, which does honour NO_PROXY
    url, received = recorder
    for name, value in s3control_client_env(proxy.url).items():
        monkeypatch.setenv(name, value)
    slack = WebClient(token="xoxb-test", base_url=f"{url}/api/")

    # when
    answer = slack.chat_postMessage(channel="C0123456789", text="hello")

    # then
    assert answer["ok"] is True
    assert len(received) == 1
    assert proxy.requests == []
