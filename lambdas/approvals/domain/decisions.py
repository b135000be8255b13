"""Where a Slack click becomes an UpdateJobStatus call: exactly once, by an approver, re-checked first.

The callback handler queues a ``DecisionCommand`` after verifying Slack's signature; the decider
handler calls ``DecisionService.apply`` with it. The first decision wins durably through a
conditional write on the request record (pending → deciding → approved | cancelled); everyone
else is told, ephemerally, who decided what.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from approvals.domain import message
from approvals.domain.audit import audit_record
from approvals.domain.authorisation import Approvers, may_decide
from approvals.domain.ports import (
    Chat,
    ChatUnavailable,
    JobNotFound,
    Jobs,
    JobStatusConflict,
    JobsUnavailable,
    RequestStore,
)
from approvals.domain.reasons import recorded_by, requested_status, status_update_reason
from approvals.models.job import Job
from approvals.models.records import ApprovalRequest, AuditEventType, AuditRecord, RequestState
from approvals.models.slack import DecisionCommand, RefusalCommand

# Statuses a job can reach after each decision; used to recognise a decision we already applied.
AFTER_APPROVE = frozenset({"Ready", "Active", "Pausing", "Paused", "Completing", "Complete", "Failing", "Failed"})
AFTER_CANCEL = frozenset({"Cancelling", "Cancelled"})


class Outcome(StrEnum):
    APPLIED = "applied"
    RESUMED = "resumed"
    NOT_AN_APPROVER = "not_an_approver"
    ALREADY_DECIDED = "already_decided"
    NO_REQUEST = "no_request"
    MOVED_ON = "moved_on"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    INVALID_REQUEST = "invalid_request"


@dataclass
class DecisionResult:
    outcome: Outcome
    request: ApprovalRequest | None = None
    s3_status: str | None = None
    detail: str | None = None
    audit: list[AuditRecord] = field(default_factory=list)
    notices_failed: int = 0

    @property
    def refused(self) -> bool:
        return self.outcome in {
            Outcome.NOT_AN_APPROVER,
            Outcome.ALREADY_DECIDED,
            Outcome.NO_REQUEST,
            Outcome.MOVED_ON,
            Outcome.NOT_FOUND,
            Outcome.INVALID_REQUEST,
        }


@dataclass
class DecisionService:
    jobs: Jobs
    store: RequestStore
    chat: Chat
    approvers: Approvers
    members_of: Callable[[str], frozenset[str]]
    clock: Callable[[], datetime]
    large_job_threshold: int
    lease_seconds: int = 120

    def apply(self, command: DecisionCommand) -> DecisionResult:
        ref = command.job
        request = self.store.get(ref)
        if request is None:
            return self._refuse(
                command,
                None,
                Outcome.NO_REQUEST,
                "no approval request on record for this job",
                message.no_request_text(ref.job_id),
            )
        if not may_decide(command.actor.user_id, self.approvers, self.members_of):
            return self._refuse(
                command, request, Outcome.NOT_AN_APPROVER, "not an approver", message.not_an_approver_text(ref.job_id)
            )

        command = self._with_display_name(command)
        claim = self.store.claim_decision(command, self.clock(), self.lease_seconds)
        current = claim.request
        if not claim.won:
            if (
                current is not None
                and current.decision_id == command.decision_id
                and current.state in {RequestState.APPROVED, RequestState.CANCELLED, RequestState.CLOSED}
            ):
                return self._resume(current)
            return self._refuse(
                command,
                current,
                Outcome.ALREADY_DECIDED,
                "already decided",
                message.already_decided_text(current) if current else message.no_request_text(ref.job_id),
            )
        assert current is not None
        reason = status_update_reason(command.decision, command.actor, command.reason)

        # Re-check right before acting: the job may have moved on outside Slack.
        try:
            job = self.jobs.describe(ref)
        except JobNotFound:
            return self._close_not_found(command, current)
        except JobsUnavailable as exc:
            return self._fail(command, current, str(exc))
        if not job.awaiting_confirmation:
            if recorded_by(job.status_update_reason, command.decision, command.actor) and job.status in self._after(
                command
            ):
                # Our own earlier call, whose result was never recorded (the worker died after it).
                return self._finish(command, job, job.status, job.status_update_reason or reason)
            return self._moved_on(command, current, job)

        try:
            s3_status = self.jobs.update_status(ref, requested_status(command.decision), reason)  # type: ignore[arg-type]
        except JobStatusConflict:
            try:
                job = self.jobs.describe(ref)
            except JobNotFound:
                return self._close_not_found(command, current)
            except JobsUnavailable as exc:
                return self._fail(command, current, str(exc))
            return self._moved_on(command, current, job)
        except JobNotFound:
            return self._close_not_found(command, current)
        except JobsUnavailable as exc:
            return self._fail(command, current, str(exc))
        return self._finish(command, job, s3_status, reason)

    def refuse_invalid(self, refusal: RefusalCommand) -> DecisionResult:
        """A signed request the callback could not act on: record it, and tell the person why."""
        record = audit_record(
            AuditEventType.DECISION_REFUSED,
            refusal.job,
            now=self.clock(),
            actor=refusal.actor,
            reason=f"invalid request: {refusal.reason}",
            correlation_id=refusal.correlation_id,
        )
        self.store.put_audit(record)
        user = refusal.actor.user_id if refusal.actor else None
        failed = self._notify(refusal.channel, user, message.invalid_request_text(refusal.reason))
        return DecisionResult(
            Outcome.INVALID_REQUEST, None, detail=refusal.reason, audit=[record], notices_failed=failed
        )

    # -- outcomes -----------------------------------------------------------------------------

    @staticmethod
    def _after(command: DecisionCommand) -> frozenset[str]:
        return AFTER_APPROVE if command.decision == "approve" else AFTER_CANCEL

    def _finish(self, command: DecisionCommand, job: Job, s3_status: str, reason: str) -> DecisionResult:
        state = RequestState.APPROVED if command.decision == "approve" else RequestState.CANCELLED
        before = job.status
        request = self.store.finish_decision(command.job, command.decision_id, state, s3_status, reason, self.clock())
        record = audit_record(
            AuditEventType.DECISION_TAKEN,
            command.job,
            now=self.clock(),
            request=request,
            actor=command.actor,
            action=command.decision,
            reason=command.reason,
            status_before=before,
            status_after=s3_status,
            status_update_reason=reason,
            correlation_id=command.correlation_id,
        )
        self.store.put_audit(record)
        self._show(request, job.model_copy(update={"status": s3_status, "status_update_reason": reason}))
        return DecisionResult(Outcome.APPLIED, request, s3_status, audit=[record])

    def _resume(self, request: ApprovalRequest) -> DecisionResult:
        """A redelivered command whose decision is already recorded: make sure the message shows it."""
        try:
            job = self.jobs.describe(request.job)
        except (JobNotFound, JobsUnavailable):
            job = None
        if job is not None:
            self._show(request, job)
        return DecisionResult(Outcome.RESUMED, request, request.s3_status)

    def _moved_on(self, command: DecisionCommand, request: ApprovalRequest, job: Job) -> DecisionResult:
        note = message.outside_slack_note(job.status)
        closed = self.store.close(command.job, note, job.status, self.clock()) or request
        result = self._refuse(
            command,
            closed,
            Outcome.MOVED_ON,
            f"job is {job.status}, no longer awaiting confirmation",
            message.job_moved_on_text(job.status, command.job.job_id),
            status=job.status,
        )
        self._show(closed, job)
        return result

    def _close_not_found(self, command: DecisionCommand, request: ApprovalRequest) -> DecisionResult:
        note = "Job not found in S3 (deleted or expired)"
        closed = self.store.close(command.job, note, None, self.clock()) or request
        return self._refuse(
            command, closed, Outcome.NOT_FOUND, "job not found in S3", message.job_not_found_text(command.job.job_id)
        )

    def _fail(self, command: DecisionCommand, request: ApprovalRequest, detail: str) -> DecisionResult:
        """S3 kept failing: the request goes back to pending so anyone may try again, and we say so."""
        self.store.release_decision(command.job, command.decision_id)
        record = audit_record(
            AuditEventType.DECISION_FAILED,
            command.job,
            now=self.clock(),
            request=request,
            actor=command.actor,
            action=command.decision,
            reason=detail,
            status_before=request.job_status,
            correlation_id=command.correlation_id,
        )
        self.store.put_audit(record)
        failed = self._notify(
            request.channel, command.actor.user_id, message.decision_failed_text(command.job.job_id, detail)
        )
        return DecisionResult(Outcome.FAILED, request, detail=detail, audit=[record], notices_failed=failed)

    def _refuse(
        self,
        command: DecisionCommand,
        request: ApprovalRequest | None,
        outcome: Outcome,
        why: str,
        text: str,
        status: str | None = None,
    ) -> DecisionResult:
        record = audit_record(
            AuditEventType.DECISION_REFUSED,
            command.job,
            now=self.clock(),
            request=request,
            actor=command.actor,
            action=command.decision,
            reason=why,
            status_before=status or (request.job_status if request else None),
            status_after=status or (request.job_status if request else None),
            correlation_id=command.correlation_id,
        )
        self.store.put_audit(record)
        channel = command.channel or (request.channel if request else None)
        failed = self._notify(channel, command.actor.user_id, text)
        return DecisionResult(outcome, request, detail=why, audit=[record], notices_failed=failed)

    def _with_display_name(self, command: DecisionCommand) -> DecisionCommand:
        """The reason names the person as colleagues see them; the payload's username is the fallback."""
        try:
            name = self.chat.display_name(command.actor.user_id)
        except ChatUnavailable:
            name = None
        if not name or name == command.actor.name:
            return command
        return command.model_copy(update={"actor": command.actor.model_copy(update={"name": name})})

    # -- Slack --------------------------------------------------------------------------------

    def _notify(self, channel: str | None, user_id: str | None, text: str) -> int:
        """Tell the person who clicked; best effort (the decision record already says what happened)."""
        if not (channel and user_id):
            return 1
        try:
            self.chat.ephemeral(channel, user_id, text)
        except ChatUnavailable:
            return 1
        return 0

    def _show(self, request: ApprovalRequest, job: Job) -> None:
        """Re-render the approval message: no buttons once decided, the outcome instead.

        A failure here raises ChatUnavailable so the queue redelivers; the redelivery resumes.
        """
        if not (request.channel and request.message_ts):
            return
        rendered = message.render_request(job, request.job, request, self.large_job_threshold)
        self.chat.update(request.channel, request.message_ts, rendered.text, rendered.blocks)
