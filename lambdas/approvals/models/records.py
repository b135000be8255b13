"""The durable records: one approval request per job, and the audit records beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from approvals.models.job import JobRef
from approvals.models.policy import Rule


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


PrincipalType = Literal["IAMUser", "AssumedRole", "FederatedUser", "Root", "AWSService", "AWSAccount", "Unknown"]


class Requester(BaseModel):
    """Who created the job: the principal in CloudTrail's CreateJob record, and who that is in Slack.

    ``slack_user_id`` is None when the principal maps to nobody in Slack: then no Slack user is treated
    as the requester, and the message shows the principal ARN alone.
    """

    model_config = ConfigDict(frozen=True)

    principal_arn: str
    principal_type: PrincipalType = "Unknown"
    slack_user_id: str | None = None
    mapped_by: Literal["email", "mapping"] | None = None  # how the Slack user was found
    found_in: Literal["event", "history"]  # the CreateJob event on EventBridge, or CloudTrail's event history


class ApprovalRequest(BaseModel):
    """The request record for one job (sort key ``REQUEST``)."""

    model_config = ConfigDict(defer_build=True)

    job: JobRef
    state: RequestState
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    account_name: str | None = None  # the job's account's name in the hub's settings when it was requested
    claimed_at: datetime | None = None  # while posting: when the delivery that is posting it claimed it
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
    # Who created the job (None while CloudTrail has not said yet), and the policy rule that applies,
    # with every default filled in (as it was when the request was posted or its requester learnt).
    requester: Requester | None = None
    rule: Rule | None = None
    # A quorum's votes, oldest first (the item's ``votes`` map, one conditional write each; never the
    # creator's unless the rule allows it); once approved, the approvers the decision names.
    approvals: tuple[Actor, ...] = ()
    # Where the decision came from: "slack" (a verified click), or "system:<source>" (e.g. system:policy).
    decision_origin: str | None = None
    approved_without_requester: bool = False  # approved after the requester wait ran out (rule said allow)
    # The lifecycle (approvals.domain.lifecycle): when the request expires, how many reminders went out,
    # when its next step (reminder, escalation, expiry) is due (None once none is left), and when it expired.
    deadline: datetime | None = None
    reminders_sent: int = 0
    due_at: datetime | None = None
    expired_at: datetime | None = None


class AuditEventType(StrEnum):
    APPROVAL_REQUESTED = "approval_requested"
    DECISION_TAKEN = "decision_taken"
    DECISION_REFUSED = "decision_refused"
    DECISION_FAILED = "decision_failed"
    JOB_STATUS_CHANGED = "job_status_changed"
    REQUESTER_IDENTIFIED = "requester_identified"
    VOTE_RECORDED = "vote_recorded"
    REMINDER_SENT = "reminder_sent"
    REQUEST_ESCALATED = "request_escalated"
    REQUEST_EXPIRED = "request_expired"


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
    # The policy rule that shaped this record, the job's creator, and (for a quorum) who approved.
    rule: str | None = None
    requester_arn: str | None = None
    requester_slack_id: str | None = None
    approvers: list[str] | None = None

    def to_log(self) -> dict[str, object]:
        """The JSON-ready form written to logs and to DynamoDB (UTC ISO 8601 time)."""
        data = self.model_dump(mode="json")
        data["time"] = self.time.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return data
