"""When a pending request is reminded, escalated and expired: a pure function of its rule and the clock.

A request posted at ``requested_at`` under a rule (or, with no policy, the defaults of ``Reminders`` and
``Expiry``) has:

- reminders at ``first``, ``first + first*backoff``, ``first + first*backoff + first*backoff²`` … after
  ``requested_at`` (defaults: 15 min, times 2, at most 4: at 15, 45, 105 and 225 minutes), each one only if it
  comes before the deadline;
- from reminder ``escalate.after_reminders + 1`` on (if the rule escalates), each reminder is an
  escalation: it also mentions the escalation's people and groups, and posts in its channel;
- a deadline ``expiry.after_hours`` after ``requested_at``, never later than a day before S3 fails the
  job (30 days after it was suspended), and never before the request was posted.

The lifecycle sweep (``domain.lifecycle_sweep``) asks ``next_step`` what is due after the steps already
taken; the request record keeps only how many reminders went out and when the next step is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from approvals.models.policy import Escalation, Expiry, Reminders, Rule
from approvals.models.records import ApprovalRequest

SUSPENDED_JOB_LIFETIME = timedelta(days=30)
# The deadline keeps this much time before S3 would fail the job itself, so the expiry's action (cancel) is
# ours, recorded, and not S3's silent failure.
EXPIRY_MARGIN = timedelta(days=1)


class StepKind(StrEnum):
    REMIND = "remind"
    ESCALATE = "escalate"  # a reminder that also escalates
    EXPIRE = "expire"


@dataclass(frozen=True)
class Step:
    kind: StepKind
    at: datetime
    number: int = 0  # the reminder's number, from 1; 0 for the expiry


@dataclass(frozen=True)
class Lifecycle:
    """A rule's reminders and expiry, with every default filled in."""

    reminders: Reminders
    expiry: Expiry
    rule_name: str

    @classmethod
    def of(cls, rule: Rule | None) -> Lifecycle:
        if rule is None:
            return cls(reminders=Reminders(), expiry=Expiry(), rule_name=DEFAULT_RULE_NAME)
        return cls(reminders=rule.reminders, expiry=rule.expiry, rule_name=rule.name)

    @property
    def escalation(self) -> Escalation | None:
        return self.reminders.escalate


# The name a deployment without a policy file gives its one implicit rule (in the expiry's reason).
DEFAULT_RULE_NAME = "default"


def reminder_times(requested_at: datetime, reminders: Reminders) -> list[datetime]:
    """Every reminder's time, in order, before the deadline is considered (none later than S3 keeps a job
    waiting: a steep backoff would otherwise run past what a datetime can hold)."""
    times: list[datetime] = []
    gap = timedelta(minutes=reminders.first_after_minutes)
    at = requested_at
    for _ in range(reminders.max):
        if gap > SUSPENDED_JOB_LIFETIME:
            break
        at = at + gap
        if at - requested_at > SUSPENDED_JOB_LIFETIME:
            break
        times.append(at)
        gap = gap * reminders.backoff
    return times


def deadline(requested_at: datetime, expiry: Expiry, suspended_at: datetime | None = None) -> datetime:
    """When the request expires: ``after_hours`` after it was posted, but a day before S3 would fail the job
    (30 days after it was suspended), and never before it was posted (a request found very late expires
    at once)."""
    wanted = requested_at + timedelta(hours=expiry.after_hours)
    if suspended_at is not None:
        wanted = min(wanted, suspended_at + SUSPENDED_JOB_LIFETIME - EXPIRY_MARGIN)
    return max(wanted, requested_at)


def steps(requested_at: datetime, ends_at: datetime, lifecycle: Lifecycle) -> list[Step]:
    """Every step of the request's life, in order: its reminders before the deadline, then its expiry."""
    escalation = lifecycle.escalation
    found = []
    for number, at in enumerate(reminder_times(requested_at, lifecycle.reminders), start=1):
        if at >= ends_at:
            break
        escalates = escalation is not None and number > escalation.after_reminders
        found.append(Step(StepKind.ESCALATE if escalates else StepKind.REMIND, at, number))
    found.append(Step(StepKind.EXPIRE, ends_at))
    return found


def next_step(requested_at: datetime, ends_at: datetime, lifecycle: Lifecycle, reminders_sent: int) -> Step:
    """The step after ``reminders_sent`` reminders: the next reminder, or the expiry once none is left."""
    remaining = steps(requested_at, ends_at, lifecycle)[reminders_sent:]
    return remaining[0] if remaining else Step(StepKind.EXPIRE, ends_at)


def hours_text(hours: int) -> str:
    """``24 h``; whole days above two are ``3 days`` (how the expiry reason and the message say it)."""
    if hours >= 48 and hours % 24 == 0:
        return f"{hours // 24} days"
    return f"{hours} h"


def allowed_hours(request: ApprovalRequest) -> int:
    """How long the request was given, in whole hours (at least 1): from when it was posted to its deadline,
    as fixed then (the rule's expiry, or less when S3's 30 days came first; a rule changed since does not
    change it)."""
    if request.deadline is None:
        return Expiry().after_hours
    return max(1, round((request.deadline - request.requested_at).total_seconds() / 3600))
