"""Builds audit records: one schema (models.records.AuditRecord) for every auditable fact."""

from __future__ import annotations

from datetime import datetime

from approvals.models.job import JobRef
from approvals.models.records import Actor, ApprovalRequest, AuditEventType, AuditRecord, DecisionKind


def audit_record(
    event_type: AuditEventType,
    ref: JobRef | None,
    *,
    now: datetime,
    request: ApprovalRequest | None = None,
    actor: Actor | None = None,
    action: DecisionKind | None = None,
    reason: str | None = None,
    status_before: str | None = None,
    status_after: str | None = None,
    status_update_reason: str | None = None,
    correlation_id: str | None = None,
    operation: str | None = None,
    object_count: int | None = None,
    detail: str | None = None,
    origin: str | None = None,
    approvers: list[str] | None = None,
) -> AuditRecord:
    """One record; the request's rule and requester, when it has them, are recorded on it too."""
    requester = request.requester if request else None
    return AuditRecord(
        event_type=event_type,
        time=now,
        job_id=ref.job_id if ref else None,
        job_arn=ref.arn if ref else None,
        account_id=ref.account_id if ref else None,
        region=ref.region if ref else None,
        operation=operation or (request.operation if request else None),
        object_count=object_count if object_count is not None else (request.object_count if request else None),
        actor_id=actor.user_id if actor else None,
        actor_name=actor.name if actor else None,
        actor_team=actor.team_id if actor else None,
        action=action,
        reason=reason,
        detail=detail,
        origin=origin,
        status_before=status_before,
        status_after=status_after,
        status_update_reason=status_update_reason,
        slack_channel=request.channel if request else None,
        slack_message_ts=request.message_ts if request else None,
        request_id=correlation_id,
        rule=request.rule.name if request and request.rule else None,
        requester_arn=requester.principal_arn if requester else None,
        requester_slack_id=requester.slack_user_id if requester else None,
        approvers=approvers,
    )
