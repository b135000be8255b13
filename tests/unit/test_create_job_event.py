"""The CreateJob management event and record: who created which job, read tolerantly, returned valid or None."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from approvals.models.events import CreateJobApiEvent, CreateJobCall, create_job_call
from approvals.models.job import ACCOUNT_ID, JOB_ID, REGION
from tests.helpers import load_event

JOB = "9a1e2b3c-4d5f-4a6b-8c7d-0e1f2a3b4c5d"
SSO_SESSION = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DataEngineer_3f9a1c2b4d5e6f70/alice@example.com"


def record(**changes: Any) -> dict[str, Any]:
    """The sample's CloudTrail record, with top-level changes (None removes a key)."""
    detail: dict[str, Any] = load_event("eventbridge_create_job_api_call")["detail"]
    for key, value in changes.items():
        if value is None:
            detail.pop(key, None)
        else:
            detail[key] = value
    return detail


def test_the_eventbridge_event_names_the_sso_user_and_the_role_behind_the_session() -> None:
    # given
    event = CreateJobApiEvent.model_validate(load_event("eventbridge_create_job_api_call"))

    # when
    call = event.call()

    # then
    assert call == CreateJobCall(
        job_id=JOB,
        account_id="111122223333",
        region="eu-west-1",
        event_time=datetime(2026, 11, 30, 9, 15, 1, tzinfo=UTC),
        principal_arn=SSO_SESSION,
        principal_type="AssumedRole",
        session_issuer_arn="arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/"
        "AWSReservedSSO_DataEngineer_3f9a1c2b4d5e6f70",
        event_id="2c0f7c1e-9a8b-4f3e-b2d1-c0b9a8f7e6d5",
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("detail-type",), "AWS Service Event via CloudTrail"),
        (("source",), "aws.iot"),
        (("detail", "eventName"), "UpdateJobStatus"),
        (("detail", "eventSource"), "iot.amazonaws.com"),
    ],
)
def test_the_envelope_admits_only_s3s_create_job_api_call(path: tuple[str, ...], value: str) -> None:
    # given
    event = load_event("eventbridge_create_job_api_call")
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    # when / then
    with pytest.raises(ValidationError):
        CreateJobApiEvent.model_validate(event)


