"""Where a Slack click becomes an UpdateJobStatus call: exactly once, by an approver, re-checked first.

The callback queues the request as Slack signed it; the decider verifies the signature again and reads
a ``DecisionCommand`` from it (approvals.domain.work), then calls ``DecisionService.apply``. The first
decision wins durably through a conditional write on the request record (pending → deciding →
approved | cancelled); everyone else is told, ephemerally, who decided what. A claim whose holder died
is finished by the next delivery of its click, or by the reconciliation (``recover``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from approvals.domain import message
from approvals.domain.audit import audit_record
from approvals.domain.authorisation import Approvers, approver_status
from approvals.domain.ports import (
    Chat,
    ChatUnavailable,
    ClaimLost,
    JobNotFound,
    Jobs,
    JobStatusConflict,
    JobsUnavailable,
    RequestStore,
)
from approvals.domain.reasons import (
    decider_of,
    expiry_of,
    expiry_reason,
    policy_of,
    policy_reason,
    recorded_by,
    requested_status,
    status_update_reason,
)
from approvals.models.job import Job, JobRef
from approvals.models.policy import RequesterWait, Rule
from approvals.models.records import Actor, ApprovalRequest, AuditEventType, AuditRecord, DecisionKind, RequestState
from approvals.models.slack import DecisionCommand, RefusalCommand, SlackOrigin, SystemOrigin

# Statuses a job can reach after each decision; used to recognise a decision we already applied.
AFTER_APPROVE = frozenset({"Ready", "Active", "Pausing", "Paused", "Completing", "Complete", "Failing", "Failed"})
AFTER_CANCEL = frozenset({"Cancelling", "Cancelled"})
FINAL_STATES = frozenset({RequestState.APPROVED, RequestState.CANCELLED, RequestState.CLOSED})


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
    UNVERIFIED = "unverified"
    DUPLICATE = "duplicate"
    REQUESTER = "requester_cannot_approve"
    WAITING_FOR_REQUESTER = "waiting_for_requester"
    ALREADY_APPROVED = "already_approved"
    VOTE_RECORDED = "vote_recorded"
    DENIED_BY_POLICY = "denied_by_policy"


@dataclass
class DecisionResult:
    outcome: Outcome
    request: ApprovalRequest | None = None
    s3_status: str | None = None
    detail: str | None = None
    audit: list[AuditRecord] = field(default_factory=list)
    notices_failed: int = 0
    retry_later: bool = False  # this delivery cannot act yet: it must come back, never go silently away

    @property
    def refused(self) -> bool:
        return self.outcome in {
            Outcome.NOT_AN_APPROVER,
            Outcome.ALREADY_DECIDED,
            Outcome.NO_REQUEST,
            Outcome.MOVED_ON,
            Outcome.NOT_FOUND,
            Outcome.INVALID_REQUEST,
            Outcome.UNVERIFIED,
            Outcome.REQUESTER,
            Outcome.WAITING_FOR_REQUESTER,
            Outcome.ALREADY_APPROVED,
            Outcome.DENIED_BY_POLICY,
        }


def announce(hook: Callable[[ApprovalRequest], object], request: ApprovalRequest | None) -> None:
    """Tell ``hook`` a request changed (posted, decided, expired). What it does (the Home tab's refresh) never
    affects the change itself: whatever it raises is dropped here."""
    if request is None:
        return
    with contextlib.suppress(Exception):  # best effort by design; the hook reports its own failures
        hook(request)


def origin_of(command: DecisionCommand) -> str:
    """How the audit names where a decision came from."""
    return f"system:{command.origin.source}" if isinstance(command.origin, SystemOrigin) else "slack"


POLICY_SOURCE = "policy"


def _origin(recorded: str | None) -> SlackOrigin | SystemOrigin:
    """A claim's origin as the request records it (``system:<source>``, else a Slack click)."""
    if recorded and recorded.startswith("system:"):
        return SystemOrigin(source=recorded.removeprefix("system:"))
    return SlackOrigin()


def policy_command(request: ApprovalRequest, rule: Rule) -> DecisionCommand:
    """The decision a rule whose action is deny or approve makes itself, for one job: one decision ID per
    rule and job, so however often the notifier runs, one claim wins."""
    decision: DecisionKind = "cancel" if rule.action == "deny" else "approve"
    return DecisionCommand(
        job=request.job,
        decision=decision,
        actor=Actor(user_id=f"policy:{rule.name}", name=f"policy rule {rule.name}"),
        reason=rule.reason,
        decision_id=f"{POLICY_SOURCE}:{rule.name}",
        channel=request.channel,
        message_ts=request.message_ts,
        origin=SystemOrigin(source=POLICY_SOURCE),
    )


EXPIRY_SOURCE = "expiry"


def expiry_command(request: ApprovalRequest, rule_name: str, within: str) -> DecisionCommand:
    """The cancellation a request's expiry makes (rule action ``cancel``): one decision ID per job, so however
    often the sweep runs and whatever clicks come in late, one claim wins."""
    return DecisionCommand(
        job=request.job,
        decision="cancel",
        actor=Actor(user_id=f"expiry:{rule_name}", name=f"expiry of policy rule {rule_name}"),
        reason=expiry_reason(rule_name, within),
        decision_id=f"{EXPIRY_SOURCE}:{rule_name}",
        channel=request.channel,
        message_ts=request.message_ts,
        origin=SystemOrigin(source=EXPIRY_SOURCE),
    )


def rule_of(command: DecisionCommand) -> str:
    """The rule a policy or expiry decision is made under, from its decision ID (``policy_command`` and
    ``expiry_command`` write it)."""
    return command.decision_id.partition(":")[2]


def _by_expiry(command: DecisionCommand) -> bool:
    return isinstance(command.origin, SystemOrigin) and command.origin.source == EXPIRY_SOURCE


def counted_votes(request: ApprovalRequest) -> tuple[Actor, ...]:
    """The votes that count, oldest first: never the job's creator's (unless the rule allows it), whenever
    the creator became known."""
    requester = request.requester.slack_user_id if request.requester else None
    if requester is None or (request.rule is not None and request.rule.allow_self_approval):
        return tuple(request.approvals)
    return tuple(vote for vote in request.approvals if vote.user_id != requester)


def quorum_of(request: ApprovalRequest) -> int:
    return request.rule.quorum if request.rule is not None and request.rule.action == "require_approval" else 1


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
    # Told each request this service decided or closed (the Home tab's refresh): best effort, never raises.
    on_change: Callable[[ApprovalRequest], object] = lambda _request: None

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
        by_system = isinstance(command.origin, SystemOrigin)
        this_vote = False  # this click's vote counted towards a quorum
        if not by_system:
            refused = self._check_person(command, request)
            if refused is not None:
                return refused
            command = self._with_display_name(command)
            if command.decision == "approve" and quorum_of(request) > 1:
                if self._stale_claim(request, command):
                    # A vote cannot take over another decision's claim (it would decide alone): finish that
                    # claim first, as the reconciliation would; the vote then counts if the request reopened.
                    self.recover(request)
                    request = self.store.get(ref) or request
                counted, this_vote = self._vote(command, request)
                if counted is not None:
                    return counted
        unknown = not by_system and command.decision == "approve" and request.requester is None
        without_requester = unknown and request.rule is not None
        claim = self.store.claim_decision(command, self.clock(), self.lease_seconds, without_requester)
        current = claim.request
        if not claim.won:
            ours = current is not None and current.decision_id == command.decision_id
            if current is not None and not ours and this_vote and self._counted(command, current):
                # This vote counts in the decision another delivery claimed: that delivery (or, should it
                # die, its redelivery or the reconciliation) applies it. Nothing to come back for; the vote is
                # on record (once per voter, as any vote), so that every click leaves its trace in the audit.
                self._record_vote(command, current, "counted in the decision another click claimed")
                told = self._notify(
                    command.channel or current.channel, command.actor.user_id, message.notice_vote_counted(ref.job_id)
                )
                if current.state == RequestState.DECIDING:
                    detail = "counted in the decision under way"
                    return DecisionResult(Outcome.VOTE_RECORDED, current, detail=detail, notices_failed=told)
                if current.state in FINAL_STATES:
                    resumed = self._resume(current)
                    resumed.notices_failed += told
                    return resumed
            if current is not None and ours:
                if current.state == RequestState.DECIDING:
                    # The same click, held by another delivery within its lease. Come back later: by then
                    # the holder has finished (and this resumes) or died (and this takes over).
                    return DecisionResult(Outcome.DUPLICATE, current, retry_later=True)
                if current.state in {RequestState.APPROVED, RequestState.CANCELLED, RequestState.CLOSED}:
                    return self._resume(current)
            return self._refuse(
                command,
                current,
                Outcome.ALREADY_DECIDED,
                "already decided",
                message.already_decided_text(current) if current else message.no_request_text(ref.job_id),
            )
        assert current is not None
        # A claim taken over from a holder that went quiet: its S3 call may have gone through.
        previous = request if request.state == RequestState.DECIDING else None
        if (
            not by_system
            and command.decision == "approve"
            and len(self._deciders(command, current)) < quorum_of(current)
        ):
            # The votes stopped counting between the vote and the claim (the creator was learnt, or the
            # rule changed): never approve with fewer. Let the claim go; the request waits for more votes.
            self.store.release_decision(ref, command.decision_id)
            return DecisionResult(Outcome.VOTE_RECORDED, self.store.get(ref), detail="the quorum is no longer met")
        reason = self._reason(command, current)

        # Re-check right before acting: the job may have moved on outside Slack.
        try:
            job = self.jobs.describe(ref)
        except JobNotFound:
            return self._close_not_found(command, current)
        except JobsUnavailable as exc:
            if previous is not None:  # a holder before us may have asked S3: find out before reopening
                return self._fail(command, current, str(exc))
            return self._fail(command, current, str(exc), asked=False)
        if not job.awaiting_confirmation:
            return self._not_awaiting(command, current, job, previous)

        try:
            s3_status = self.jobs.update_status(ref, requested_status(command.decision), reason)  # type: ignore[arg-type]
        except JobStatusConflict:
            # Already decided or moved on, or an earlier attempt of this very call went through
            # and only its answer was lost: read the job to tell which.
            try:
                job = self.jobs.describe(ref)
            except JobNotFound:
                return self._close_not_found(command, current)
            except JobsUnavailable as exc:
                return self._fail(command, current, str(exc))
            return self._not_awaiting(command, current, job, previous)
        except JobNotFound:
            return self._close_not_found(command, current)
        except JobsUnavailable as exc:
            return self._fail(command, current, str(exc))
        return self._finish(command, job, s3_status, reason, current)

    def refuse_cancel(self, command: DecisionCommand) -> DecisionResult:
        """A Cancel click the callback refused without opening the form (certainly not an approver, by
        its cache): check again with the groups themselves, and refuse, or ask an approver to click again."""
        request = self.store.get(command.job)
        authority = approver_status(command.actor.user_id, self.approvers_for(request), self.members_of)
        if authority is None:
            why, text = "approver groups could not be read", message.approvers_unknown_text(command.job.job_id)
            return self._refuse(command, request, Outcome.NOT_AN_APPROVER, why, text)
        if not authority:
            text = message.not_an_approver_text(command.job.job_id)
            return self._refuse(command, request, Outcome.NOT_AN_APPROVER, "not an approver", text)
        failed = self._notify(command.channel, command.actor.user_id, message.cancel_again_text(command.job.job_id))
        return DecisionResult(Outcome.INVALID_REQUEST, request, detail="cancel form skipped", notices_failed=failed)

    def refuse_unverified(
        self, detail: str, job: JobRef | None = None, correlation_id: str | None = None
    ) -> DecisionResult:
        """Queued work without proof that Slack signed it: refused, recorded under the job it names (if
        any), and never shown to anyone as a person's decision. The caller counts it; an alarm watches."""
        record = audit_record(
            AuditEventType.DECISION_REFUSED,
            job,
            now=self.clock(),
            reason="unverified",
            detail=detail[:500],
            correlation_id=correlation_id,
        )
        self.store.put_audit(record)
        return DecisionResult(Outcome.UNVERIFIED, None, detail=detail, audit=[record])

    def recover_stuck(self, stuck_after_seconds: int) -> list[DecisionResult]:
        """Every claim held longer than ``stuck_after_seconds`` (by then its message cannot come back from
        the queue any more: it was deleted or dead-lettered), finished by ``recover``."""
        return [self.recover(request) for request in self.store.stuck(self.clock(), stuck_after_seconds)]

    def recover(self, stuck: ApprovalRequest) -> DecisionResult:
        """Finish a claim left past its lease (its holder died and its message was dead-lettered).

        Taken over with the holder's own decision ID, so only one recovery (or redelivery) wins. If S3
        carries the holder's decision it is recorded as applied; if the job still waits, the request
        opens again and the person is told; if the job moved on elsewhere, the request closes.
        """
        if not (stuck.decision and stuck.decider and stuck.decision_id):
            return DecisionResult(Outcome.FAILED, stuck, detail="claim without a decision")
        if stuck.state in {RequestState.APPROVED, RequestState.CANCELLED}:
            return self._resume(stuck)  # recorded, but its holder died before the audit record or the message
        command = DecisionCommand(
            job=stuck.job,
            decision=stuck.decision,
            actor=stuck.decider,
            reason=stuck.decision_reason,
            decision_id=stuck.decision_id,
            channel=stuck.channel,
            message_ts=stuck.message_ts,
            origin=_origin(stuck.decision_origin),
        )
        claim = self.store.claim_decision(command, self.clock(), self.lease_seconds)
        if not claim.won or claim.request is None:
            return DecisionResult(Outcome.DUPLICATE, claim.request)  # finished or taken over meanwhile
        try:
            job = self.jobs.describe(stuck.job)
        except JobNotFound:
            return self._close_not_found(command, claim.request)
        except JobsUnavailable as exc:
            # Left as it is: the claim is ours for a lease; the next run tries again.
            return DecisionResult(Outcome.FAILED, claim.request, detail=str(exc))
        if self._carries(job, command, claim.request):
            return self._finish(command, job, job.status, job.status_update_reason or "", claim.request)
        if job.awaiting_confirmation:
            self.store.release_decision(stuck.job, command.decision_id)
            reopened = self.store.get(stuck.job) or claim.request
            result = self._record_and_tell(
                AuditEventType.DECISION_FAILED,
                Outcome.FAILED,
                command,
                reopened,
                "the decider stopped before applying the decision",
                message.decision_stuck_text(stuck.job.job_id),
                status_before=job.status,
            )
            self._show(reopened, job)
            return result
        # Moved on: by a decision of ours made before this claim was taken over (recorded as that one's), or
        # outside Slack.
        return self._not_awaiting(command, claim.request, job, stuck)

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

    # -- who may decide, and votes ----------------------------------------------------------------

    def approvers_for(self, request: ApprovalRequest | None) -> Approvers:
        """The rule's approvers where it names them, else the deployment's."""
        named = request.rule.approvers if request is not None and request.rule is not None else None
        if named is None:
            return self.approvers
        return Approvers(user_ids=frozenset(named.users), group_ids=tuple(named.groups))

    def _check_person(self, command: DecisionCommand, request: ApprovalRequest) -> DecisionResult | None:
        """A refusal when this person may not make this decision on this request now; None when they may."""
        job_id = command.job.job_id
        authority = approver_status(command.actor.user_id, self.approvers_for(request), self.members_of)
        if authority is None:
            why, text = "approver groups could not be read", message.approvers_unknown_text(job_id)
            return self._refuse(command, request, Outcome.NOT_AN_APPROVER, why, text)
        if not authority:
            text = message.not_an_approver_text(job_id)
            return self._refuse(command, request, Outcome.NOT_AN_APPROVER, "not an approver", text)
        if command.decision != "approve" or request.state in FINAL_STATES:
            return None  # cancelling is always allowed; a decided request is answered by the claim
        rule = request.rule
        if rule is not None and rule.action == "deny":
            text = message.notice_denied_by_policy(job_id, rule.name)
            return self._refuse(command, request, Outcome.DENIED_BY_POLICY, "denied by policy", text)
        requester = request.requester
        if requester is None:
            if rule is None:
                return None  # posted before requesters were looked up: nothing to wait for
            until = self.requester_wait_ends(request, rule.requester_wait)
            if rule.requester_wait.then == "hold" or self.clock() < until:
                text = message.notice_waiting_for_requester(job_id, until)
                return self._refuse(command, request, Outcome.WAITING_FOR_REQUESTER, "waiting for requester", text)
            return None
        if requester.slack_user_id == command.actor.user_id and not (rule is not None and rule.allow_self_approval):
            text = message.notice_requester_cannot_approve(job_id)
            return self._refuse(command, request, Outcome.REQUESTER, "requester cannot approve", text)
        return None

    def _stale_claim(self, request: ApprovalRequest, command: DecisionCommand) -> bool:
        """Another decision's claim whose holder went quiet past the lease."""
        if request.state != RequestState.DECIDING or request.decision_id == command.decision_id:
            return False
        since = request.deciding_since
        return since is not None and since < self.clock() - timedelta(seconds=self.lease_seconds)

    @staticmethod
    def requester_wait_ends(request: ApprovalRequest, wait: RequesterWait) -> datetime:
        return request.requested_at + timedelta(minutes=wait.timeout_minutes)

    def _vote(self, command: DecisionCommand, request: ApprovalRequest) -> tuple[DecisionResult | None, bool]:
        """Count this approval towards the rule's quorum. (None, …) when the quorum is met (or the request is
        no longer pending): the caller then claims the decision; else (the vote's outcome, …). The flag is
        True when this very click's vote is on record (recorded now, or by an earlier delivery of it)."""
        ref = command.job
        need = quorum_of(request)
        self_allowed = request.rule is not None and request.rule.allow_self_approval
        counted, current = self.store.add_vote(ref, command.actor, command.decision_id, self.clock(), self_allowed)
        this_vote = counted in ("recorded", "again")
        if counted == "closed" or current is None:
            return None, this_vote  # decided (or deciding) meanwhile: the claim says by whom
        have = len(self._eligible(current))
        if counted == "requester":  # learnt to be the job's creator since this click was checked
            text = message.notice_requester_cannot_approve(ref.job_id)
            return self._refuse(command, current, Outcome.REQUESTER, "requester cannot approve", text), False
        if counted == "already" and have < need:
            text = message.notice_already_approved(ref.job_id, min(have, need), need)
            return self._refuse(command, current, Outcome.ALREADY_APPROVED, "already approved", text), False
        if have >= need:
            # Met: this vote claims the decision. So does a voter's second click on a met quorum whose
            # deciding delivery never claimed it (dead-lettered): the votes stay durable either way.
            return None, this_vote
        record = self._record_vote(command, current, f"{have} of {need} approvals")
        try:
            job = self.jobs.describe(ref)
        except JobNotFound:
            return self._close_not_found(command, current), this_vote
        except JobsUnavailable:
            job = None  # the vote counts; the message shows it with the next vote or event
        if job is not None and not job.awaiting_confirmation:
            return self._moved_on(command, current, job), this_vote
        if job is not None:
            self._show(current, job)
        failed = self._notify(
            command.channel or current.channel,
            command.actor.user_id,
            message.notice_vote_recorded(ref.job_id, have, need),
        )
        return DecisionResult(Outcome.VOTE_RECORDED, current, audit=[record], notices_failed=failed), this_vote

    def _record_vote(self, command: DecisionCommand, request: ApprovalRequest, reason: str) -> AuditRecord:
        """The vote on record: once per voter (its key), however many of their clicks or deliveries say so."""
        record = audit_record(
            AuditEventType.VOTE_RECORDED,
            command.job,
            now=self.clock(),
            request=request,
            actor=command.actor,
            action="approve",
            reason=reason,
            status_before=request.job_status,
            status_after=request.job_status,
            correlation_id=command.correlation_id,
            origin=origin_of(command),
        )
        self.store.put_audit(record, key=f"vote:{command.actor.user_id}")
        return record

    def _deciders(self, command: DecisionCommand, request: ApprovalRequest | None) -> tuple[Actor, ...]:
        """Whose decision this is: the counted approvals of a quorum (frozen once claimed), else the one
        person who clicked."""
        if command.decision == "approve" and request is not None and quorum_of(request) > 1:
            if request.state == RequestState.APPROVED:
                return tuple(request.approvals)  # as the decision named them
            return self._eligible(request)[: quorum_of(request)]
        return (command.actor,)

    def _eligible(self, request: ApprovalRequest) -> tuple[Actor, ...]:
        """The votes that count under the request's rule now, oldest first: not the creator's, and only by
        people who may approve under the rule (which may have changed when the creator became known)."""
        approvers = self.approvers_for(request)
        return tuple(
            vote for vote in counted_votes(request) if approver_status(vote.user_id, approvers, self.members_of) is True
        )

    def _counted(self, command: DecisionCommand, request: ApprovalRequest) -> bool:
        """True when this approval is one of the counted votes of the quorum another delivery claimed: it is
        part of that decision, not refused by it."""
        if command.decision != "approve" or request.decision != "approve" or quorum_of(request) < 2:
            return False
        return any(actor.user_id == command.actor.user_id for actor in self._deciders(command, request))

    def _reason(self, command: DecisionCommand, request: ApprovalRequest | None) -> str:
        if _by_expiry(command) and command.reason:
            return command.reason  # expiry_command's: "Expired: no decision within 24 h (policy <rule>)"
        if isinstance(command.origin, SystemOrigin):
            return policy_reason(command.decision, rule_of(command), command.reason)
        return status_update_reason(command.decision, self._deciders(command, request), command.reason)

    # -- outcomes -----------------------------------------------------------------------------

    @staticmethod
    def _applied(job: Job, decision: DecisionKind, actors: Actor | tuple[Actor, ...]) -> bool:
        """True when the job carries this decision by these people, applied by this product."""
        after = AFTER_APPROVE if decision == "approve" else AFTER_CANCEL
        return job.status in after and recorded_by(job.status_update_reason, decision, actors)

    def _carries(self, job: Job, command: DecisionCommand, request: ApprovalRequest | None) -> bool:
        """True when the job carries this very command's decision (a person's, a quorum's or a rule's)."""
        if _by_expiry(command):
            return job.status in AFTER_CANCEL and expiry_of(job.status_update_reason) == rule_of(command)
        if isinstance(command.origin, SystemOrigin):
            after = AFTER_APPROVE if command.decision == "approve" else AFTER_CANCEL
            return job.status in after and policy_of(job.status_update_reason) == (command.decision, rule_of(command))
        return self._applied(job, command.decision, self._deciders(command, request))

    def _not_awaiting(
        self, command: DecisionCommand, current: ApprovalRequest, job: Job, previous: ApprovalRequest | None
    ) -> DecisionResult:
        """The job is no longer Suspended: our own unrecorded call, a quiet predecessor's, or elsewhere."""
        if self._carries(job, command, current):
            return self._finish(command, job, job.status, job.status_update_reason or "", current)
        ours = decider_of(job.status_update_reason)
        if ours is not None and self._applied(job, *ours):
            # A holder before us did decide (the one we took over from, or one before it, whose record a
            # later takeover overwrote): record it as theirs, by the reason S3 carries, and tell this person.
            decision, people = ours
            decider = people[-1]  # a quorum's claim is made by its last vote
            if previous and previous.decider and previous.decider.user_id in {p.user_id for p in people}:
                decider = previous.decider  # the name and team as recorded, not as the reason spelt them
            why = previous.decision_reason if previous and previous.decider == decider else None
            theirs = command.model_copy(update={"decision": decision, "actor": decider, "reason": why})
            named = (*people[:-1], decider)
            finished = self._finish(theirs, job, job.status, job.status_update_reason or "", named=named)
            refused = self._refuse(
                command,
                finished.request,
                Outcome.ALREADY_DECIDED,
                "already decided",
                message.already_decided_text(finished.request) if finished.request else "",
            )
            refused.audit = finished.audit + refused.audit
            if theirs.actor.user_id == command.actor.user_id:
                return finished  # it was this very person's decision, by an earlier click
            return refused
        return self._moved_on(command, current, job)

    def _finish(
        self,
        command: DecisionCommand,
        job: Job,
        s3_status: str,
        reason: str,
        claimed: ApprovalRequest | None = None,
        named: tuple[Actor, ...] | None = None,
    ) -> DecisionResult:
        """Record the applied decision. For a quorum the decider on record is its last counted vote, whoever's
        delivery claimed it (a vote beside the quorum may win the claim; it is not one of the approvers)."""
        state = RequestState.APPROVED if command.decision == "approve" else RequestState.CANCELLED
        if named is not None:
            people = named  # as S3's reason names them (a decision of ours recorded after a takeover)
        else:
            people = self._deciders(command, claimed) if claimed is not None else (command.actor,)
        decider = people[-1] if people else command.actor
        counted = people if command.decision == "approve" and len(people) > 1 else ()
        try:
            request = self.store.finish_decision(
                command.job,
                command.decision_id,
                state,
                s3_status,
                reason,
                self.clock(),
                decider=decider,
                decision=command.decision,
                counted=counted,
            )
        except ClaimLost:
            latest = self.store.get(command.job)
            if latest is None or latest.decision_id != command.decision_id or latest.state != state:
                # Slower than the lease: whoever took over has recorded (or will record) this decision.
                return DecisionResult(Outcome.DUPLICATE, latest)
            request = latest  # our own write went through and only its answer was lost (botocore retried)
        record = self._decision_record(
            request, status_before="Suspended", correlation_id=command.correlation_id, origin=origin_of(command)
        )
        self._show(request, job.model_copy(update={"status": s3_status, "status_update_reason": reason}))
        # Only now is the decision fully carried out: until this, the reconciliation finds it (DecidingIndex)
        # and finishes the audit record and the message should this decider die and its message be lost.
        self.store.settle_decision(command.job, command.decision_id)
        announce(self.on_change, request)
        return DecisionResult(Outcome.APPLIED, request, s3_status, audit=[record])

    def _decision_record(
        self, request: ApprovalRequest, status_before: str, correlation_id: str | None, origin: str = "slack"
    ) -> AuditRecord:
        """The decision_taken record, written once per decision however often this runs."""
        assert request.decided_at is not None
        people = message.deciders(request)
        record = audit_record(
            AuditEventType.DECISION_TAKEN,
            request.job,
            now=request.decided_at,
            request=request,
            actor=request.decider,
            action=request.decision,
            reason=request.decision_reason,
            status_before=status_before,
            status_after=request.s3_status,
            status_update_reason=request.status_update_reason,
            correlation_id=correlation_id,
            origin=request.decision_origin or origin,
            approvers=[p.user_id for p in people] if len(people) > 1 else None,
            detail="approved without knowing the requester" if request.approved_without_requester else None,
        )
        self.store.put_audit(record, key=f"{request.decision_id}:taken")
        return record

    def _resume(self, request: ApprovalRequest) -> DecisionResult:
        """A redelivered command whose decision is already recorded: make sure the record and the
        message both say so (either may have failed the first time)."""
        if request.state in {RequestState.APPROVED, RequestState.CANCELLED}:
            self._decision_record(request, status_before="Suspended", correlation_id=None)
        try:
            job = self.jobs.describe(request.job)
        except (JobNotFound, JobsUnavailable):
            job = None
        if job is not None:
            self._show(request, job)
        if request.decision_id:
            self.store.settle_decision(request.job, request.decision_id)
        return DecisionResult(Outcome.RESUMED, request, request.s3_status)

    def _moved_on(self, command: DecisionCommand, request: ApprovalRequest, job: Job) -> DecisionResult:
        note = message.outside_slack_note(job.status)
        closed = self.store.close(command.job, note, job.status, self.clock(), command.decision_id) or request
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
        closed = self.store.close(command.job, note, None, self.clock(), command.decision_id) or request
        return self._refuse(
            command, closed, Outcome.NOT_FOUND, "job not found in S3", message.job_not_found_text(command.job.job_id)
        )

    def _fail(
        self, command: DecisionCommand, request: ApprovalRequest, detail: str, asked: bool = True
    ) -> DecisionResult:
        """S3 kept failing: the request goes back to pending so anyone may try again, and we say so.

        Unless S3 was asked (``asked``) and may have done it: then the job is read again first. Applied →
        recorded as applied; moved on → closed as such; unreadable → this delivery comes back later
        (``retry_later``), because reopening a job that may be Ready would tell the person a falsehood.
        """
        if asked:
            try:
                job = self.jobs.describe(command.job)
            except JobNotFound:
                return self._close_not_found(command, request)
            except JobsUnavailable:
                return DecisionResult(Outcome.FAILED, request, detail=detail, retry_later=True)
            if not job.awaiting_confirmation:
                return self._not_awaiting(command, request, job, None)
            status_before: str | None = job.status
        else:
            status_before = request.job_status
        self.store.release_decision(command.job, command.decision_id)
        return self._record_and_tell(
            AuditEventType.DECISION_FAILED,
            Outcome.FAILED,
            command,
            request,
            detail,
            message.decision_failed_text(command.job.job_id, detail),
            status_before=status_before,
        )

    def _refuse(
        self,
        command: DecisionCommand,
        request: ApprovalRequest | None,
        outcome: Outcome,
        why: str,
        text: str,
        status: str | None = None,
    ) -> DecisionResult:
        current = status or (request.job_status if request else None)
        return self._record_and_tell(
            AuditEventType.DECISION_REFUSED,
            outcome,
            command,
            request,
            why,
            text,
            status_before=current,
            status_after=current,
        )

    def _record_and_tell(
        self,
        event_type: AuditEventType,
        outcome: Outcome,
        command: DecisionCommand,
        request: ApprovalRequest | None,
        why: str,
        text: str,
        status_before: str | None = None,
        status_after: str | None = None,
    ) -> DecisionResult:
        """A decision that did not happen: one audit record, and the person who clicked is told why."""
        record = audit_record(
            event_type,
            command.job,
            now=self.clock(),
            request=request,
            actor=command.actor,
            action=command.decision,
            reason=why,
            status_before=status_before,
            status_after=status_after,
            correlation_id=command.correlation_id,
            origin=origin_of(command),
        )
        self.store.put_audit(record)
        if isinstance(command.origin, SystemOrigin):  # nobody clicked: the message and the audit say it
            return DecisionResult(outcome, request, detail=why, audit=[record])
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

    def tell(self, channel: str | None, user_id: str | None, text: str) -> int:
        """An ephemeral notice to one person; 1 when it could not be sent."""
        return self._notify(channel, user_id, text)

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
