"""What the domain needs from the outside world. Adapters implement these; tests hand in fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from approvals.models.job import Job, JobRef
from approvals.models.records import Actor, ApprovalRequest, AuditRecord, DecisionKind, Requester, RequestState
from approvals.models.slack import DecisionCommand

if TYPE_CHECKING:  # annotations only: the callback imports this module and must not pay for these
    from approvals.models.events import CreateJobCall
    from approvals.models.policy import Rule

RequestedStatus = Literal["Ready", "Cancelled"]
VoteOutcome = Literal["recorded", "again", "already", "requester", "closed"]


class JobNotFound(Exception):
    """S3 Control does not know the job (deleted, expired, another account)."""


class JobStatusConflict(Exception):
    """The job is not in a state that allows the change (already decided or moved on)."""


class JobsUnavailable(Exception):
    """S3 Control kept failing (throttling or server errors) after retries."""


class AccountNotServed(JobsUnavailable):
    """The job is in an account and region this hub is not set up for (not the hub's own, not a listed member):
    the hub never acts there. Events for it are dropped; a decision on it fails as S3 failures do."""


class AccountUnreachable(JobsUnavailable):
    """The hub could not assume the member account's spoke role (missing, wrong trust, STS throttling or down):
    retried like any S3 failure, and said in words (``str``) to whoever waits on it."""


class ClaimLost(Exception):
    """The decision's claim on the request was taken over (its holder was quiet past the lease)."""


class ChatUnavailable(Exception):
    """Slack kept failing (rate limits, server errors, timeouts) after retries."""


class PostingDeferred(ChatUnavailable):
    """The channel's posting pace has no turn free before this invocation must end: nothing was posted, and
    the work is retried later (the queue's redelivery, or the next reconciliation)."""


class Pacer(Protocol):
    """Keeps one channel's messages within Slack's pace (about one per second), across every function."""

    def wait_turn(self, channel: str) -> None:
        """Returns when a message may be posted to ``channel`` now; raises PostingDeferred when that turn
        is further away than the time left."""
        ...


class Jobs(Protocol):
    def describe(self, ref: JobRef) -> Job: ...

    def update_status(self, ref: JobRef, requested: RequestedStatus, reason: str) -> str: ...

    def list_awaiting(self, account_id: str, region: str, limit: int | None = None) -> list[str]:
        """IDs of the Suspended jobs of one account and region (at most ``limit``)."""
        ...

    def tags(self, ref: JobRef) -> dict[str, str]:
        """The job's tags (GetJobTagging); raises JobNotFound, JobsUnavailable like ``describe``."""
        ...


@dataclass(frozen=True)
class Claim:
    """The result of trying to take the decision on a request."""

    won: bool
    request: ApprovalRequest | None


class RequestStore(Protocol):
    def get(self, ref: JobRef) -> ApprovalRequest | None: ...

    def first_notice(self, key: str, now: datetime) -> bool:
        """True the first time ``key`` is given within a day (one conditional write), False after."""
        ...

    def forget_notice(self, key: str) -> None:
        """``key`` may be said again (its notice could not be posted)."""
        ...

    def claim_posting(self, request: ApprovalRequest, now: datetime, lease_seconds: int) -> bool: ...

    def mark_posted(self, ref: JobRef, channel: str, message_ts: str, due_at: datetime | None = None) -> None: ...

    def release_posting(self, ref: JobRef, claimed_at: datetime) -> None: ...

    def adopt_posted(
        self, ref: JobRef, channel: str, message_ts: str, claimed_at: datetime | None, due_at: datetime | None = None
    ) -> bool: ...

    def add_vote(
        self, ref: JobRef, voter: Actor, decision_id: str, now: datetime, self_allowed: bool = False
    ) -> tuple[VoteOutcome, ApprovalRequest | None]: ...

    def set_requester(self, ref: JobRef, requester: Requester, rule: Rule | None) -> ApprovalRequest | None: ...

    def put_requester(self, ref: JobRef, requester: Requester, now: datetime) -> bool: ...

    def requester_of(self, ref: JobRef) -> Requester | None: ...

    def record_job_status(self, ref: JobRef, status: str) -> bool: ...

    def restore_job_status(self, ref: JobRef, status: str, previous: str | None) -> None: ...

    def claim_decision(
        self, command: DecisionCommand, now: datetime, lease_seconds: int, without_requester: bool = False
    ) -> Claim: ...

    def finish_decision(
        self,
        ref: JobRef,
        decision_id: str,
        state: RequestState,
        s3_status: str | None,
        status_update_reason: str | None,
        now: datetime,
        note: str | None = None,
        decider: Actor | None = None,
        decision: DecisionKind | None = None,
        counted: tuple[Actor, ...] = (),
    ) -> ApprovalRequest: ...

    def settle_decision(self, ref: JobRef, decision_id: str) -> None: ...

    def release_decision(self, ref: JobRef, decision_id: str) -> None: ...

    def close(
        self, ref: JobRef, note: str, job_status: str | None, now: datetime, decision_id: str | None = None
    ) -> ApprovalRequest | None: ...

    def put_audit(self, record: AuditRecord, key: str | None = None) -> None: ...

    def history(self, ref: JobRef) -> list[AuditRecord]: ...

    def stuck(self, now: datetime, lease_seconds: int) -> list[ApprovalRequest]: ...

    # The lifecycle: due steps (reminders, escalation, expiry), each taken by one sweep at a time.
    def due(self, now: datetime, limit: int) -> list[ApprovalRequest]: ...

    def claim_step(self, request: ApprovalRequest, claim_id: str, lease_until: datetime) -> ApprovalRequest | None: ...

    def finish_step(self, ref: JobRef, claim_id: str, reminders_sent: int, next_due: datetime | None) -> bool: ...

    def release_step(self, ref: JobRef, claim_id: str, due_at: datetime) -> None: ...

    def mark_expired(self, ref: JobRef, claim_id: str, now: datetime) -> ApprovalRequest | None: ...

    def defer_step(self, request: ApprovalRequest, until: datetime) -> None: ...


class Chat(Protocol):
    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        metadata: dict[str, Any] | None,
        thread_ts: str | None = None,
    ) -> str: ...

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None: ...

    def ephemeral(self, channel: str, user_id: str, text: str) -> None: ...

    def group_members(self, group_id: str) -> frozenset[str]: ...

    def display_name(self, user_id: str) -> str | None: ...

    def user_by_email(self, email: str) -> str | None:
        """The Slack user ID with this email (users.lookupByEmail); None when nobody has it."""
        ...

    def find_own_message(self, channel: str, since: datetime, metadata: dict[str, Any]) -> str | None:
        """The ts of a top-level message this app posted in ``channel`` at or after ``since`` whose metadata
        has ``metadata``'s event_type and every item of its event_payload; None when there is none."""
        ...


class Requesters(Protocol):
    """CloudTrail's event history: who created a job, when the CreateJob event did not reach us."""

    def lookup(self, ref: JobRef, created_at: datetime) -> CreateJobCall | None:
        """The CreateJob record for the job, looked up around its creation time; None when the history
        does not have it (yet: it lags minutes behind). Raises RequestersUnavailable when CloudTrail
        kept throttling or failing."""
        ...


class RequestersUnavailable(Exception):
    """CloudTrail's LookupEvents kept failing or throttling after retries."""
