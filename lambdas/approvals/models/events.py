"""EventBridge events for S3 Batch Operations jobs (CloudTrail service events), and the CloudTrail record of
the CreateJob call that names who created a job, parsed at the edge."""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from approvals.models.job import ACCOUNT_ID, JOB_ID, REGION
from approvals.models.records import PrincipalType


class ServiceEventDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the wire names only (aliases), as S3 sends them

    job_id: str = Field(alias="jobId", min_length=1, max_length=64)
    job_arn: str | None = Field(default=None, alias="jobArn", max_length=2048)
    status: str = Field(min_length=1, max_length=32)
    job_event_id: str = Field(alias="jobEventId", min_length=1, max_length=128)
    failure_codes: list[str] = Field(default_factory=list, alias="failureCodes", max_length=100)
    status_change_reason: list[str] = Field(default_factory=list, alias="statusChangeReason", max_length=100)


class JobServiceEventDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the wire names only (aliases), as S3 sends them

    event_source: Literal["s3.amazonaws.com"] = Field(alias="eventSource")
    event_name: Literal["JobCreated", "JobStatusChanged"] = Field(alias="eventName")
    event_type: Literal["AwsServiceEvent"] = Field(alias="eventType")
    aws_region: str | None = Field(default=None, alias="awsRegion")
    recipient_account_id: str | None = Field(default=None, alias="recipientAccountId")
    service_event_details: ServiceEventDetails = Field(alias="serviceEventDetails")


class JobEvent(EventBridgeModel):
    """An S3 Batch Operations job event as EventBridge delivers it (the rule's pattern, checked again)."""

    model_config = ConfigDict(populate_by_name=False)  # "detail-type", never "detail_type"

    source: Literal["aws.s3"]  # type: ignore[assignment]
    detail_type: Literal["AWS Service Event via CloudTrail"] = Field(alias="detail-type")  # type: ignore[assignment]
    detail: JobServiceEventDetail  # type: ignore[assignment]


