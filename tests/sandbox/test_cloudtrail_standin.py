"""The CloudTrail stand-in is as strict as LookupEvents: parameters, pages, visibility, accounts and the rate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from approvals.models.events import CreateJobApiEvent, create_job_call
from sandbox.cloudtrail import CloudTrailHistory, CloudTrailStandIn, api_call_event, create_job_record

ACCOUNT = "111122223333"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


class Clocks:
    def __init__(self) -> None:
        self.now = NOW
        self.seconds = 0.0

    def wall(self) -> datetime:
        return self.now

    def rate(self) -> float:
        return self.seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def history(clocks: Clocks) -> CloudTrailHistory:
    return CloudTrailHistory(account_id=ACCOUNT, region="eu-west-1", clock=clocks.wall, rate_clock=clocks.rate)


@pytest.fixture
def standin(history: CloudTrailHistory) -> Iterator[CloudTrailStandIn]:
    with CloudTrailStandIn(history) as running:
        yield running


def client(standin: CloudTrailStandIn, region: str = "eu-west-1", key: str = "AKIDSANDBOX") -> Any:
    return boto3.client(
        "cloudtrail",
        region_name=region,
        endpoint_url=standin.url,
        aws_access_key_id=key,
        aws_secret_access_key="sandbox",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def code_of(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return str(raised.value.response["Error"]["Code"])


def record(history: CloudTrailHistory, job_id: str, minutes_ago: float, region: str = "eu-west-1") -> dict[str, Any]:
    made = create_job_record(
        job_id, principal_arn=ALICE, principal_type="IAMUser", account_id=ACCOUNT, region=region,
        event_time=NOW - timedelta(minutes=minutes_ago),
    )  # fmt: skip
    history.record(made)
    return made


def test_an_event_carries_the_record_and_its_summary(standin: CloudTrailStandIn, history: CloudTrailHistory) -> None:
    # given
    made = record(history, "job-00001", 1)

    # when
    (event,) = client(standin).lookup_events()["Events"]

    # then
    assert event["EventId"] == made["eventID"]
    assert (event["EventName"], event["EventSource"], event["ReadOnly"]) == ("CreateJob", "s3.amazonaws.com", "false")
    assert event["Username"] == "alice"
    assert event["AccessKeyId"] == made["userIdentity"]["accessKeyId"]
    assert event["EventTime"] == NOW - timedelta(minutes=1)
    assert json.loads(event["CloudTrailEvent"]) == made
    assert create_job_call(json.loads(event["CloudTrailEvent"])) is not None


def test_events_are_newest_first_and_paged_with_a_token(standin: CloudTrailStandIn, history: CloudTrailHistory,
                                                         clocks: Clocks) -> None:  # fmt: skip
    # given
    for number in range(7):
        record(history, f"job-{number:05d}", 10 - number)
    ct = client(standin)
    seen: list[str] = []
    params: dict[str, Any] = {"MaxResults": 3}

    # when
    while True:
        clocks.seconds += 1  # under the rate limit
        page = ct.lookup_events(**params)
        seen += [json.loads(e["CloudTrailEvent"])["responseElements"]["jobId"] for e in page["Events"]]
        if "NextToken" not in page:
            break
        params["NextToken"] = page["NextToken"]

    # then
    assert seen == [f"job-{number:05d}" for number in reversed(range(7))]


def test_a_token_works_only_with_the_parameters_it_was_issued_for(standin: CloudTrailStandIn,
                                                                   history: CloudTrailHistory) -> None:  # fmt: skip
    for number in range(3):
        record(history, f"job-{number:05d}", number + 1)
    ct = client(standin)
    token = ct.lookup_events(MaxResults=1)["NextToken"]
    other = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateJob"}]}
    assert code_of(ct.lookup_events, MaxResults=1, NextToken=token, **other) == "InvalidNextTokenException"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"MaxResults": 51}, "InvalidMaxResultsException"),
        ({"EventCategory": "management"}, "InvalidEventCategoryException"),
        ({"LookupAttributes": [{"AttributeKey": "JobId", "AttributeValue": "x"}]}, "InvalidLookupAttributesException"),
        (
            {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateJob"}] * 2},
            "InvalidLookupAttributesException",
        ),
        ({"StartTime": NOW, "EndTime": NOW - timedelta(seconds=1)}, "InvalidTimeRangeException"),
        ({"NextToken": "bm90IGEgdG9rZW4="}, "InvalidNextTokenException"),
    ],
)
def test_invalid_parameters_are_refused_as_cloudtrail_does(standin: CloudTrailStandIn, params: dict[str, Any],
                                                           code: str) -> None:  # fmt: skip
    assert code_of(client(standin).lookup_events, **params) == code


def test_one_attribute_filters_and_the_time_range_bounds(standin: CloudTrailStandIn, history: CloudTrailHistory,
                                                         clocks: Clocks) -> None:  # fmt: skip
    # given
    record(history, "job-00001", 30)
    record(history, "job-00002", 5)
    history.record({**create_job_record("x-00003", principal_arn=ALICE), "eventName": "UpdateJobStatus",
                    "eventTime": (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "awsRegion": "eu-west-1", "recipientAccountId": ACCOUNT})  # fmt: skip
    ct = client(standin)

    # when
    page = ct.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateJob"}],
        StartTime=NOW - timedelta(minutes=10),
        EndTime=NOW,
    )

    # then
    assert [json.loads(e["CloudTrailEvent"])["responseElements"]["jobId"] for e in page["Events"]] == ["job-00002"]


def test_an_event_is_visible_only_after_the_delay(standin: CloudTrailStandIn, history: CloudTrailHistory,
                                                  clocks: Clocks) -> None:  # fmt: skip
    # given
    history.visibility_delay = timedelta(minutes=2)
    record(history, "job-00001", 0)
    ct = client(standin)

    # when / then
    assert ct.lookup_events()["Events"] == []
    clocks.now += timedelta(minutes=2)
    clocks.seconds += 1
    assert len(ct.lookup_events()["Events"]) == 1


def test_events_older_than_90_days_are_gone(standin: CloudTrailStandIn, history: CloudTrailHistory) -> None:
    record(history, "job-00001", 90 * 24 * 60 + 1)
    record(history, "job-00002", 90 * 24 * 60 - 1)
    events = client(standin).lookup_events(StartTime=NOW - timedelta(days=365))["Events"]
    assert [json.loads(e["CloudTrailEvent"])["responseElements"]["jobId"] for e in events] == ["job-00002"]


def test_each_account_and_region_sees_its_own_history(standin: CloudTrailStandIn, history: CloudTrailHistory) -> None:
    # given
    record(history, "job-00001", 1)
    record(history, "job-00002", 1, region="us-west-2")
    history.accounts_by_access_key["AKIDOTHER"] = "444455556666"

    # then
    assert len(client(standin).lookup_events()["Events"]) == 1
    assert len(client(standin, "us-west-2").lookup_events()["Events"]) == 1
    assert client(standin, key="AKIDOTHER").lookup_events()["Events"] == []


def test_the_third_call_in_a_second_is_throttled_per_account_and_region(standin: CloudTrailStandIn,
                                                                        clocks: Clocks) -> None:  # fmt: skip
    # given
    ct = client(standin)
    ct.lookup_events()
    ct.lookup_events()

    # when / then
    assert code_of(ct.lookup_events) == "ThrottlingException"
    client(standin, "us-west-2").lookup_events()  # another region has its own limit
    clocks.seconds += 1.0
    ct.lookup_events()  # a second later


def test_throttling_is_http_400_and_botocore_retries_it(standin: CloudTrailStandIn, history: CloudTrailHistory,
                                                        clocks: Clocks) -> None:  # fmt: skip
    # given
    history.throttle_next(1)
    retrying = boto3.client(
        "cloudtrail", region_name="eu-west-1", endpoint_url=standin.url, aws_access_key_id="AKIDSANDBOX",
        aws_secret_access_key="sandbox", config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )  # fmt: skip

    # when
    response = retrying.lookup_events()

    # then
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert [call.error for call in history.calls] == ["ThrottlingException", None]


def test_an_injected_failure_is_a_server_error(standin: CloudTrailStandIn, history: CloudTrailHistory) -> None:
    history.fail_next(1)
    with pytest.raises(ClientError) as raised:
        client(standin).lookup_events()
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert raised.value.response["Error"]["Code"] == "InternalFailure"


def test_other_operations_are_unknown(standin: CloudTrailStandIn) -> None:
    assert code_of(client(standin).describe_trails) == "UnknownOperationException"


def test_the_eventbridge_envelope_is_recorded_as_its_record_and_parses(history: CloudTrailHistory) -> None:
    # given
    made = create_job_record("job-00001", principal_arn=ALICE, principal_type="IAMUser", account_id=ACCOUNT,
                             region="eu-west-1")  # fmt: skip
    event = api_call_event(made)

    # when
    history.record(event)

    # then
    assert history.records() == [made]
    call = CreateJobApiEvent.model_validate(event).call()
    assert call is not None
    assert (call.job_id, call.principal_arn) == ("job-00001", ALICE)


def test_a_failed_create_job_record_names_no_job() -> None:
    made = create_job_record("job-00001", principal_arn=ALICE, error_code="AccessDenied")
    assert create_job_call(made) is None
