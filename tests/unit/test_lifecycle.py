"""The lifecycle schedule as a pure function of the rule and the clock: delays, backoff, limits, the escalation
point and the deadline (approvals.domain.lifecycle)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.domain.lifecycle import (
    DEFAULT_RULE_NAME,
    EXPIRY_MARGIN,
    SUSPENDED_JOB_LIFETIME,
    Lifecycle,
    StepKind,
    deadline,
    hours_text,
    next_step,
    reminder_times,
    steps,
)
from approvals.models.policy import Escalation, Expiry, Reminders, Rule

POSTED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def minutes_after(times: list[datetime]) -> list[float]:
    return [(t - POSTED).total_seconds() / 60 for t in times]


def test_the_defaults_remind_after_15_minutes_then_doubling_four_times_and_expire_after_24_hours() -> None:
    # given no policy
    plan = Lifecycle.of(None)

    # when
    planned = steps(POSTED, deadline(POSTED, plan.expiry), plan)

    # then
    assert [s.kind for s in planned] == [StepKind.REMIND] * 4 + [StepKind.EXPIRE]
    assert minutes_after([s.at for s in planned]) == [15, 45, 105, 225, 24 * 60]
    assert [s.number for s in planned] == [1, 2, 3, 4, 0]
    assert plan.rule_name == DEFAULT_RULE_NAME
    assert plan.expiry.action == "cancel"


def test_reminders_after_the_escalation_point_escalate() -> None:
    # given a rule escalating after two reminders
    rule = Rule(
        name="prod",
        reminders=Reminders(escalate=Escalation(after_reminders=2, groups=["S0ONCALL01"])),
    )
    plan = Lifecycle.of(rule)

    # when
    kinds = [s.kind for s in steps(POSTED, deadline(POSTED, rule.expiry), plan)]

    # then
    assert kinds == [StepKind.REMIND, StepKind.REMIND, StepKind.ESCALATE, StepKind.ESCALATE, StepKind.EXPIRE]


def test_no_reminder_is_planned_at_or_after_the_deadline() -> None:
    # given a two-hour expiry and the default reminders (15, 45, 105, 225 minutes)
    rule = Rule(name="short", expiry=Expiry(after_hours=2))

    # when
    planned = steps(POSTED, deadline(POSTED, rule.expiry), Lifecycle.of(rule))

    # then the 225-minute reminder is dropped
    assert minutes_after([s.at for s in planned]) == [15, 45, 105, 120]
    assert planned[-1].kind == StepKind.EXPIRE


def test_the_deadline_is_a_day_before_s3_would_fail_the_job() -> None:
    # given a job suspended 29 days and 12 hours ago, found only now (its events were lost)
    suspended = POSTED - timedelta(days=29, hours=12)

    # when
    ends = deadline(POSTED, Expiry(after_hours=24), suspended_at=suspended)

    # then it expires at once, never after S3's 30 days less the margin
    assert ends == POSTED
    assert deadline(POSTED, Expiry(after_hours=24), suspended_at=POSTED) == POSTED + timedelta(hours=24)


def test_next_step_after_every_reminder_is_the_expiry() -> None:
    plan = Lifecycle.of(None)
    ends = deadline(POSTED, plan.expiry)

    assert next_step(POSTED, ends, plan, 0).number == 1
    assert next_step(POSTED, ends, plan, 3).number == 4
    assert next_step(POSTED, ends, plan, 4).kind == StepKind.EXPIRE
    assert next_step(POSTED, ends, plan, 9).kind == StepKind.EXPIRE


def test_no_reminders_means_the_expiry_is_the_only_step() -> None:
    rule = Rule(name="quiet", reminders=Reminders(max=0))

    planned = steps(POSTED, deadline(POSTED, rule.expiry), Lifecycle.of(rule))

    assert [s.kind for s in planned] == [StepKind.EXPIRE]


@pytest.mark.parametrize(("hours", "text"), [(1, "1 h"), (24, "24 h"), (36, "36 h"), (48, "2 days"), (72, "3 days")])
def test_hours_are_said_the_way_the_expiry_reason_says_them(hours: int, text: str) -> None:
    assert hours_text(hours) == text


reminders = st.builds(
    Reminders,
    first_after_minutes=st.integers(min_value=1, max_value=600),
    backoff=st.one_of(st.integers(min_value=1, max_value=10), st.floats(min_value=1, max_value=10)),
    max=st.integers(min_value=0, max_value=20),
)
expiries = st.builds(Expiry, after_hours=st.integers(min_value=1, max_value=29 * 24))


@given(reminders=reminders, expiry=expiries, suspended_ago=st.integers(min_value=0, max_value=40 * 24 * 60))
def test_the_schedule_is_ordered_bounded_and_ends_with_one_expiry_before_s3_gives_up(
    reminders: Reminders, expiry: Expiry, suspended_ago: int
) -> None:
    # given any rule and a job suspended any time ago
    suspended = POSTED - timedelta(minutes=suspended_ago)
    plan = Lifecycle(reminders=reminders, expiry=expiry, rule_name="any")

    # when
    ends = deadline(POSTED, expiry, suspended_at=suspended)
    planned = steps(POSTED, ends, plan)

    # then
    times = [s.at for s in planned]
    assert times == sorted(times)
    assert [s.kind for s in planned].count(StepKind.EXPIRE) == 1
    assert planned[-1].kind == StepKind.EXPIRE
    assert len(planned) - 1 <= reminders.max
    assert all(s.at < ends for s in planned[:-1])
    assert [s.number for s in planned[:-1]] == list(range(1, len(planned)))
    assert POSTED <= ends <= max(POSTED, suspended + SUSPENDED_JOB_LIFETIME - EXPIRY_MARGIN)
    assert ends <= POSTED + timedelta(hours=expiry.after_hours)
    # each gap is backoff times the one before
    reminded = times[:-1]
    gaps = [b - a for a, b in zip([POSTED, *reminded], reminded, strict=False)]
    for before, after in itertools.pairwise(gaps):
        assert after >= before
    assert reminder_times(POSTED, reminders)[: len(planned) - 1] == times[:-1]
