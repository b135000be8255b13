"""The EventBridge rule stand-in: the project's own rule pattern, each content filter, and delivery."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.constants import JOB_EVENT_PATTERN
from sandbox.router import EventRouter, InvalidEventPattern, make_event, matches, validate_pattern


def job_event(event_name: str, status: str, *, job_id: str = "a1b2c3d4-0001") -> dict[str, Any]:
    """An S3 Batch Operations job event in the documented CloudTrail service-event shape."""
    return make_event(
        "aws.s3",
        "AWS Service Event via CloudTrail",
        {
            "eventVersion": "1.08",
            "userIdentity": {"accountId": "123456789012", "invokedBy": "s3.amazonaws.com"},
            "eventTime": "2024-05-01T12:00:00Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": event_name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "s3.amazonaws.com",
            "userAgent": "s3.amazonaws.com",
            "eventID": "8c3a1f0e-0000-4000-8000-000000000001",
            "readOnly": False,
            "eventType": "AwsServiceEvent",
            "managementEvent": False,
            "recipientAccountId": "123456789012",
            "serviceEventDetails": {
                "jobId": job_id,
                "jobArn": f"arn:aws:s3:us-east-1:123456789012:job/{job_id}",
                "status": status,
                "jobEventId": "b6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
                "failureCodes": [],
                "statusChangeReason": [],
            },
            "eventCategory": "Management",
        },
    )


def routed(pattern: dict[str, Any]) -> tuple[EventRouter, list[dict[str, Any]]]:
    router = EventRouter()
    received: list[dict[str, Any]] = []
    router.add_rule("rule", pattern, received.append)
    return router, received


# ----------------------------------------------------------------------------- the project's rule


@pytest.mark.parametrize(
    ("event_name", "status"),
    [("JobCreated", "New"), ("JobStatusChanged", "Suspended"), ("JobStatusChanged", "Complete")],
)
def test_the_job_rule_delivers_documented_batch_operations_events(event_name: str, status: str) -> None:
    # given
    router, received = routed(JOB_EVENT_PATTERN)
    event = job_event(event_name, status)

    # when
    matched = router.put_events(event)

    # then
    assert matched == ["rule"]
    assert received == [event]


def test_the_job_rule_ignores_other_cloudtrail_events_from_s3() -> None:
    # given
    router, received = routed(JOB_EVENT_PATTERN)
    put_object = job_event("PutObject", "New")

    # when
    matched = router.put_events(put_object)

    # then
    assert matched == []
    assert received == []
    assert router.unmatched == [put_object]


def test_the_job_rule_ignores_the_same_event_from_another_source() -> None:
    # given
    router, received = routed(JOB_EVENT_PATTERN)
    event = job_event("JobCreated", "New")
    event["source"] = "aws.s3control"

    # when
    router.put_events(event)

    # then
    assert received == []


def test_the_job_rule_ignores_the_create_job_management_api_call() -> None:
    # given
    router, received = routed(JOB_EVENT_PATTERN)
    api_call = job_event("CreateJob", "New")
    api_call["detail-type"] = "AWS API Call via CloudTrail"
    api_call["detail"]["eventType"] = "AwsApiCall"

    # when
    router.put_events(api_call)

    # then
    assert received == []


def test_the_job_rule_ignores_a_service_event_from_another_service() -> None:
    # given
    router, received = routed(JOB_EVENT_PATTERN)
    event = job_event("JobCreated", "New")
    event["detail"]["eventSource"] = "batch.amazonaws.com"

    # when
    router.put_events(event)

    # then
    assert received == []


# ----------------------------------------------------------------------------- each content filter

CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # exact values, type-exact
    ("string equals", {"a": ["x"]}, {"a": "x"}, True),
    ("string differs", {"a": ["x"]}, {"a": "y"}, False),
    ("one of several", {"a": ["x", "y"]}, {"a": "y"}, True),
    ("number equals", {"a": [5]}, {"a": 5}, True),
    ("int equals float", {"a": [5]}, {"a": 5.0}, True),
    ("number is not its string", {"a": [5]}, {"a": "5"}, False),
    ("string is not its number", {"a": ["5"]}, {"a": 5}, False),
    ("true equals", {"a": [True]}, {"a": True}, True),
    ("true is not one", {"a": [True]}, {"a": 1}, False),
    ("null equals null", {"a": [None]}, {"a": None}, True),
    ("null needs the field", {"a": [None]}, {}, False),
    ("missing field", {"a": ["x"]}, {"b": "x"}, False),
    # nested objects and arrays
    ("nested", {"d": {"e": ["x"]}}, {"d": {"e": "x", "f": 1}}, True),
    ("nested mismatch", {"d": {"e": ["x"]}}, {"d": {"e": "y"}}, False),
    ("nested where a leaf is", {"d": {"e": ["x"]}}, {"d": "x"}, False),
    ("leaf where an object is", {"d": ["x"]}, {"d": {"e": "x"}}, False),
    ("array element", {"a": ["x"]}, {"a": ["w", "x"]}, True),
    ("array without it", {"a": ["x"]}, {"a": ["w", "v"]}, False),
    ("empty array", {"a": ["x"]}, {"a": []}, False),
    ("object in array", {"d": {"e": ["x"]}}, {"d": [{"e": "y"}, {"e": "x"}]}, True),
    ("all keys AND", {"a": ["x"], "b": ["y"]}, {"a": "x", "b": "z"}, False),
    # prefix / suffix
    ("prefix", {"a": [{"prefix": "Job"}]}, {"a": "JobCreated"}, True),
    ("prefix mismatch", {"a": [{"prefix": "Job"}]}, {"a": "CreateJob"}, False),
    ("prefix on number", {"a": [{"prefix": "1"}]}, {"a": 12}, False),
    ("prefix ignoring case", {"a": [{"prefix": {"equals-ignore-case": "job"}}]}, {"a": "JOBX"}, True),
    ("suffix", {"a": [{"suffix": ".csv"}]}, {"a": "manifest.csv"}, True),
    ("suffix mismatch", {"a": [{"suffix": ".csv"}]}, {"a": "manifest.json"}, False),
    ("suffix ignoring case", {"a": [{"suffix": {"equals-ignore-case": ".CSV"}}]}, {"a": "m.csv"}, True),
    # anything-but
    ("anything-but value", {"a": [{"anything-but": "x"}]}, {"a": "y"}, True),
    ("anything-but same", {"a": [{"anything-but": "x"}]}, {"a": "x"}, False),
    ("anything-but list", {"a": [{"anything-but": ["x", "y"]}]}, {"a": "y"}, False),
    ("anything-but number", {"a": [{"anything-but": [1, 2]}]}, {"a": 3}, True),
    ("anything-but missing", {"a": [{"anything-but": "x"}]}, {}, False),
    ("anything-but prefix", {"a": [{"anything-but": {"prefix": "Job"}}]}, {"a": "PutObject"}, True),
    ("anything-but prefix hit", {"a": [{"anything-but": {"prefix": "Job"}}]}, {"a": "JobCreated"}, False),
    ("anything-but suffix", {"a": [{"anything-but": {"suffix": ".tmp"}}]}, {"a": "a.tmp"}, False),
    ("anything-but ignore case", {"a": [{"anything-but": {"equals-ignore-case": ["X"]}}]}, {"a": "x"}, False),
    ("anything-but wildcard", {"a": [{"anything-but": {"wildcard": "*.tmp"}}]}, {"a": "a.csv"}, True),
    # exists
    ("exists true", {"a": [{"exists": True}]}, {"a": "x"}, True),
    ("exists true on null", {"a": [{"exists": True}]}, {"a": None}, True),
    ("exists true absent", {"a": [{"exists": True}]}, {}, False),
    ("exists false absent", {"a": [{"exists": False}]}, {}, True),
    ("exists false present", {"a": [{"exists": False}]}, {"a": "x"}, False),
    ("exists false nested absent", {"d": {"e": [{"exists": False}]}}, {}, True),
    ("exists true on object", {"d": [{"exists": True}]}, {"d": {"e": 1}}, False),
    # numeric
    ("numeric equals", {"a": [{"numeric": ["=", 5]}]}, {"a": 5}, True),
    ("numeric range", {"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, True),
    ("numeric below range", {"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 0}, False),
    ("numeric on string", {"a": [{"numeric": [">", 0]}]}, {"a": "7"}, False),
    ("numeric on bool", {"a": [{"numeric": [">", 0]}]}, {"a": True}, False),
    ("numeric >=", {"a": [{"numeric": [">=", 1000]}]}, {"a": 1000.0}, True),
    ("numeric <", {"a": [{"numeric": ["<", 10]}]}, {"a": 10}, False),
    # equals-ignore-case
    ("ignore case", {"a": [{"equals-ignore-case": "suspended"}]}, {"a": "Suspended"}, True),
    ("ignore case differs", {"a": [{"equals-ignore-case": "suspended"}]}, {"a": "Suspend"}, False),
    # wildcard
    ("wildcard", {"a": [{"wildcard": "arn:*:job/*"}]}, {"a": "arn:aws:s3:us-east-1:1:job/abc"}, True),
    ("wildcard mismatch", {"a": [{"wildcard": "arn:*:job/*"}]}, {"a": "arn:aws:s3:::bucket"}, False),
    ("wildcard escaped star", {"a": [{"wildcard": "a\\*b"}]}, {"a": "a*b"}, True),
    ("wildcard escaped star literal", {"a": [{"wildcard": "a\\*b"}]}, {"a": "axb"}, False),
    ("wildcard whole value", {"a": [{"wildcard": "*.csv"}]}, {"a": "x.csv.bak"}, False),
    # cidr and $or
    ("cidr inside", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.7"}, True),
    ("cidr outside", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.7"}, False),
    ("$or first", {"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"a": "x"}, True),
    ("$or second", {"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"b": "y"}, True),
    ("$or neither", {"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"a": "y"}, False),
    # alternatives mix values and filters
    ("value or filter", {"a": ["x", {"prefix": "Job"}]}, {"a": "JobX"}, True),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_each_content_filter_matches_as_eventbridge_does(
    pattern: dict[str, Any], event: dict[str, Any], expected: bool
) -> None:
    # when
    result = matches(pattern, event)

    # then
    assert result is expected


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"source": "aws.s3"},
        {"source": []},
        {"detail": {}},
        {"a": [{"unknown-filter": 1}]},
        {"a": [{"prefix": 1}]},
        {"a": [{"prefix": "x", "suffix": "y"}]},
        {"a": [{"numeric": [">"]}]},
        {"a": [{"numeric": ["~", 1]}]},
        {"a": [{"numeric": [">", "1"]}]},
        {"a": [{"exists": "yes"}]},
        {"a": [{"wildcard": "a**b"}]},
        {"a": [{"cidr": "not-a-network"}]},
        {"a": [{"anything-but": {"numeric": [">", 1]}}]},
        {"a": [{"anything-but": []}]},
        {"$or": [{"a": ["x"]}]},
    ],
    ids=repr,
)
def test_a_malformed_pattern_is_refused_like_put_rule(pattern: dict[str, Any]) -> None:
    # when / then
    with pytest.raises(InvalidEventPattern):
        validate_pattern(pattern)


def test_the_project_pattern_is_a_valid_pattern() -> None:
    # when / then
    validate_pattern(JOB_EVENT_PATTERN)


# ----------------------------------------------------------------------------- delivery


def test_every_matching_rule_gets_its_own_copy_of_the_event() -> None:
    # given
    router = EventRouter()
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []

    def mutating_target(event: dict[str, Any]) -> None:
        event["detail"]["serviceEventDetails"]["status"] = "tampered"
        first.append(event)

    router.add_rule("notifier", JOB_EVENT_PATTERN, mutating_target)
    router.add_rule("audit", {"source": ["aws.s3"]}, second.append)
    router.add_rule("elsewhere", {"source": ["aws.ec2"]}, second.append)
    event = job_event("JobStatusChanged", "Suspended")
    original = copy.deepcopy(event)

    # when
    matched = router.put_events(event)

    # then
    assert matched == ["notifier", "audit"]
    assert second == [original]
    assert event == original
    assert router.deliveries_to("audit") == [original]
    assert len(router) == 2


def test_a_failing_target_is_recorded_and_raised_after_the_others_ran() -> None:
    # given
    router = EventRouter()
    received: list[dict[str, Any]] = []

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    router.add_rule("broken", JOB_EVENT_PATTERN, broken)
    router.add_rule("healthy", JOB_EVENT_PATTERN, received.append)

    # when
    with pytest.raises(RuntimeError, match="boom"):
        router.put_events(job_event("JobCreated", "New"))

    # then
    assert len(received) == 1
    assert [failure.rule for failure in router.failures] == ["broken"]


def test_a_router_told_not_to_raise_only_records_target_failures() -> None:
    # given
    router = EventRouter(raise_target_errors=False)

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    router.add_rule("broken", JOB_EVENT_PATTERN, broken)

    # when
    matched = router.put_events(job_event("JobCreated", "New"))

    # then
    assert matched == ["broken"]
    assert isinstance(router.failures[0].error, RuntimeError)


def test_a_disabled_rule_receives_nothing() -> None:
    # given
    router, received = routed(JOB_EVENT_PATTERN)
    router.disable_rule("rule")

    # when
    router.put_events(job_event("JobCreated", "New"))

    # then
    assert received == []


def test_a_rule_name_is_used_once() -> None:
    # given
    router, _ = routed(JOB_EVENT_PATTERN)

    # when / then
    with pytest.raises(ValueError, match="already exists"):
        router.add_rule("rule", JOB_EVENT_PATTERN, print)


def test_an_event_must_be_json_like_on_the_bus() -> None:
    # given
    router, _ = routed(JOB_EVENT_PATTERN)
    event = job_event("JobCreated", "New")
    event["detail"]["not-json"] = object()

    # when / then
    with pytest.raises(TypeError):
        router.put_events(event)
