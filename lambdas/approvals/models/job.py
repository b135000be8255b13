"""An S3 Batch Operations job, as DescribeJob returns it, and the reference that names one."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# ASCII only and matched whole (fullmatch): "$" would admit a trailing newline, "\d" any Unicode digit.
ACCOUNT_ID = re.compile(r"[0-9]{12}")
JOB_ID = re.compile(r"[A-Za-z0-9_-]{5,36}")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")

TERMINAL_STATUSES = frozenset({"Complete", "Failed", "Cancelled"})


class JobRef(BaseModel):
    """Which job: account, region and job ID, each validated the way S3 Control does."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    region: str
    job_id: str

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
            raise ValueError("account ID must be 12 digits")
        return value

    @field_validator("job_id")
    @classmethod
    def _job(cls, value: str) -> str:
        if not isinstance(value, str) or not JOB_ID.fullmatch(value):
            raise ValueError("job ID must be 5 to 36 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not isinstance(value, str) or not REGION.fullmatch(value):
            raise ValueError("region must look like us-east-1")
        return value

    @property
    def key(self) -> str:
        """The partition key of this job's records."""
        return f"JOB#{self.account_id}#{self.region}#{self.job_id}"

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:s3:{self.region}:{self.account_id}:job/{self.job_id}"

    @property
    def console_url(self) -> str:
        return (
            f"https://{self.region}.console.aws.amazon.com/s3/jobs/{self.job_id}"
            f"?region={self.region}&accountId={self.account_id}"
        )


class ProgressSummary(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    total: int | None = Field(default=None, alias="TotalNumberOfTasks")
    succeeded: int | None = Field(default=None, alias="NumberOfTasksSucceeded")
    failed: int | None = Field(default=None, alias="NumberOfTasksFailed")


class FailureReason(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    code: str | None = Field(default=None, alias="FailureCode")
    reason: str | None = Field(default=None, alias="FailureReason")


class Job(BaseModel):
    """The fields of DescribeJob's ``Job`` that the product reads. Unions stay as dicts."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    job_id: str = Field(alias="JobId")
    job_arn: str | None = Field(default=None, alias="JobArn")
    description: str | None = Field(default=None, alias="Description")
    confirmation_required: bool = Field(default=False, alias="ConfirmationRequired")
    status: str = Field(alias="Status")
    status_update_reason: str | None = Field(default=None, alias="StatusUpdateReason")
    suspended_cause: str | None = Field(default=None, alias="SuspendedCause")
    suspended_date: datetime | None = Field(default=None, alias="SuspendedDate")
    operation: dict[str, Any] = Field(default_factory=dict, alias="Operation")
    manifest: dict[str, Any] | None = Field(default=None, alias="Manifest")
    manifest_generator: dict[str, Any] | None = Field(default=None, alias="ManifestGenerator")
    priority: int | None = Field(default=None, alias="Priority")
    role_arn: str | None = Field(default=None, alias="RoleArn")
    report: dict[str, Any] | None = Field(default=None, alias="Report")
    progress: ProgressSummary | None = Field(default=None, alias="ProgressSummary")
    failure_reasons: list[FailureReason] = Field(default_factory=list, alias="FailureReasons")
    creation_time: datetime | None = Field(default=None, alias="CreationTime")
    termination_date: datetime | None = Field(default=None, alias="TerminationDate")

    @property
    def awaiting_confirmation(self) -> bool:
        """Suspended and ConfirmationRequired: the only signal (SuspendedCause is only a hint)."""
        return self.status == "Suspended" and self.confirmation_required

    @property
    def operation_name(self) -> str:
        return next(iter(self.operation), "Unknown")

    @property
    def object_count(self) -> int | None:
        return self.progress.total if self.progress else None
