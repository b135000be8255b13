"""DecisionService: the first decision wins, once, by an approver, after a re-check of the job."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from approvals.adapters.store import AuditReader, DynamoRequestStore
from approvals.domain.authorisation import Approvers
from approvals.domain.decisions import DecisionResult, DecisionService, Outcome
from approvals.domain.ports import ChatUnavailable, JobStatusConflict, JobsUnavailable
from approvals.models.job import JobRef
from approvals.models.records import Actor, AuditEventType, RequestState
from approvals.models.slack import DecisionCommand, RefusalCommand
from sandbox.aws_local import LocalAws
from tests.fakes import FakeChat, FakeJobs, make_job, post_request

REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0001-abcdef")
ALICE = Actor(user_id="UALICE001", name="alice", team_id="T0001")
BOB = Actor(user_id="UBOB00001", name="bob", team_id="T0001")
MALLORY = Actor(user_id="UMALLORY1", name="mallory", team_id="T0001")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


class World:
    def __init__(self, local_aws: LocalAws, groups: dict[str, set[str]] | None = None) -> None:
        self.aws = local_aws
        self.jobs = FakeJobs()
        self.chat = FakeChat(groups or {"SAPPROVE1": {"UGROUPIE1"}})
        self.store = DynamoRequestStore(local_aws.client("dynamodb"), local_aws.requests_table, local_aws.audit_table)
        self.audit = AuditReader(local_aws.client("dynamodb"), local_aws.audit_table)
        self.now = NOW
        self.service = DecisionService(
            jobs=self.jobs,
            store=self.store,
            chat=self.chat,
            approvers=Approvers(frozenset({ALICE.user_id, BOB.user_id}), ("SAPPROVE1",)),
            members_of=self.chat.group_members,
            clock=lambda: self.now,
            large_job_threshold=1_000_000,
        )
        self.jobs.add(make_job(REF.job_id))
        post_request(self.store, REF, NOW, "C0APPROVALS", "1700000000.000100")

    def sort_keys(self, table: str) -> list[str]:
        items = self.aws.client("dynamodb").scan(TableName=table)["Items"]
        return sorted(item["sk"]["S"] for item in items)

    def click(
        self, actor: Actor, decision: str = "approve", reason: str | None = None, decision_id: str | None = None
    ) -> DecisionCommand:
        return DecisionCommand(
            job=REF,
            decision=decision,
            actor=actor,
            reason=reason,
            decision_id=decision_id or f"{actor.user_id}:{len(self.jobs)}",
            channel="C0APPROVALS",
            message_ts="1700000000.000100",
        )


@pytest.fixture
def world(local_aws: LocalAws) -> World:
    return World(local_aws)


def test_an_approver_approval_sets_the_job_ready_with_who_decided(world: World) -> None:
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.APPLIED
    assert world.jobs.calls_to("update_status") == [("Ready", "Approved by alice (UALICE001) via Slack")]
    stored = world.store.get(REF)
    assert stored is not None
    assert stored.state == RequestState.APPROVED
    assert stored.decider == ALICE
    assert stored.s3_status == "Ready"
    [update] = world.chat.calls_to("chat.update")
    assert update["ts"] == "1700000000.000100"
    assert not any(block["type"] == "actions" for block in update["blocks"])
    assert [r.event_type for r in world.store.history(REF)] == [AuditEventType.DECISION_TAKEN]


def test_decision_records_land_in_the_audit_table_and_none_in_the_requests_table(world: World) -> None:
    # given: a refusal, then a decision
    world.service.apply(world.click(MALLORY, decision_id="UMALLORY1:1"))
    # when
    world.service.apply(world.click(ALICE, decision_id="UALICE001:1"))
    # then
    assert world.sort_keys(world.aws.requests_table) == ["REQUEST"]
    audit_keys = world.sort_keys(world.aws.audit_table)
    assert len(audit_keys) == 2
    assert "AUDIT#UALICE001:1:taken" in audit_keys  # the decision's own key: written once, however often retried
    assert all(key.startswith("AUDIT#") for key in audit_keys)
    assert [r.event_type for r in world.audit.history(REF)] == [
        AuditEventType.DECISION_REFUSED,
        AuditEventType.DECISION_TAKEN,
    ]


def test_cancel_records_the_reason_and_the_job_ends_cancelled(world: World) -> None:
    # when
    result = world.service.apply(world.click(BOB, "cancel", reason="wrong manifest"))
    # then
    assert result.outcome == Outcome.APPLIED
    assert result.s3_status == "Cancelled"
    assert world.jobs.calls_to("update_status") == [
        ("Cancelled", "Cancelled by bob (UBOB00001) via Slack: wrong manifest")
    ]
    record = world.store.history(REF)[0]
    assert (record.action, record.reason, record.status_after) == ("cancel", "wrong manifest", "Cancelled")


def test_a_member_of_an_approver_group_may_decide(world: World) -> None:
    # given
    groupie = Actor(user_id="UGROUPIE1", name="gina")
    # when
    result = world.service.apply(world.click(groupie))
    # then
    assert result.outcome == Outcome.APPLIED
    assert world.chat.calls_to("usergroups.users.list") == [{"usergroup": "SAPPROVE1"}]


def test_a_non_approver_is_refused_told_and_audited_without_any_s3_call(world: World) -> None:
    # when
    result = world.service.apply(world.click(MALLORY))
    # then
    assert result.outcome == Outcome.NOT_AN_APPROVER
    assert world.jobs.calls_to("update_status") == []
    [notice] = world.chat.calls_to("chat.postEphemeral")
    assert notice["user"] == MALLORY.user_id
    [record] = world.store.history(REF)
    assert (record.event_type, record.actor_id) == (AuditEventType.DECISION_REFUSED, MALLORY.user_id)
    assert world.store.get(REF).state == RequestState.PENDING  # type: ignore[union-attr]


def test_a_double_click_applies_once_and_tells_the_second_click_who_decided(world: World) -> None:
    # when
    first = world.service.apply(world.click(ALICE, decision_id="UALICE001:1.1"))
    second = world.service.apply(world.click(ALICE, decision_id="UALICE001:1.2"))
    # then
    assert (first.outcome, second.outcome) == (Outcome.APPLIED, Outcome.ALREADY_DECIDED)
    assert len(world.jobs.calls_to("update_status")) == 1
    [notice] = world.chat.calls_to("chat.postEphemeral")
    assert "alice" in notice["text"]


def test_twenty_concurrent_clicks_make_exactly_one_update_job_status_call(world: World) -> None:
    # given
    actors = [ALICE, BOB] * 10
    barrier = threading.Barrier(len(actors))
    outcomes: list[Outcome] = []

    def click(i: int, actor: Actor) -> None:
        command = world.click(actor, "approve" if i % 3 else "cancel", reason="no", decision_id=f"{actor.user_id}:{i}")
        barrier.wait()
        outcomes.append(world.service.apply(command).outcome)

    threads = [threading.Thread(target=click, args=(i, a)) for i, a in enumerate(actors)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then
    assert len(world.jobs.calls_to("update_status")) == 1
    assert outcomes.count(Outcome.APPLIED) == 1
    assert outcomes.count(Outcome.ALREADY_DECIDED) == 19


def test_a_job_confirmed_outside_slack_is_not_touched_and_the_message_says_so(world: World) -> None:
    # given
    world.jobs.set_status(REF.job_id, "Ready", "confirmed with the CLI")
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.MOVED_ON
    assert world.jobs.calls_to("update_status") == []
    assert world.store.get(REF).state == RequestState.CLOSED  # type: ignore[union-attr]
    [notice] = world.chat.calls_to("chat.postEphemeral")
    assert "Ready" in notice["text"]
    [update] = world.chat.calls_to("chat.update")
    assert not any(block["type"] == "actions" for block in update["blocks"])


def test_a_job_status_exception_rereads_the_job_and_reports_its_status(world: World) -> None:
    # given: the job moves on between the re-check and the call
    original = world.jobs.update_status

    def race(ref: JobRef, requested: str, reason: str) -> str:
        world.jobs.set_status(REF.job_id, "Cancelled", "cancelled in the console")
        return original(ref, requested, reason)

    world.jobs.update_status = race  # type: ignore[method-assign]
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.MOVED_ON
    assert len(world.jobs.calls_to("describe")) == 2
    assert "Cancelled" in world.chat.calls_to("chat.postEphemeral")[0]["text"]


def test_s3_failing_after_retries_leaves_the_request_open_and_tells_the_person(world: World) -> None:
    # given
    world.jobs.fail_next("update_status", JobsUnavailable("S3 Control kept failing (TooManyRequestsException)"))
    # when
    failed = world.service.apply(world.click(ALICE, decision_id="UALICE001:a"))
    # then
    assert failed.outcome == Outcome.FAILED
    assert world.store.get(REF).state == RequestState.PENDING  # type: ignore[union-attr]
    assert "try again" in world.chat.calls_to("chat.postEphemeral")[0]["text"]
    # and a new click, a minute later, succeeds
    world.now = NOW + timedelta(minutes=1)
    assert world.service.apply(world.click(ALICE, decision_id="UALICE001:b")).outcome == Outcome.APPLIED
    events = [r.event_type for r in world.store.history(REF)]
    assert events == [AuditEventType.DECISION_FAILED, AuditEventType.DECISION_TAKEN]


def test_a_job_unknown_to_s3_is_reported_and_closed(world: World) -> None:
    # given
    del world.jobs.jobs[REF.job_id]
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.NOT_FOUND
    assert world.store.get(REF).state == RequestState.CLOSED  # type: ignore[union-attr]
    assert "not found" in world.chat.calls_to("chat.postEphemeral")[0]["text"].lower()


def test_a_decision_stuck_in_deciding_is_taken_over_after_its_lease(world: World) -> None:
    # given: a worker claimed the decision and died before calling S3
    stuck = world.click(BOB, decision_id="UBOB00001:dead")
    assert world.store.claim_decision(stuck, NOW, 120).won
    # when: someone clicks while the lease holds, then after it expired
    early = world.service.apply(world.click(ALICE, decision_id="UALICE001:early"))
    world.now = NOW + timedelta(minutes=5)
    late = world.service.apply(world.click(ALICE, decision_id="UALICE001:late"))
    # then
    assert early.outcome == Outcome.ALREADY_DECIDED
    assert late.outcome == Outcome.APPLIED
    assert len(world.jobs.calls_to("update_status")) == 1


def test_a_redelivered_decision_that_s3_already_applied_is_recorded_not_repeated(world: World) -> None:
    # given: a worker called UpdateJobStatus and died before recording it
    command = world.click(ALICE, decision_id="UALICE001:crash")
    assert world.store.claim_decision(command, NOW, 120).won
    world.jobs.set_status(REF.job_id, "Ready", "Approved by alice (UALICE001) via Slack")
    # when: the queue redelivers the same command, after its visibility timeout (past the lease)
    world.now = NOW + timedelta(minutes=6)
    result = world.service.apply(command)
    # then
    assert result.outcome == Outcome.APPLIED
    assert world.jobs.calls_to("update_status") == []
    assert world.store.get(REF).state == RequestState.APPROVED  # type: ignore[union-attr]


def test_a_message_update_failure_is_retried_and_resumes_without_a_second_decision(world: World) -> None:
    # given
    command = world.click(ALICE, decision_id="UALICE001:slack-down")
    world.chat.fail_next("chat.update")
    # when
    with pytest.raises(ChatUnavailable, match=r"chat\.update"):
        world.service.apply(command)
    resumed = world.service.apply(command)
    # then
    assert resumed.outcome == Outcome.RESUMED
    assert len(world.jobs.calls_to("update_status")) == 1
    assert len(world.chat.calls_to("chat.update")) == 1
    assert [r.event_type for r in world.store.history(REF)] == [AuditEventType.DECISION_TAKEN]


def test_nobody_may_decide_when_no_approvers_are_configured(world: World) -> None:
    # given
    world.service.approvers = Approvers(frozenset(), ())
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.NOT_AN_APPROVER


def test_the_reason_names_the_person_by_their_slack_display_name(world: World) -> None:
    # given
    world.chat.names[ALICE.user_id] = "Alice Ng"
    # when
    world.service.apply(world.click(ALICE))
    # then
    assert world.jobs.calls_to("update_status") == [("Ready", "Approved by Alice Ng (UALICE001) via Slack")]
    assert world.store.get(REF).decider.name == "Alice Ng"  # type: ignore[union-attr]


def test_the_payload_username_is_used_when_slack_cannot_say_the_display_name(world: World) -> None:
    # given
    world.chat.fail_next("users.info")
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.APPLIED
    assert world.jobs.calls_to("update_status") == [("Ready", "Approved by alice (UALICE001) via Slack")]


def test_an_invalid_request_naming_a_job_is_recorded_under_that_job_and_explained(world: World) -> None:
    # given
    refusal = RefusalCommand(reason="unknown action 'delete_bucket'", actor=MALLORY, job=REF, channel="C0APPROVALS")
    # when
    result = world.service.refuse_invalid(refusal)
    # then
    assert result.outcome == Outcome.INVALID_REQUEST
    [record] = world.store.history(REF)
    assert (record.event_type, record.actor_id, record.reason) == (
        AuditEventType.DECISION_REFUSED,
        MALLORY.user_id,
        "invalid request: unknown action 'delete_bucket'",
    )
    [notice] = world.chat.calls_to("chat.postEphemeral")
    assert notice["user"] == MALLORY.user_id
    assert "Nothing was changed" in notice["text"]
    assert world.jobs.calls == []


def test_an_invalid_request_naming_no_valid_job_is_recorded_under_its_day(world: World) -> None:
    # given
    refusal = RefusalCommand(reason="the button names no valid job", actor=MALLORY)
    # when
    world.service.refuse_invalid(refusal)
    # then
    [record] = world.audit.unattributed(NOW.strftime("%Y-%m-%d"))
    assert (record.job_id, record.actor_id) == (None, MALLORY.user_id)
    assert world.chat.calls_to("chat.postEphemeral") == []  # no channel to answer in


# -- retries, lost answers and crashed deciders ---------------------------------------------------------

THROTTLED = ClientError(
    {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
)


def test_an_update_whose_answer_was_lost_is_recorded_as_applied_not_as_outside_slack(world: World) -> None:
    # given: the first UpdateJobStatus reaches S3, its answer is lost, and the retry meets JobStatusException
    applied = world.jobs.update_status

    def applied_then_conflict(ref: JobRef, requested: str, reason: str) -> str:
        applied(ref, requested, reason)
        raise JobStatusConflict("job is Ready")

    world.jobs.update_status = applied_then_conflict  # type: ignore[method-assign]
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.APPLIED
    assert world.store.get(REF).state == RequestState.APPROVED  # type: ignore[union-attr]
    assert [r.event_type for r in world.store.history(REF)] == [AuditEventType.DECISION_TAKEN]
    assert world.chat.calls_to("chat.postEphemeral") == []


def test_s3_failing_after_an_attempt_went_through_is_recorded_as_applied(world: World) -> None:
    # given: the call is applied, then the retries give up with a 5xx
    applied = world.jobs.update_status

    def applied_then_unavailable(ref: JobRef, requested: str, reason: str) -> str:
        applied(ref, requested, reason)
        raise JobsUnavailable("S3 Control kept failing (InternalServiceException)")

    world.jobs.update_status = applied_then_unavailable  # type: ignore[method-assign]
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.APPLIED
    assert [r.event_type for r in world.store.history(REF)] == [AuditEventType.DECISION_TAKEN]


def test_the_same_click_delivered_twice_at_once_is_applied_once_refuses_nobody_and_retries_the_other(
    world: World,
) -> None:
    # given: both deliveries read the job before either updates it
    barrier = threading.Barrier(2, timeout=5)
    describe = world.jobs.describe
    waiting = {"left": 2}

    def describe_together(ref: JobRef) -> Any:
        job = describe(ref)
        if waiting["left"] > 0:
            waiting["left"] -= 1
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return job

    world.jobs.describe = describe_together  # type: ignore[method-assign]
    command = world.click(ALICE, decision_id="UALICE001:1700000000.1")
    results: list[DecisionResult] = []
    threads = [threading.Thread(target=lambda: results.append(world.service.apply(command))) for _ in range(2)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then: the delivery that found the claim held comes back later, never silently dropped
    outcomes = {r.outcome: r for r in results}
    assert set(outcomes) == {Outcome.APPLIED, Outcome.DUPLICATE}
    assert outcomes[Outcome.DUPLICATE].retry_later
    assert not outcomes[Outcome.APPLIED].retry_later
    assert len(world.jobs.calls_to("update_status")) == 1
    assert [r.event_type for r in world.store.history(REF)] == [AuditEventType.DECISION_TAKEN]
    assert world.chat.calls_to("chat.postEphemeral") == []


def test_a_takeover_after_a_decider_died_past_its_update_records_the_first_decision(world: World) -> None:
    # given: Alice's decider claimed, updated S3, and died before recording it
    alice = world.click(ALICE, decision_id="UALICE001:crash")
    assert world.store.claim_decision(alice, NOW, 120).won
    world.jobs.update_status(REF, "Ready", "Approved by alice (UALICE001) via Slack")
    # when: after the lease, Bob clicks Cancel
    world.now = NOW + timedelta(minutes=3)
    bob = world.service.apply(world.click(BOB, "cancel", reason="oops", decision_id="UBOB00001:v1"))
    # then: Alice's approval is what is recorded, and Bob is told so
    stored = world.store.get(REF)
    assert bob.outcome == Outcome.ALREADY_DECIDED
    assert stored is not None
    assert (stored.state, stored.decider, stored.decision) == (RequestState.APPROVED, ALICE, "approve")
    trail = [(r.event_type, r.actor_id) for r in world.store.history(REF)]
    assert (AuditEventType.DECISION_TAKEN, ALICE.user_id) in trail
    assert (AuditEventType.DECISION_REFUSED, BOB.user_id) in trail
    assert "alice" in world.chat.calls_to("chat.postEphemeral")[-1]["text"]
    assert len(world.jobs.calls_to("update_status")) == 1


def test_a_decision_whose_audit_write_failed_is_audited_when_redelivered(world: World) -> None:
    # given: the audit write fails once, after the decision is recorded
    put_audit = world.store.put_audit
    failures = [THROTTLED]

    def flaky(record: Any, key: str | None = None) -> None:
        if failures:
            raise failures.pop()
        put_audit(record, key)

    world.store.put_audit = flaky  # type: ignore[method-assign]
    command = world.click(ALICE, decision_id="UALICE001:audit")
    with pytest.raises(ClientError):
        world.service.apply(command)
    # when: SQS redelivers it after its visibility timeout
    world.now = NOW + timedelta(minutes=6)
    again = world.service.apply(command)
    world.service.apply(command)  # and once more, for good measure
    # then
    assert again.outcome == Outcome.RESUMED
    assert [r.event_type for r in world.store.history(REF)] == [AuditEventType.DECISION_TAKEN]
    assert len(world.jobs.calls_to("update_status")) == 1


def test_an_unreadable_approver_group_does_not_hide_the_others(world: World) -> None:
    # given: the first group was deleted in Slack
    world.service.approvers = Approvers(frozenset({ALICE.user_id}), ("SDELETED1", "SAPPROVE1"))
    gina = Actor(user_id="UGROUPIE1", name="gina")
    # when
    result = world.service.apply(world.click(gina))
    # then
    assert result.outcome == Outcome.APPLIED


def test_a_click_is_refused_for_now_when_no_group_could_be_read(world: World) -> None:
    # given
    world.service.approvers = Approvers(frozenset({ALICE.user_id}), ("SDELETED1",))
    # when
    result = world.service.apply(world.click(MALLORY))
    # then
    assert result.outcome == Outcome.NOT_AN_APPROVER
    assert world.jobs.calls == []
    assert "try again" in world.chat.calls_to("chat.postEphemeral")[-1]["text"]
    assert world.store.history(REF)[-1].reason == "approver groups could not be read"