class CreateJobCall(BaseModel):
    """Who called s3:CreateJob for a job, from CloudTrail's record of the call (the "AWS API Call via
    CloudTrail" event on EventBridge, or the same record from LookupEvents)."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    account_id: str
    region: str
    event_time: datetime
    principal_arn: str  # userIdentity.arn (for an assumed role, the session ARN)
    principal_type: PrincipalType = "Unknown"
    session_issuer_arn: str | None = None  # the role behind an assumed-role session
    event_id: str | None = None  # CloudTrail's eventID of the record


# -- the CreateJob management event ("AWS API Call via CloudTrail") ----------------------------------

CREATE_JOB_EVENT_SOURCE = "s3.amazonaws.com"  # S3 Control's calls are recorded under S3's event source
CREATE_JOB_EVENT_NAME = "CreateJob"  # also an event name of Glue, IoT and others: always check the source
MAX_ARN = 2048
# Printable ASCII without spaces: IAM names and session names are ASCII, and a lone surrogate or a control
# character never reaches a message or the audit.
_ARN = re.compile(r"arn:[\x21-\x7e]{1,2044}")
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]{0,252}")
_EVENT_ID = re.compile(r"[\x21-\x7e]{1,128}")
_TYPES: frozenset[str] = frozenset(typing.get_args(PrincipalType))


class CreateJobApiDetail(BaseModel):
    """The CloudTrail record of the call, as EventBridge's ``detail``. Only what tells the event apart is
    checked here; ``create_job_call`` reads the rest (kept as extra fields) tolerantly."""

    model_config = ConfigDict(extra="allow")  # the whole record travels on to create_job_call

    event_source: Literal["s3.amazonaws.com"] = Field(alias="eventSource")
    event_name: Literal["CreateJob"] = Field(alias="eventName")


class CreateJobApiEvent(EventBridgeModel):
    """The CreateJob management event as EventBridge delivers it where a trail records management events."""

    model_config = ConfigDict(populate_by_name=False)  # "detail-type", never "detail_type"

    source: Literal["aws.s3"]  # type: ignore[assignment]
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")  # type: ignore[assignment]
    detail: CreateJobApiDetail  # type: ignore[assignment]

    def call(self) -> CreateJobCall | None:
        """Who created which job; None when the call failed or the record lacks what names the job."""
        return create_job_call(self.detail.model_dump(by_alias=True))


def create_job_call(record: object) -> CreateJobCall | None:
    """Read a CloudTrail record of s3:CreateJob (EventBridge's ``detail``, or LookupEvents' ``CloudTrailEvent``
    once parsed) into who created which job. Never raises.

    Tolerant of missing fields (no real S3 Control CreateJob record has been seen; this follows the documented
    record format), strict on what it returns: None unless the record is a successful CreateJob of S3 (no
    ``errorCode``) naming a valid job ID (``responseElements.jobId``), a 12-digit account
    (``recipientAccountId``, else ``userIdentity.accountId``), a region, a time, and a principal.

    The principal is ``userIdentity.arn`` (for an assumed role, the session ARN; the role is
    ``session_issuer_arn``), or ``service:<name>`` for an AWS service (``invokedBy``), or
    ``account:<id>`` for another account that the record names by account only.
    """
    try:
        return _create_job_call(record)
    except (ValueError, TypeError, OverflowError, ValidationError):  # pragma: no cover - belt and braces
        return None


def _create_job_call(record: object) -> CreateJobCall | None:
    if not isinstance(record, Mapping):
        return None
    if record.get("eventName") != CREATE_JOB_EVENT_NAME or record.get("eventSource") != CREATE_JOB_EVENT_SOURCE:
        return None
    if record.get("errorCode") is not None or record.get("errorMessage") is not None:
        return None
    response = record.get("responseElements")
    job_id = response.get("jobId") if isinstance(response, Mapping) else None
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        return None
    identity = record.get("userIdentity")
    if not isinstance(identity, Mapping):
        return None
    recipient = record.get("recipientAccountId")  # the account the call was made in; when present, it decides
    account = _account(recipient) if recipient is not None else _account(identity.get("accountId"))
    region = record.get("awsRegion")
    moment = _time(record.get("eventTime"))
    if account is None or not isinstance(region, str) or not REGION.fullmatch(region) or moment is None:
        return None
    kind = identity.get("type")
    principal_type = typing.cast(PrincipalType, kind if isinstance(kind, str) and kind in _TYPES else "Unknown")
    principal = _principal(identity, principal_type)
    if principal is None:
        return None
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, Mapping) else None
    event_id = record.get("eventID")
    return CreateJobCall(
        job_id=job_id,
        account_id=account,
        region=region,
        event_time=moment,
        principal_arn=principal,
        principal_type=principal_type,
        session_issuer_arn=_arn(issuer.get("arn")) if isinstance(issuer, Mapping) else None,
        event_id=event_id if isinstance(event_id, str) and _EVENT_ID.fullmatch(event_id) else None,
    )


def _principal(identity: Mapping[str, Any], principal_type: str) -> str | None:
    arn = _arn(identity.get("arn"))
    if principal_type == "AWSService":
        service = identity.get("invokedBy")
        if isinstance(service, str) and _SERVICE.fullmatch(service):
            return f"service:{service}"
        return arn
    if arn is None and principal_type == "AWSAccount":
        account = _account(identity.get("accountId"))
        return f"account:{account}" if account else None
    return arn


def _arn(value: object) -> str | None:
    return value if isinstance(value, str) and len(value) <= MAX_ARN and _ARN.fullmatch(value) else None


def _account(value: object) -> str | None:
    return value if isinstance(value, str) and ACCOUNT_ID.fullmatch(value) else None


def _time(value: object) -> datetime | None:
    """CloudTrail writes ``2026-01-02T03:04:05Z``; a time without a zone is read as UTC."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
