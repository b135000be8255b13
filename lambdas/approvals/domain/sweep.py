"""The lifecycle sweep: every minute, each pending request whose next step is due is reminded, escalated
or expired, exactly once.

The schedule invokes the notifier with the tick; ``LifecycleSweep.run`` queries the state index for open
requests whose next step is due (decided ones are listed apart, so a sweep reads the same with ten or a
million old requests), and for each due request:

1. takes its step with one conditional write (``claim_step``: still pending, still the step seen), which
   also moves its due time to the end of a lease: a sweep that dies leaves it due again then, and a
   duplicated tick finds nothing to take;
2. works out the step from the rule and the clock (``domain.lifecycle``); a sweep that ran late sends
   only the latest reminder due, never a burst of stale ones, and a deadline passed goes straight to the
   expiry;
3. re-reads the request right before posting (a decision may have landed meanwhile), posts, writes the
   audit record (keyed, so a retry writes it once) and schedules the next step (``finish_step``).

The expiry's ``cancel`` goes through ``DecisionService.apply`` like a person's decision, with its own
origin (``system:expiry``) and decision ID, so concurrent late clicks and ticks meet one claim.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from approvals.domain import message
from approvals.domain.audit import audit_record
from approvals.domain.authorisation import Approvers
from approvals.domain.decisions import DecisionResult, Outcome, announce, expiry_command
from approvals.domain.lifecycle import Lifecycle, Step, StepKind, allowed_hours, hours_text, steps
from approvals.domain.ports import (
    AccountNotServed,
    AccountUnreachable,
    Chat,
    ChatUnavailable,
    JobNotFound,
    Jobs,
    PostingDeferred,
    RequestStore,
)
from approvals.models.records import ApprovalRequest, AuditEventType, RequestState
from approvals.models.slack import DecisionCommand

STEP_LEASE = timedelta(minutes=5)  # a claimed step is due again this long after its sweep took it
# A member account the hub cannot reach (its spoke role cannot be assumed): its steps wait this long, without
# failing the tick for every other request; the reconciliation and the event's redeliveries alarm meanwhile.
UNREACHABLE_RETRY = timedelta(minutes=15)
BATCH = 200  # due requests one sweep takes at most; the rest wait for the next tick (a minute)


@dataclass
class SweepResult:
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    due: int = 0
    errors: list[str] = field(default_factory=list)  # one line per failed step, for the log


@dataclass
class LifecycleSweep:
    store: RequestStore
    chat: Chat
    jobs: Jobs
    approvers: Approvers  # the deployment's, for requests whose rule names none
    decide: Callable[[DecisionCommand], DecisionResult]
    clock: Callable[[], datetime]
    large_job_threshold: int
    seconds_left: Callable[[], float] = lambda: 60.0
    batch: int = BATCH
    new_claim: Callable[[], str] = lambda: uuid.uuid4().hex
    # Told each request that expired and was left or closed (a cancel announces itself, as a decision).
    on_change: Callable[[ApprovalRequest], object] = lambda _request: None

    def run(self) -> SweepResult:
        result = SweepResult()
        due = self.store.due(self.clock(), self.batch)
        result.due = len(due)
        for index, request in enumerate(due):
            if self.seconds_left() < 5:
                result.outcomes["left_for_next_tick"] += len(due) - index
                break
            try:
                outcome = self.step(request)
            except PostingDeferred:
                # Slack's pace leaves no turn before this run ends: the rest wait for the next tick.
                result.outcomes["deferred"] += len(due) - index
                break
            except Exception as exc:  # this request's step is due again; the others still get theirs
                result.failures += 1
                result.errors.append(f"{request.job.job_id}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            result.outcomes[outcome] += 1
        return result

    def step(self, seen: ApprovalRequest) -> str:
        """Take one due request's step; returns what happened (for the log and the tests)."""
        now = self.clock()
        if seen.state != RequestState.PENDING:
            self.store.defer_step(seen, now + STEP_LEASE)  # a decision under way: look again after it
            return "not_pending"
        claim_id = self.new_claim()
        request = self.store.claim_step(seen, claim_id, now + STEP_LEASE)
        if request is None or request.deadline is None:
            return "taken_elsewhere"
        plan = Lifecycle.of(request.rule)
        due = _due_step(request, plan, now)
        if due is None:  # nothing due yet (the schedule moved on): look again when the next step is due
            self.store.finish_step(request.job, claim_id, request.reminders_sent, _upcoming(request, plan).at)
            return "not_due"
        try:
            if due.kind == StepKind.EXPIRE:
                return self._expire(request, plan, claim_id, now)
            return self._remind(request, plan, due, claim_id, now)
        except AccountUnreachable:
            self.store.release_step(request.job, claim_id, now + UNREACHABLE_RETRY)
            return "account_unreachable"
        except AccountNotServed as exc:  # the account left memberAccounts: nothing can be done there any more
            closed = self.store.close(request.job, str(exc)[:300], None, now)
            announce(self.on_change, closed)
            return "account_not_served"
        except BaseException:
            self.store.release_step(request.job, claim_id, now)  # the next tick tries again
            raise

    # -- reminders -------------------------------------------------------------------------------

    def _remind(self, request: ApprovalRequest, plan: Lifecycle, due: Step, claim_id: str, now: datetime) -> str:
        latest = self.store.get(request.job)
        if latest is None or latest.state != RequestState.PENDING:  # decided while this sweep got here
            return "not_pending"
        moved_on = self._moved_on(latest, now)
        if moved_on is not None:
            return moved_on
        total = len([s for s in steps(request.requested_at, request.deadline or now, plan) if s.number])
        escalation = plan.escalation if due.kind == StepKind.ESCALATE else None
        escalated_to = _mentions(escalation.users, escalation.groups) if escalation else []
        reply = message.render_reminder(request, due.number, total, self._approvers_of(request), escalated_to, now)
        if request.channel and request.message_ts:
            self.chat.post(request.channel, reply.text, reply.blocks, None, thread_ts=request.message_ts)
        # The reminder is out: from here on nothing may send it again. The escalation's own channel is told
        # at most once too; a post that fails there (the bot not in the channel, Slack's pace) is recorded,
        # not retried, so it can never repeat the reminder in the thread.
        detail = f"reminder {due.number} of {total}"
        if escalation is not None:
            detail += f", escalated to {', '.join(escalation.users + escalation.groups) or 'nobody more'}"
            if escalation.channel:
                notice = message.render_escalation_notice(request, escalated_to, now)
                try:
                    self.chat.post(escalation.channel, notice.text, notice.blocks, None)
                    detail += f" and channel {escalation.channel}"
                except ChatUnavailable as exc:
                    detail += f"; the notice to channel {escalation.channel} failed: {str(exc)[:200]}"
        kind = AuditEventType.REQUEST_ESCALATED if escalation else AuditEventType.REMINDER_SENT
        record = audit_record(kind, request.job, now=now, request=request, detail=detail)
        self.store.put_audit(record, key=f"reminder:{due.number}")
        upcoming = _upcoming(request.model_copy(update={"reminders_sent": due.number}), plan)
        self.store.finish_step(request.job, claim_id, due.number, upcoming.at)
        return "escalated" if escalation else "reminded"

    def _moved_on(self, request: ApprovalRequest, now: datetime) -> str | None:
        """Close a request whose job no longer waits (its status event was lost): "moved_on"; else None."""
        try:
            job = self.jobs.describe(request.job)
        except JobNotFound:
            job = None
        if job is not None and job.awaiting_confirmation:
            return None
        status = job.status if job is not None else None
        note = message.outside_slack_note(status) if job is not None else "The job no longer exists"
        closed = self.store.close(request.job, note, status, now)
        if closed is not None and job is not None and closed.channel and closed.message_ts:
            rendered = message.render_request(job, request.job, closed, self.large_job_threshold)
            with contextlib.suppress(ChatUnavailable):  # the record is right; the next event re-renders it
                self.chat.update(closed.channel, closed.message_ts, rendered.text, rendered.blocks)
        announce(self.on_change, closed)
        return "moved_on"

    def _approvers_of(self, request: ApprovalRequest) -> list[str]:
        creator = request.requester.slack_user_id if request.requester else None
        rule = request.rule
        if rule is not None and rule.approvers is not None:
            users, groups = list(rule.approvers.users), list(rule.approvers.groups)
        else:
            users, groups = sorted(self.approvers.user_ids), list(self.approvers.group_ids)
        allowed_self = rule is not None and rule.allow_self_approval
        voted = {vote.user_id for vote in request.approvals}
        return _mentions([u for u in users if (u != creator or allowed_self) and u not in voted], groups)

    # -- expiry ----------------------------------------------------------------------------------

    def _expire(self, request: ApprovalRequest, plan: Lifecycle, claim_id: str, now: datetime) -> str:
        expiry = plan.expiry
        within = hours_text(allowed_hours(request))
        if expiry.action == "cancel":
            decided = self.decide(expiry_command(request, plan.rule_name, within))
            if decided.retry_later or decided.outcome == Outcome.FAILED:
                self.store.release_step(request.job, claim_id, now)
                return "expiry_retried"
            if decided.outcome not in (Outcome.APPLIED, Outcome.RESUMED):
                # Decided by someone else, or the job moved on, in the meantime: nothing expired.
                return f"expiry_not_needed_{decided.outcome.value}"
            self._expired_record(decided.request or request, plan, "cancel", within, now)
            with contextlib.suppress(ChatUnavailable):  # the decision is applied and shown; the reply is extra
                self._reply(decided.request or request, cancelled=True)
            return "expired_cancelled"
        try:
            job = self.jobs.describe(request.job)
        except JobNotFound:
            job = None
        if job is not None and not job.awaiting_confirmation:
            return self._moved_on(request, now) or "moved_on"
        # Shown first, recorded after: a Slack failure leaves the step due again (nothing recorded yet).
        note = f"Expired: nobody decided within {within}; the job is left Suspended"
        if expiry.keep_buttons:
            shown = request.model_copy(update={"expired_at": now})
        else:
            shown = request.model_copy(
                update={"state": RequestState.CLOSED, "outcome_note": note, "decided_at": now, "expired_at": now}
            )
        if job is not None and request.channel and request.message_ts:
            rendered = message.render_request(job, request.job, shown, self.large_job_threshold)
            self.chat.update(request.channel, request.message_ts, rendered.text, rendered.blocks)
        self._reply(shown, cancelled=False)
        if expiry.keep_buttons:
            expired = self.store.mark_expired(request.job, claim_id, now)
        else:
            expired = self.store.close(request.job, note, job.status if job else None, now)
        if expired is None:
            return "taken_elsewhere"
        action = "leave" if expiry.keep_buttons else "close"
        self._expired_record(expired, plan, action, within, now)
        announce(self.on_change, expired)
        return "expired_left" if expiry.keep_buttons else "expired_closed"

    def _expired_record(
        self, request: ApprovalRequest, plan: Lifecycle, action: str, within: str, now: datetime
    ) -> None:
        record = audit_record(
            AuditEventType.REQUEST_EXPIRED,
            request.job,
            now=now,
            request=request,
            action="cancel" if action == "cancel" else None,
            reason=f"no decision within {within}",
            detail=f"expiry action: {action} (policy {plan.rule_name})",
            origin="system:expiry",
        )
        self.store.put_audit(record, key="expired")

    def _reply(self, request: ApprovalRequest, cancelled: bool) -> None:
        if request.channel and request.message_ts:
            reply = message.render_expired_reply(request, cancelled)
            self.chat.post(request.channel, reply.text, reply.blocks, None, thread_ts=request.message_ts)


def _due_step(request: ApprovalRequest, plan: Lifecycle, now: datetime) -> Step | None:
    """The step to take now: the expiry once the deadline has passed, else the latest reminder due (a
    sweep that ran late skips the reminders it missed instead of sending them all at once); None when
    the next step is not due yet."""
    assert request.deadline is not None
    if now >= request.deadline:
        return steps(request.requested_at, request.deadline, plan)[-1]
    due = [s for s in steps(request.requested_at, request.deadline, plan)[request.reminders_sent :] if s.number]
    due = [s for s in due if s.at <= now]
    return due[-1] if due else None


def _upcoming(request: ApprovalRequest, plan: Lifecycle) -> Step:
    """The step after the reminders already sent: the expiry once none is left (also when the rule changed
    since and now allows fewer reminders than went out)."""
    assert request.deadline is not None
    remaining = steps(request.requested_at, request.deadline, plan)[request.reminders_sent :]
    return remaining[0] if remaining else Step(StepKind.EXPIRE, request.deadline)


def _mentions(users: list[str], groups: list[str]) -> list[str]:
    return [message.user_mention(user) for user in users] + [message.group_mention(group) for group in groups]
