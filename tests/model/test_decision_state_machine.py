"""Any interleaving of clicks, SQS redeliveries, crashes, lost answers, time and reconciliation: one decision.

A Hypothesis state machine drives the real ``DecisionService`` over ``DynamoRequestStore`` on moto, with
``FakeJobs`` and ``FakeChat``, a clock it moves itself, and a model of SQS: every click is a message in
flight, received again after the visibility timeout while its handling fails (an exception, a crash, a
delivery that must come back later) and dead-lettered on the 5th failed receive; any message may also be
delivered again at any time (SQS delivers at least once). After every step:

- S3 changed the job at most once (one Ready or Cancelled, ever);
- the request record never went back: approved, cancelled and closed are final, and a claim is only
  taken from pending or from a claim held past its lease;
- a record that says approved or cancelled is what S3 carries, by the same person; an open one's job waits;
- there is at most one decision_taken record, and only for a decision the job carries;
- once nothing is in flight and a reconciliation has run past the lease, nothing is left deciding, and
  the decision S3 carries has exactly one decision_taken record.

The budget follows HYPOTHESIS_PROFILE, with the profile names of tests/property/conftest.py: ``dev``,
``ci`` (the default) and ``deep``. Each example costs a few hundred DynamoDB calls, so this machine runs
fewer examples than the property tests do.

A decider dies right after its claim or right after UpdateJobStatus, never right after recording (before
its audit record), and never right after taking over the claim of one that died after UpdateJobStatus: both
break the product today. They and two more interleavings the machine found are below it, as examples that
fail until the product is fixed.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from approvals.domain.decisions import AFTER_APPROVE, AFTER_CANCEL, Outcome
from approvals.domain.reasons import recorded_by
from approvals.models.records import Actor, ApprovalRequest, AuditEventType, AuditRecord, DecisionKind, RequestState
from approvals.models.slack import DecisionCommand
from approvals.names import METRIC_DECISION_UNVERIFIED
from approvals.observability import metrics
from tests.model.harness import (
    ALICE,
    BOB,
    GINA,
    LEASE,
    MALLORY,
    MAX_RECEIVES,
    STUCK_AFTER,
    VISIBILITY,
    Backend,
    Crash,
    Fault,
    Message,
    QueueModel,
    World,
    decision_problems,
    machine_budget,
    machine_settings,
    stale,
    stuck,
)

FINAL = frozenset({RequestState.APPROVED, RequestState.CANCELLED, RequestState.CLOSED})
AFTER = {"approve": AFTER_APPROVE, "cancel": AFTER_CANCEL}

# (max_examples, stateful_step_count) per profile.
# Decisions are taken early in a run, so short runs and more of them explore more.
BUDGETS = {"dev": (10, 15), "ci": (40, 15), "deep": (400, 25)}


EXAMPLES, STEPS, TIMEOUT = machine_budget(BUDGETS)


class Decisions(QueueModel, RuleBasedStateMachine):
    def __init__(self, backend: Backend) -> None:
        super().__init__()
        metrics.clear_metrics()
        self.world = World(backend, watch_claims=True)
        self.world.post_request()
        self.in_flight: list[Message] = []
        self.sent: list[DecisionCommand] = []
        self.surprises: list[str] = []  # exceptions no injected fault explains
        self.seen = self._record()
        self.settled = False  # nothing in flight, and a reconciliation ran past the lease of any claim

    # -- the world ------------------------------------------------------------------------------

    # -- rules ----------------------------------------------------------------------------------

    @rule(actor=st.sampled_from([ALICE, BOB, GINA, MALLORY]), decision=st.sampled_from(["approve", "cancel"]))
    def click(self, actor: Actor, decision: DecisionKind) -> None:
        command = self.world.command(actor, decision)
        self.sent.append(command)
        self.in_flight.append(Message(command, visible_at=self.world.clock()))
        self.settled = False

    @precondition(lambda self: self._visible())
    @rule(pick=st.integers(min_value=0))
    def deliver(self, pick: int) -> None:
        visible = self._visible()
        self._receive(visible[pick % len(visible)])

    @precondition(lambda self: self.sent)
    @rule(pick=st.integers(min_value=0))
    def deliver_a_copy(self, pick: int) -> None:
        """SQS delivers a message again (in flight or long done); the original is unaffected."""
        self.settled = False
        self._apply(self.sent[pick % len(self.sent)])

    @precondition(lambda self: self._visible())
    @rule(pick=st.integers(min_value=0), after=st.sampled_from(["claim", "update_status"]))
    def holder_crashes(self, pick: int, after: str) -> None:
        """The decider dies right after its claim, or right after UpdateJobStatus went through.

        Not right after a claim taken over from a holder whose UpdateJobStatus went through: that breaks the
        product today (test_a_decision_s3_carries_survives_a_second_decider_dying_after_taking_over_its_claim).
        """
        message = self._visible()[pick % len(self._visible())]
        if after == "claim" and self.world.jobs.changes and self._record().state == RequestState.DECIDING:
            self._receive(message)
            return
        with self.world.faults.within(after, Fault.CRASH):
            self._receive(message)

    @precondition(lambda self: self._visible())
    @rule(pick=st.integers(min_value=0), fault=st.sampled_from([Fault.ANSWER_LOST, Fault.RETRIED]))
    def update_answer_lost(self, pick: int, fault: Fault) -> None:
        """UpdateJobStatus went through, but the decider hears JobsUnavailable (every retry's answer lost
        too) or JobStatusConflict (botocore's retry of the same call)."""
        visible = self._visible()
        with self.world.faults.within("update_status", fault):
            self._receive(visible[pick % len(visible)])

    @precondition(lambda self: self.in_flight)
    @rule(pick=st.integers(min_value=0))
    def receives_run_out(self, pick: int) -> None:
        """Every receive left to a message dies before the decider acts (a cold start that cannot finish):
        a visibility timeout each, then the dead-letter queue. Only the reconciliation is left to finish
        what the message's last holder started."""
        self.settled = False
        message = self.in_flight.pop(pick % len(self.in_flight))
        self.world.clock.advance((MAX_RECEIVES - message.receives) * VISIBILITY)
        self.world.dead_letters.append(message.command.decision_id)

    @rule(seconds=st.sampled_from([1, LEASE + 1, VISIBILITY + 1, STUCK_AFTER + 1]))
    def time_passes(self, seconds: int) -> None:
        self.world.clock.advance(seconds)

    @rule()
    def reconciliation(self) -> None:
        before = self._record()
        run = self.world.reconcile_decisions()
        if run.gave_up:
            self.surprises.extend(run.errors)
        after = self._record()
        was_stuck = before.state == RequestState.DECIDING and stuck(before, self.world.clock())
        if was_stuck:
            assert after.state != RequestState.DECIDING or after.deciding_since != before.deciding_since, (
                "the reconciliation left a stale claim as it was"
            )
        self.settled = not self.in_flight and (before.state != RequestState.DECIDING or was_stuck)

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def one_decision_at_most_recorded_as_s3_carries_it(self) -> None:
        """All the invariants, on one read of the record and the audit per step (each read is a request)."""
        request = self._record()
        taken = [r for r in self.world.records.history(self.world.ref) if r.event_type == AuditEventType.DECISION_TAKEN]
        self.nothing_raised_that_no_fault_explains()
        self.s3_changed_the_job_at_most_once()
        self.the_record_never_goes_back(request)
        self.the_record_says_what_s3_carries(request)
        self.decision_taken_is_written_once_and_only_for_what_s3_carries(request, taken)

    def nothing_raised_that_no_fault_explains(self) -> None:
        assert self.surprises == []

    def s3_changed_the_job_at_most_once(self) -> None:
        changes = self.world.jobs.changes
        assert len(changes) <= 1, f"UpdateJobStatus changed the job {len(changes)} times: {changes}"

    def the_record_never_goes_back(self, now: ApprovalRequest) -> None:
        before, self.seen = self.seen, now
        if before.state in FINAL:
            assert (now.state, now.decision_id, now.decider) == (before.state, before.decision_id, before.decider)
        for taken_from, at, _ in self.world.store.claims:
            assert taken_from is not None
            assert taken_from.state in {RequestState.PENDING, RequestState.DECIDING}, f"claimed from {taken_from.state}"
            if taken_from.state == RequestState.DECIDING:
                assert stale(taken_from, at), "a claim held within its lease was taken over"
        self.world.store.claims.clear()

    def the_record_says_what_s3_carries(self, request: ApprovalRequest) -> None:
        job = self.world.jobs.fake.jobs[self.world.ref.job_id]
        if request.state in {RequestState.APPROVED, RequestState.CANCELLED}:
            assert request.decision
            assert request.decider
            assert job.status in AFTER[request.decision]
            assert recorded_by(job.status_update_reason, request.decision, request.decider)
        if request.state == RequestState.PENDING:
            assert job.awaiting_confirmation, f"the request is open, but the job is {job.status}"

    def decision_taken_is_written_once_and_only_for_what_s3_carries(
        self, request: ApprovalRequest, taken: list[AuditRecord]
    ) -> None:
        assert len(taken) <= 1, f"{len(taken)} decision_taken records"
        job = self.world.jobs.fake.jobs[self.world.ref.job_id]
        for record in taken:
            assert record.action
            assert record.actor_id
            assert record.actor_name
            actor = Actor(user_id=record.actor_id, name=record.actor_name)
            assert job.status in AFTER[record.action]
            assert recorded_by(job.status_update_reason, record.action, actor)
            assert request.state in {RequestState.APPROVED, RequestState.CANCELLED}
            assert (request.decision, request.decider and request.decider.user_id) == (record.action, actor.user_id)
        if self.settled:
            assert request.state != RequestState.DECIDING, "left deciding with nothing in flight, after reconciling"
            if self.world.jobs.changes:
                assert len(taken) == 1, "S3 carries a decision that no decision_taken record names"

    # -- the end --------------------------------------------------------------------------------

    def teardown(self) -> None:
        """SQS delivers what is left (nothing fails any more), then the reconciliation runs once no click can come back:
        the invariants must then hold settled."""
        while self.in_flight:
            message = min(self.in_flight, key=lambda m: m.visible_at)
            self.world.clock.now = max(self.world.clock(), message.visible_at)
            self._receive(message)
        self.time_passes(STUCK_AFTER + 1)
        self.reconciliation()
        self.one_decision_at_most_recorded_as_s3_carries_it()
        metrics.clear_metrics()


@pytest.mark.timeout(TIMEOUT)
def test_any_interleaving_of_clicks_crashes_redeliveries_and_reconciliation_makes_one_decision(
    backend: Backend,
) -> None:
    run_state_machine_as_test(lambda: Decisions(backend), settings=machine_settings(EXAMPLES, STEPS))


# -- interleavings this machine found, each once a bug, now regressions ------------------------------------
#
# - a decider dying between recording a decision and writing decision_taken, its message dead-lettered: the
#   claim now stays in the DecidingIndex until the audit record and the message are done (settle_decision),
#   so the reconciliation finishes them;
# - the reconciliation reopening a claim whose click SQS still redelivers: it now waits until every receive
#   is used (infra.constants.decision_stuck_after);
# - UpdateJobStatus's answer lost and the read after it failing: the delivery now comes back later instead of
#   reopening a request whose job may be Ready;
# - a second takeover overwriting whose decision S3 carries: the decider is now read from the reason's
#   anchored head (reasons.decider_of).


def test_a_decision_recorded_by_a_decider_that_died_is_audited_though_its_message_is_dead_lettered(
    backend: Backend,
) -> None:
    # given: Alice's approval went through and was recorded, then the decider died before the audit record
    world = World(backend)
    world.post_request()
    click = world.click(ALICE)
    with world.faults.within("record", Fault.CRASH), pytest.raises(Crash):
        world.handle_record(click)
    # when: its 4 redeliveries die before acting (a cold start that cannot finish), the reconciliation runs,
    # and the next morning someone redrives the dead-lettered click
    world.clock.advance(STUCK_AFTER + 1)
    world.dead_letters.append(click)
    world.reconcile_decisions()
    world.clock.advance(16 * 3600)
    world.faults.new_invocation()
    redriven = world.handle_record(world.dead_letters.pop())
    # then: the redrive is refused, and the approval S3 carries must still have its record
    seen = world.observe()
    assert redriven.outcome == Outcome.UNVERIFIED
    assert METRIC_DECISION_UNVERIFIED in seen.metrics
    assert seen.request is not None
    assert seen.request.state == RequestState.APPROVED
    assert len(seen.taken()) == 1


def test_the_reconciliation_leaves_a_claim_alone_while_its_click_can_still_come_back_from_the_queue(
    backend: Backend,
) -> None:
    # given: the decider died right after claiming Alice's approval
    world = World(backend)
    world.post_request()
    command = world.command(ALICE)
    with world.faults.within("claim", Fault.CRASH), pytest.raises(Crash):
        world.decisions.apply(command)
    # when: the reconciliation runs once the lease is over, and SQS redelivers the click after its visibility timeout
    world.clock.advance(LEASE + 1)
    world.reconcile_decisions()
    world.clock.advance(VISIBILITY - LEASE - 1)
    world.faults.new_invocation()
    world.decisions.apply(command)
    # then: the reconciliation told Alice nothing (her click was still on its way), and the redelivery applied it
    seen = world.observe()
    told = [e["text"] for e in seen.ephemerals if e["user"] == ALICE.user_id]
    assert not any("Nothing was changed" in text for text in told)
    assert seen.request is not None
    assert seen.request.state == RequestState.APPROVED
    assert len(seen.taken()) == 1


def test_an_approval_whose_answer_was_lost_is_not_reopened_when_s3_cannot_be_read_right_after(
    backend: Backend,
) -> None:
    # given: UpdateJobStatus goes through but its answer is lost, and the read after it fails
    # (the re-check before acting answers: the job waits)
    world = World(backend)
    world.post_request()
    world.faults.inject("update_status", Fault.ANSWER_LOST)
    world.faults.inject("describe", Fault.THROTTLED, skip=1)
    # when
    world.deliver(world.click(ALICE))
    world.clock.advance(LEASE + 1)
    world.reconcile_decisions()
    # then
    assert decision_problems(world.observe(), moved_on=False) == []


def test_a_decision_s3_carries_survives_a_second_decider_dying_after_taking_over_its_claim(backend: Backend) -> None:
    # given: Alice's decider died right after UpdateJobStatus went through; after the lease, Gina's click took
    # the claim over and her decider died right after claiming
    world = World(backend)
    world.post_request()
    alice, gina = world.command(ALICE), world.command(GINA)
    with world.faults.within("update_status", Fault.CRASH), pytest.raises(Crash):
        world.decisions.apply(alice)
    world.clock.advance(LEASE + 1)
    world.faults.new_invocation()
    with world.faults.within("claim", Fault.CRASH), pytest.raises(Crash):
        world.decisions.apply(gina)
    # when: the reconciliation runs past the lease, then SQS redelivers both clicks
    world.clock.advance(LEASE + 1)
    world.reconcile_decisions()
    world.clock.advance(VISIBILITY)
    for command in (alice, gina):
        world.faults.new_invocation()
        world.decisions.apply(command)
    # then: the record and the audit say what S3 carries, Alice's approval
    seen = world.observe()
    assert seen.request is not None
    assert (seen.request.state, seen.request.decider) == (RequestState.APPROVED, ALICE)
    assert [(r.actor_id, r.action) for r in seen.taken()] == [(ALICE.user_id, "approve")]
