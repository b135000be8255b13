"""The durable records: one approval request per job, and the audit records beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from approvals.models.job import JobRef


class RequestState(StrEnum):
    """Lifecycle of an approval request.

    posting → pending → deciding → approved | cancelled; ``closed`` when the job moved on
    outside Slack (confirmed or cancelled elsewhere, failed, expired, deleted).
    """

    POSTING = "posting"
    PENDING = "pending"
    DECIDING = "deciding"
    APPROVED = "approved"
    CANCELLED = "cancelled"
    CLOSED = "closed"


DecisionKind = Literal["approve", "cancel"]


class Actor(BaseModel):
    """A Slack user who acted."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    name: str
    team_id: str | None = None


class ApprovalRequest(BaseModel):
    """The request record for one job (sort key ``REQUEST``)."""

    model_config = ConfigDict(defer_build=True)

    job: JobRef
    state: RequestState
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    channel: str | None = None
    message_ts: str | None = None
    operation: str | None = None
    object_count: int | None = None
    job_status: str | None = None
    decision: DecisionKind | None = None
    decision_id: str | None = None
    decider: Actor | None = None
    decision_reason: str | None = None
    status_update_reason: str | None = None
    deciding_since: datetime | None = None
    decided_at: datetime | None = None
    s3_status: str | None = None
    outcome_note: str | None = None


class AuditEventType(StrEnum):
    APPROVAL_REQUESTED = "approval_requested"
    DECISION_TAKEN = "decision_taken"
    DECISION_REFUSED = "decision_refused"
    DECISION_FAILED = "decision_failed"
    JOB_STATUS_CHANGED = "job_status_changed"


AUDIT_SCHEMA_VERSION: Literal[1] = 1


class AuditRecord(BaseModel):
    """One auditable fact. Version 1 of the schema; never holds tokens, secrets or response URLs."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    schema_version: Literal[1] = AUDIT_SCHEMA_VERSION
    event_type: AuditEventType
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    job_id: str | None  # None only for an invalid request that names no valid job
    job_arn: str | None
    account_id: str | None
    region: str | None
    operation: str | None = None
    object_count: int | None = None
    actor_id: str | None = None
    actor_name: str | None = None
    actor_team: str | None = None
    action: DecisionKind | None = None
    reason: str | None = None
    detail: str | None = None  # what a short reason (e.g. ``unverified``) stands for in this case
    origin: str | None = None  # where the decision came from: ``slack``, or ``system:<source>``
    status_before: str | None = None
    status_after: str | None = None
    status_update_reason: str | None = None
    slack_channel: str | None = None
    slack_message_ts: str | None = None
    request_id: str | None = None

    def to_log(self) -> dict[str, object]:
        """The JSON-ready form written to logs and to DynamoDB (UTC ISO 8601 time)."""
        data = self.model_dump(mode="json")
        data["time"] = self.time.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return data
