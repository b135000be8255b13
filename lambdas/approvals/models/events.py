"""EventBridge events for S3 Batch Operations jobs (CloudTrail service events), parsed at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

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
