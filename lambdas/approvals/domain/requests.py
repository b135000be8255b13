"""Approval requests: a job that waits for confirmation becomes one Slack message, kept up to date.

The notifier handler calls ``RequestService.on_job_event`` for every job event (and for every
Suspended job the reconciliation finds). DescribeJob is the truth; the event only says which job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from approvals.domain import lifecycle, message
from approvals.domain.audit import audit_record
from approvals.domain.decisions import DecisionResult, announce, policy_command
from approvals.domain.identity import IdentityResolver
from approvals.domain.lifecycle import Lifecycle
from approvals.domain.policy import JobFacts, evaluate
from approvals.domain.ports import Chat, ChatUnavailable, Jobs, Requesters, RequestersUnavailable, RequestStore
from approvals.models.events import CreateJobCall
from approvals.models.job import Job, JobRef
from approvals.models.policy import Policy, Rule
from approvals.models.records import ApprovalRequest, AuditEventType, AuditRecord, Requester, RequestState
from approvals.models.slack import DecisionCommand

# How long after a job's creation CloudTrail's history is asked for its CreateJob call (it lags minutes).
LOOKUP_HORIZON = timedelta(hours=2)
# How far before a posting claim the history is read for a message it may have posted (clock skew).
POSTED_LOOKBACK = timedelta(minutes=2)


class PostingInProgress(Exception):
    """Another delivery holds the posting claim and no message is recorded yet: it may still post, or it
    died. Raised, so Lambda retries the event (and, after its retries, sends it to the on-failure queue)
    instead of acknowledging an event whose request may never be posted."""


class EventOutcome(StrEnum):
    POSTED = "posted"
    ALREADY_POSTED = "already_posted"
    NOT_AWAITING = "not_awaiting"
    STATUS_UPDATED = "status_updated"
    UNCHANGED = "unchanged"
    REQUESTER_RECORDED = "requester_recorded"  # learnt before the request exists: kept for when it is posted
    REQUESTER_LEARNT = "requester_learnt"  # added to the request (and its message)


@dataclass
class EventResult:
    outcome: EventOutcome
    job: Job | None
    request: ApprovalRequest | None = None
    audit: list[AuditRecord] | None = None
    requester_problem: str | None = None  # why the requester could not be looked up this time (retried later)
    policy_decision: DecisionResult | None = None  # what a rule that denies or approves did


@dataclass
class RequestService:
    jobs: Jobs
    store: RequestStore
    chat: Chat
    channel: str
    clock: Callable[[], datetime]
    large_job_threshold: int
    posting_lease_seconds: int = 300
    # The policy (None: one approval from the deployment's approvers, the requester checked when known),
    # who created a job (the CreateJob event, else CloudTrail's history), and the decider's path for the
    # decisions a rule makes itself (deny, approve).
    policy: Policy | None = None
    identities: IdentityResolver | None = None
    requesters: Requesters | None = None
    decide: Callable[[DecisionCommand], DecisionResult] | None = None
    # Told each request posted (the Home tab's refresh): best effort, never raises.
    on_change: Callable[[ApprovalRequest], object] = lambda _request: None
    # Account ID → the name the hub's settings give it (shown on the request, kept on its record).
    account_names: Mapping[str, str] = field(default_factory=dict)

    def report_unreachable(self, ref: JobRef, problem: str) -> None:
        """Say in the channel that jobs' events came but the hub cannot act in their account and region (the spoke
        role could not be assumed): nothing about them can be read, so no request is posted until it can. Said
        once a day per account and region, however many jobs, events and deliveries fail; a notice that could
        not be posted is tried again with the next failure."""
        key = f"UNREACHABLE#{ref.account_id}#{ref.region}"
        if not self.store.first_notice(key, self.clock()):
            return
        text = message.unreachable_text(ref, self.account_names.get(ref.account_id), problem)
        try:
            self.chat.post(self.channel, text, [message.section(text, "unreachable")], None)
        except BaseException:
            self.store.forget_notice(key)
            raise

    def on_create_job(self, call: CreateJobCall) -> EventResult:
        """Who created a job, from its CreateJob API-call event: kept, and shown on its request if posted."""
        ref = JobRef(account_id=call.account_id, region=call.region, job_id=call.job_id)
        requester = self._identify(call, "event")
        self.store.put_requester(ref, requester, self.clock())
        request = self.store.get(ref)
        if request is None or request.state == RequestState.POSTING:
            # Not posted yet (the job is still being prepared), or being posted: the poster reads it.
            return EventResult(EventOutcome.REQUESTER_RECORDED, None, request)
        job = self.jobs.describe(ref) if request.state == RequestState.PENDING else None
        return self._learn(ref, job, request, requester)

    def on_job_event(self, ref: JobRef) -> EventResult:
        """Post a request for a job awaiting confirmation, or follow a known job's status.

        Raises JobNotFound (the caller drops the event with a metric), JobsUnavailable and
        ChatUnavailable (the caller fails the invocation so EventBridge retries).
        """
        job = self.jobs.describe(ref)
        request = self.store.get(ref)
        if request is not None and request.state == RequestState.POSTING:
            # An earlier delivery claimed the posting and did not record a message: it may have posted it.
            request = self._adopt_posted(ref, job, request) or request
        if request is None or request.state == RequestState.POSTING:
            if not job.awaiting_confirmation:
                return EventResult(EventOutcome.NOT_AWAITING, job, request)
            return self._post(ref, job, request)
        result = self._follow(ref, job, request)
        current = result.request or request
        if current.state == RequestState.PENDING and job.awaiting_confirmation:
            if current.requester is None:
                requester, result.requester_problem = self._known_requester(ref, job)
                if requester is not None:
                    learnt = self._learn(ref, job, current, requester)
                    result.request, result.policy_decision = learnt.request, learnt.policy_decision
                    return result
            result.policy_decision = self._apply_rule(current)  # a rule's decision that failed before
        return result

    # -- who created the job, and the policy ----------------------------------------------------------

    def _identify(self, call: CreateJobCall, found_in: str) -> Requester:
        """The requester, with its Slack user. Slack failing to answer raises ChatUnavailable (so the event
        or the reconciliation is retried): an unmapped requester would let its own Slack user approve."""
        if self.identities is None:
            return Requester(
                principal_arn=call.principal_arn,
                principal_type=call.principal_type,
                found_in=found_in,  # type: ignore[arg-type]
            )
        resolved = self.identities.resolution(call, found_in)  # type: ignore[arg-type]
        if resolved.lookup_failed:
            raise ChatUnavailable(f"the requester's Slack user could not be looked up: {resolved.lookup_failed}")
        return resolved.requester

    def _known_requester(self, ref: JobRef, job: Job) -> tuple[Requester | None, str | None]:
        """Who created the job as far as we know: the CreateJob event's, else CloudTrail's history (best
        effort, never failing the caller: the history lags minutes behind and allows 2 calls a second)."""
        known = self.store.requester_of(ref)
        if known is not None or self.requesters is None or job.creation_time is None:
            return known, None
        if self.clock() - job.creation_time > LOOKUP_HORIZON:
            return None, None  # the history would have shown it by now: stop asking (2 calls a second)
        try:
            call = self.requesters.lookup(ref, job.creation_time)
        except RequestersUnavailable as exc:
            return None, str(exc)
        if call is None:
            return None, None
        try:
            requester = self._identify(call, "history")
        except ChatUnavailable as exc:
            return None, str(exc)
        self.store.put_requester(ref, requester, self.clock())
        return requester, None

    @staticmethod
    def first_step(request: ApprovalRequest) -> datetime | None:
        """When the posted request's first lifecycle step (a reminder, or its expiry) is due; None for a
        request without a deadline (recorded before requests had one)."""
        if request.deadline is None:
            return None
        plan = Lifecycle.of(request.rule)
        return lifecycle.next_step(request.requested_at, request.deadline, plan, 0).at

    def channel_for(self, rule: Rule | None) -> str:
        """Where a request is posted: the rule's channel, else the deployment's."""
        return rule.channel if rule is not None and rule.channel else self.channel

    def rule_for(self, job: Job, ref: JobRef, requester: Requester | None) -> Rule | None:
        """The policy's rule for the job, every default filled in; None without a policy."""
        if self.policy is None:
            return None
        tags = self.jobs.tags(ref) if any(rule.match.tags for rule in self.policy.rules) else None
        facts = JobFacts.of(job, ref, tags=tags, requester=requester.principal_arn if requester else None)
        return evaluate(self.policy, facts).rule

    def _learn(self, ref: JobRef, job: Job | None, request: ApprovalRequest, requester: Requester) -> EventResult:
        """Put the requester on the request, with the rule that applies now that it is known; show it."""
        open_ = request.state in (RequestState.POSTING, RequestState.PENDING)
        rule = self.rule_for(job, ref, requester) if open_ and job is not None else None
        updated = self.store.set_requester(ref, requester, rule) or self.store.get(ref) or request
        if updated.requester is None:
            return EventResult(EventOutcome.UNCHANGED, job, updated)
        record = audit_record(
            AuditEventType.REQUESTER_IDENTIFIED,
            ref,
            now=self.clock(),
            request=updated,
            detail=f"found in {updated.requester.found_in}"
            + (f", Slack user by {updated.requester.mapped_by}" if updated.requester.mapped_by else ""),
        )
        self.store.put_audit(record, key="requester")
        decided = None
        if updated.state == RequestState.PENDING and job is not None:
            self._render(ref, job, updated)
            decided = self._apply_rule(updated)
        if decided is None:  # the creator's "Your jobs", and the approvers' queue (the rule may have changed)
            announce(self.on_change, updated)
        return EventResult(EventOutcome.REQUESTER_LEARNT, job, updated, [record], policy_decision=decided)

    def _apply_rule(self, request: ApprovalRequest) -> DecisionResult | None:
        """A rule that denies or approves decides itself, through the decider's exactly-once path."""
        rule = request.rule
        if rule is None or rule.action == "require_approval" or self.decide is None:
            return None
        return self.decide(policy_command(request, rule))

    def _render(self, ref: JobRef, job: Job, request: ApprovalRequest) -> None:
        if request.channel and request.message_ts:
            rendered = message.render_request(job, ref, request, self.large_job_threshold)
            self.chat.update(request.channel, request.message_ts, rendered.text, rendered.blocks)

    def _adopt_posted(self, ref: JobRef, job: Job, earlier: ApprovalRequest) -> ApprovalRequest | None:
        """The request message an earlier delivery posted without recording it, now recorded; None if none.

        Slack has no idempotency key for chat.postMessage: a post whose answer was lost, or whose
        invocation died before ``mark_posted``, may or may not be in the channel. Only an expired claim is
        looked at (a live one belongs to a delivery that may still record it), and the history is read
        from just before that claim was first made, for a message of ours with this job's metadata.
        """
        now = self.clock()
        if earlier.claimed_at is not None and earlier.claimed_at > now - timedelta(seconds=self.posting_lease_seconds):
            raise PostingInProgress(f"job {ref.job_id}: the request is being posted by another delivery")
        since = earlier.requested_at - POSTED_LOOKBACK
        metadata = message.render_request(job, ref, earlier, self.large_job_threshold).metadata or {}
        channel = self.channel_for(earlier.rule)
        ts = self.chat.find_own_message(channel, since, metadata)
        if ts is None:
            return None
        first = self.first_step(earlier)
        if not self.store.adopt_posted(ref, channel, ts, earlier.claimed_at, first):
            return self.store.get(ref)  # another delivery recorded it (or took the claim) meanwhile
        adopted = earlier.model_copy(
            update={"state": RequestState.PENDING, "channel": channel, "message_ts": ts, "due_at": first}
        )
        self._requested_record(adopted)
        return adopted

    def _post(self, ref: JobRef, job: Job, earlier: ApprovalRequest | None) -> EventResult:
        requester, problem = self._known_requester(ref, job)
        rule = self.rule_for(job, ref, requester)
        now = self.clock()
        # A takeover keeps the first claim's time: the message may have been posted any time since.
        requested_at = earlier.requested_at if earlier is not None else now
        claim = ApprovalRequest(
            job=ref,
            state=RequestState.POSTING,
            requested_at=requested_at,
            account_name=self.account_names.get(ref.account_id),
            operation=job.operation_name,
            object_count=job.object_count,
            job_status=job.status,
            requester=requester,
            rule=rule,
            deadline=lifecycle.deadline(requested_at, Lifecycle.of(rule).expiry, job.suspended_date),
        )
        if not self.store.claim_posting(claim, now, self.posting_lease_seconds):
            existing = self.store.get(ref)
            if existing is not None and existing.state == RequestState.POSTING and not existing.message_ts:
                raise PostingInProgress(f"job {ref.job_id}: the request is being posted by another delivery")
            if existing is not None and existing.message_ts:
                self._requested_record(existing)  # in case the first delivery died before writing it
            return EventResult(EventOutcome.ALREADY_POSTED, job, existing)
        rendered = message.render_request(job, ref, claim, self.large_job_threshold)
        channel = self.channel_for(rule)
        try:
            ts = self.chat.post(channel, rendered.text, rendered.blocks, rendered.metadata)
        except BaseException:
            # Slack may have posted it all the same (a lost answer): keep the claim's record, so the retry
            # looks for the message before posting, but let the retry take the claim at once.
            self.store.release_posting(ref, now)
            raise
        first = self.first_step(claim)
        self.store.mark_posted(ref, channel, ts, first)
        request = claim.model_copy(
            update={"state": RequestState.PENDING, "channel": channel, "message_ts": ts, "due_at": first}
        )
        result = EventResult(EventOutcome.POSTED, job, request, [self._requested_record(request)])
        result.requester_problem = problem
        if requester is None:
            arrived = self.store.requester_of(ref)  # the CreateJob event came in while this was posting
            if arrived is not None:
                learnt = self._learn(ref, job, request, arrived)
                result.request, result.policy_decision = learnt.request, learnt.policy_decision
                return result
        result.policy_decision = self._apply_rule(request)
        if result.policy_decision is None:  # a rule's own decision announces itself
            announce(self.on_change, request)
        return result

    def _requested_record(self, request: ApprovalRequest) -> AuditRecord:
        """The approval_requested record, written once per job however often this runs."""
        record = audit_record(
            AuditEventType.APPROVAL_REQUESTED,
            request.job,
            now=request.requested_at,
            request=request,
            status_after="Suspended",
        )
        self.store.put_audit(record, key="requested")
        return record

    def _follow(self, ref: JobRef, job: Job, request: ApprovalRequest) -> EventResult:
        before = request.job_status
        if not self.store.record_job_status(ref, job.status):
            if request.message_ts:
                self._requested_record(request)  # in case the delivery that posted it died before this
            return EventResult(EventOutcome.UNCHANGED, job, request)
        try:
            if request.state == RequestState.PENDING and not job.awaiting_confirmation:
                note = message.outside_slack_note(job.status)
                request = self.store.close(ref, note, job.status, self.clock()) or request
            else:
                request = request.model_copy(update={"job_status": job.status})
            self._show_status(ref, job, request)
            record = audit_record(
                AuditEventType.JOB_STATUS_CHANGED,
                ref,
                now=self.clock(),
                request=request,
                status_before=before,
                status_after=job.status,
                status_update_reason=job.status_update_reason,
            )
            self.store.put_audit(record, key=f"status:{before}>{job.status}")
        except BaseException:
            # Slack or the audit write failed: forget the status so EventBridge's retry does it all again
            # (the message update is idempotent, the audit record is keyed).
            self.store.restore_job_status(ref, job.status, before)
            raise
        return EventResult(EventOutcome.STATUS_UPDATED, job, request, [record])

    def _show_status(self, ref: JobRef, job: Job, request: ApprovalRequest) -> None:
        if not (request.channel and request.message_ts):
            return
        if request.state != RequestState.DECIDING:  # the decider renders the outcome itself
            rendered = message.render_request(job, ref, request, self.large_job_threshold)
            self.chat.update(request.channel, request.message_ts, rendered.text, rendered.blocks)
        reply = message.render_status_reply(job, ref)
        if reply is not None:
            self.chat.post(request.channel, reply.text, reply.blocks, None, thread_ts=request.message_ts)