@pytest.mark.parametrize(
    ("identity", "principal", "kind", "issuer"),
    [
        (
            {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/Alice", "accountId": "111122223333"},
            "arn:aws:iam::111122223333:user/Alice",
            "IAMUser",
            None,
        ),
        (
            {"type": "Root", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"},
            "arn:aws:iam::111122223333:root",
            "Root",
            None,
        ),
        (
            {"type": "AWSService", "invokedBy": "batchoperations.s3.amazonaws.com"},
            "service:batchoperations.s3.amazonaws.com",
            "AWSService",
            None,
        ),
        (
            {
                "type": "FederatedUser",
                "arn": "arn:aws:sts::111122223333:federated-user/Bob",
                "sessionContext": {"sessionIssuer": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/Bob"}},
            },
            "arn:aws:sts::111122223333:federated-user/Bob",
            "FederatedUser",
            "arn:aws:iam::111122223333:user/Bob",
        ),
        ({"type": "AWSAccount", "accountId": "444455556666"}, "account:444455556666", "AWSAccount", None),
        (
            {"type": "SAMLUser", "arn": "arn:aws:sts::111122223333:assumed-role/Saml/x"},
            "arn:aws:sts::111122223333:assumed-role/Saml/x",
            "Unknown",
            None,
        ),
    ],
)
def test_each_kind_of_principal_is_named(
    identity: dict[str, Any], principal: str, kind: str, issuer: str | None
) -> None:
    # when
    call = create_job_call(record(userIdentity=identity))

    # then
    assert call is not None
    assert (call.principal_arn, call.principal_type, call.session_issuer_arn) == (principal, kind, issuer)


def test_the_account_comes_from_the_identity_when_the_recipient_is_missing() -> None:
    # given
    detail = record(recipientAccountId=None)
    detail["userIdentity"]["accountId"] = "444455556666"

    # when
    call = create_job_call(detail)

    # then
    assert call is not None
    assert call.account_id == "444455556666"


def test_a_time_without_a_zone_is_utc_and_missing_optional_fields_are_tolerated() -> None:
    # given: only what names the job, the account, the region, the time and the principal
    detail = {
        "eventSource": "s3.amazonaws.com",
        "eventName": "CreateJob",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-30T09:15:01",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/a"},
        "responseElements": {"jobId": "abcde"},
    }

    # when
    call = create_job_call(detail)

    # then
    assert call is not None
    assert call.event_time == datetime(2026, 11, 30, 9, 15, 1, tzinfo=UTC)
    assert call.session_issuer_arn is None
    assert call.event_id is None


@pytest.mark.parametrize(
    "changes",
    [
        {"errorCode": "AccessDenied", "responseElements": None},
        {"errorCode": "InvalidRequest"},
        {"responseElements": None},
        {"responseElements": {"jobArn": "arn:aws:s3:eu-west-1:111122223333:job/x"}},
        {"responseElements": {"jobId": "bad id with spaces"}},
        {"responseElements": {"jobId": "abc"}},
        {"eventSource": "iot.amazonaws.com"},
        {"eventSource": None},
        {"eventName": "DescribeJob"},
        {"awsRegion": "mars-1"},
        {"awsRegion": None},
        {"eventTime": "yesterday"},
        {"eventTime": None},
        {"recipientAccountId": "1111222233334"},
        {"userIdentity": None},
        {"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/" + "a" * 2048}},
        {"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/al ice"}},
        {"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/\ud800"}},
        {"userIdentity": {"type": "IAMUser"}},
        {"userIdentity": {"type": "AWSService", "invokedBy": "Not A Service!"}},
    ],
)
def test_a_record_that_is_not_a_successful_create_job_naming_everything_is_none(changes: dict[str, Any]) -> None:
    detail = record()
    for key, value in changes.items():
        detail.pop(key, None) if value is None else detail.__setitem__(key, value)
    if "userIdentity" in changes and changes["userIdentity"] is not None:
        detail.pop("recipientAccountId")
    assert create_job_call(detail) is None


@pytest.mark.parametrize("value", [None, [], "CreateJob", 42, {"eventName": "CreateJob"}])
def test_what_is_not_a_record_is_none(value: object) -> None:
    assert create_job_call(value) is None


def _valid(call: CreateJobCall) -> bool:
    return bool(
        JOB_ID.fullmatch(call.job_id)
        and ACCOUNT_ID.fullmatch(call.account_id)
        and REGION.fullmatch(call.region)
        and call.event_time.tzinfo is not None
        and len(call.principal_arn) <= 2048
        and call.principal_arn.isascii()
        and (call.session_issuer_arn is None or call.session_issuer_arn.isascii())
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_is_none_or_a_valid_call(value: object) -> None:
    call = create_job_call(value)
    assert call is None or _valid(call)


KEYS = ["eventSource", "eventName", "errorCode", "responseElements", "userIdentity", "recipientAccountId"]
KEYS += ["awsRegion", "eventTime", "eventID"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=5), st.lists(st.sampled_from(KEYS), max_size=3))
def test_any_damage_to_a_real_record_is_none_or_a_valid_call(replaced: dict[str, Any], removed: list[str]) -> None:
    # given: the sample with some fields replaced by any JSON and some removed
    detail = copy.deepcopy(record())
    detail.update(replaced)
    for key in removed:
        detail.pop(key, None)

    # when
    call = create_job_call(detail)

    # then
    assert call is None or _valid(call)
    if call is not None:
        assert call.job_id == detail["responseElements"]["jobId"]
