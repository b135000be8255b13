"""DecisionService under a policy rule: the requester never approves their own job, approval waits for the
requester as the rule says, a quorum counts each person once, a Cancel vetoes, and a rule decides itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from approvals.adapters.store import DynamoRequestStore
from approvals.domain.authorisation import Approvers
from approvals.domain.decisions import DecisionService, Outcome, policy_command
from approvals.models.job import JobRef
from approvals.models.policy import Rule
from approvals.models.records import Actor, AuditEventType, Requester, RequestState
from approvals.models.slack import DecisionCommand
from sandbox.aws_local import LocalAws
from tests.fakes import FakeChat, FakeJobs, make_job, post_request

ALICE = Actor(user_id="UALICE001", name="alice", team_id="T0001")
BOB = Actor(user_id="UBOB00001", name="bob", team_id="T0001")
CAROL = Actor(user_id="UCAROL001", name="carol", team_id="T0001")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ALICE_CREATED_IT = Requester(
    principal_arn="arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Data_0123456789abcdef/alice@example.com",
    principal_type="AssumedRole",
    slack_user_id=ALICE.user_id,
    mapped_by="email",
    found_in="event",
)


def rule(**settings: Any) -> Rule:
    return Rule.model_validate({"name": "test-rule", **settings})


class World:
    def __init__(self, local_aws: LocalAws, job_id: str) -> None:
        self.ref = JobRef(account_id="123456789012", region="us-east-1", job_id=job_id)
        self.jobs = FakeJobs()
        self.chat = FakeChat()
        self.store = DynamoRequestStore(local_aws.client("dynamodb"), local_aws.requests_table, local_aws.audit_table)
        self.now = NOW
        self.clicks = 0
        self.service = DecisionService(
            jobs=self.jobs,
            store=self.store,
            chat=self.chat,
            approvers=Approvers(frozenset({ALICE.user_id, BOB.user_id, CAROL.user_id}), ()),
            members_of=self.chat.group_members,
            clock=lambda: self.now,
            large_job_threshold=1_000_000,
        )
        self.jobs.add(make_job(job_id))

    def post(self, rule: Rule | None = None, requester: Requester | None = None) -> World:
        post_request(self.store, self.ref, self.now, rule=rule, requester=requester)
        return self

    def click(self, actor: Actor, decision: str = "approve", *, decision_id: str | None = None) -> DecisionCommand:
        self.clicks += 1
        return DecisionCommand(
            job=self.ref,
            decision=decision,
            actor=actor,
            reason="not this one" if decision == "cancel" else None,
            decision_id=decision_id or f"{actor.user_id}:{self.clicks}",
            channel="C0APPROVALS",
            message_ts="1700000000.000100",
        )

    def updates(self) -> list[tuple[Any, ...]]:
        return self.jobs.calls_to("update_status")

    def told(self, user_id: str) -> list[str]:
        return [call["text"] for call in self.chat.calls_to("chat.postEphemeral") if call["user"] == user_id]

    def audit(self) -> list[Any]:
        return self.store.history(self.ref)


@pytest.fixture
def world(local_aws: LocalAws, request: pytest.FixtureRequest) -> World:
    return World(local_aws, f"job-{abs(hash(request.node.name)) % 10**12:012d}")


# -- four eyes ----------------------------------------------------------------------------------------


def test_the_requester_cannot_approve_their_own_job_and_is_told_why(world: World) -> None:
    world.post(rule(), ALICE_CREATED_IT)
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.REQUESTER
    assert world.updates() == []
    [refused] = world.audit()
    assert refused.event_type == AuditEventType.DECISION_REFUSED
    assert refused.reason == "requester cannot approve"
    assert refused.requester_slack_id == ALICE.user_id
    assert refused.rule == "test-rule"
    assert "cannot approve" in world.told(ALICE.user_id)[0]
    stored = world.store.get(world.ref)
    assert stored is not None
    assert stored.state == RequestState.PENDING


def test_someone_else_approves_the_requesters_job(world: World) -> None:
    world.post(rule(), ALICE_CREATED_IT)
    world.service.apply(world.click(ALICE))
    # when
    result = world.service.apply(world.click(BOB))
    # then
    assert result.outcome == Outcome.APPLIED
    assert world.updates() == [("Ready", "Approved by bob (UBOB00001) via Slack")]


def test_the_requester_may_cancel_their_own_job(world: World) -> None:
    world.post(rule(), ALICE_CREATED_IT)
    result = world.service.apply(world.click(ALICE, "cancel"))
    assert result.outcome == Outcome.APPLIED
    assert world.updates() == [("Cancelled", "Cancelled by alice (UALICE001) via Slack: not this one")]


def test_a_rule_that_allows_self_approval_lets_the_requester_approve(world: World) -> None:
    world.post(rule(allow_self_approval=True), ALICE_CREATED_IT)
    result = world.service.apply(world.click(ALICE))
    assert result.outcome == Outcome.APPLIED


def test_an_unmapped_requester_refuses_nobody(world: World) -> None:
    pipeline = Requester(principal_arn="arn:aws:sts::123456789012:assumed-role/ci/run-1", found_in="history")
    world.post(rule(), pipeline)
    assert world.service.apply(world.click(ALICE)).outcome == Outcome.APPLIED


# -- waiting for the requester ------------------------------------------------------------------------


def test_approval_waits_while_the_requester_is_not_known_but_cancel_does_not(world: World) -> None:
    world.post(rule(requester_wait={"timeout_minutes": 60, "then": "allow"}))
    # when
    waiting = world.service.apply(world.click(ALICE))
    # then
    assert waiting.outcome == Outcome.WAITING_FOR_REQUESTER
    assert world.updates() == []
    assert [r.reason for r in world.audit()] == ["waiting for requester"]
    assert "who created" in world.told(ALICE.user_id)[0]
    assert world.service.apply(world.click(BOB, "cancel")).outcome == Outcome.APPLIED


def test_after_the_wait_a_rule_that_allows_lets_approval_through_and_says_so(world: World) -> None:
    world.post(rule(requester_wait={"timeout_minutes": 60, "then": "allow"}))
    world.now = NOW + timedelta(minutes=56)  # posted 5 minutes before NOW: the hour is over
    # when
    result = world.service.apply(world.click(ALICE))
    # then
    assert result.outcome == Outcome.APPLIED
    assert result.request is not None
    assert result.request.approved_without_requester
    [taken] = [r for r in world.audit() if r.event_type == AuditEventType.DECISION_TAKEN]
    assert taken.detail == "approved without knowing the requester"
    [update] = world.chat.calls_to("chat.update")
    assert "Approved without knowing who created the job" in str(update["blocks"])


def test_after_the_wait_a_rule_that_holds_keeps_holding(world: World) -> None:
    world.post(rule(requester_wait={"timeout_minutes": 1, "then": "hold"}))
    world.now = NOW + timedelta(days=2)
    assert world.service.apply(world.click(ALICE)).outcome == Outcome.WAITING_FOR_REQUESTER
    assert world.updates() == []


def test_a_request_posted_without_a_rule_is_not_held_for_its_requester(world: World) -> None:
    world.post(rule=None)
    assert world.service.apply(world.click(ALICE)).outcome == Outcome.APPLIED


# -- who may approve ----------------------------------------------------------------------------------


def test_a_rule_naming_approvers_replaces_the_deployments(world: World) -> None:
    world.post(rule(approvers={"users": [CAROL.user_id]}), ALICE_CREATED_IT)
    refused = world.service.apply(world.click(BOB))
    applied = world.service.apply(world.click(CAROL))
    assert refused.outcome == Outcome.NOT_AN_APPROVER
    assert applied.outcome == Outcome.APPLIED


# -- quorum -------------------------------------------------------------------------------------------


def test_one_vote_of_two_is_recorded_shown_and_applies_nothing(world: World) -> None:
    world.post(rule(quorum=2), ALICE_CREATED_IT)
    # when
    result = world.service.apply(world.click(BOB))
    # then
    assert result.outcome == Outcome.VOTE_RECORDED
    assert world.updates() == []
    stored = world.store.get(world.ref)
    assert stored is not None
    assert stored.state == RequestState.PENDING
    assert [a.user_id for a in stored.approvals] == [BOB.user_id]
    [vote] = world.audit()
    assert (vote.event_type, vote.reason, vote.actor_id) == (
        AuditEventType.VOTE_RECORDED,
        "1 of 2 approvals",
        BOB.user_id,
    )
    [update] = world.chat.calls_to("chat.update")
    assert "1 of 2 approvals" in str(update["blocks"])
    assert "1 of 2" in world.told(BOB.user_id)[0]


def test_the_same_person_approving_twice_counts_once(world: World) -> None:
    world.post(rule(quorum=2), ALICE_CREATED_IT)
    world.service.apply(world.click(BOB))
    # when
    again = world.service.apply(world.click(BOB))
    # then
    assert again.outcome == Outcome.ALREADY_APPROVED
    assert world.updates() == []
    stored = world.store.get(world.ref)
    assert stored is not None
    assert len(stored.approvals) == 1
    assert "already approved" in world.told(BOB.user_id)[-1]


def test_a_redelivered_vote_is_the_same_vote(world: World) -> None:
    world.post(rule(quorum=2), ALICE_CREATED_IT)
    click = world.click(BOB)
    world.service.apply(click)
    # when
    redelivered = world.service.apply(click)
    # then
    assert redelivered.outcome == Outcome.VOTE_RECORDED
    assert [r.event_type for r in world.audit()] == [AuditEventType.VOTE_RECORDED]  # keyed: written once


def test_the_second_distinct_vote_applies_once_naming_both(world: World) -> None:
    world.post(rule(quorum=2), ALICE_CREATED_IT)
    world.service.apply(world.click(BOB))
    # when
    result = world.service.apply(world.click(CAROL))
    # then
    assert result.outcome == Outcome.APPLIED
    assert world.updates() == [("Ready", "Approved by bob (UBOB00001), carol (UCAROL001) via Slack")]
    [taken] = [r for r in world.audit() if r.event_type == AuditEventType.DECISION_TAKEN]
    assert taken.approvers == [BOB.user_id, CAROL.user_id]
    late = world.service.apply(world.click(ALICE))
    assert late.outcome in (Outcome.REQUESTER, Outcome.ALREADY_DECIDED)
    assert len(world.updates()) == 1


def test_the_requester_does_not_count_towards_the_quorum(world: World) -> None:
    world.post(rule(quorum=2), ALICE_CREATED_IT)
    world.service.apply(world.click(BOB))
    assert world.service.apply(world.click(ALICE)).outcome == Outcome.REQUESTER
    assert world.updates() == []


def test_a_cancel_after_one_vote_vetoes_the_job(world: World) -> None:
    world.post(rule(quorum=2), ALICE_CREATED_IT)
    world.service.apply(world.click(BOB))
    # when
    veto = world.service.apply(world.click(CAROL, "cancel"))
    late = world.service.apply(world.click(ALICE, "approve"))
    # then
    assert veto.outcome == Outcome.APPLIED
    assert world.updates() == [("Cancelled", "Cancelled by carol (UCAROL001) via Slack: not this one")]
    assert late.refused


def test_a_met_quorum_whose_deciding_click_never_claimed_is_decided_by_a_voters_next_click(world: World) -> None:
    world.post(rule(quorum=2), ALICE_CREATED_IT)
    # given: both votes recorded, but the second vote's delivery died before claiming (dead-lettered)
    world.store.add_vote(world.ref, BOB, "UBOB00001:1", NOW)
    world.store.add_vote(world.ref, CAROL, "UCAROL001:1", NOW + timedelta(seconds=1))
    # when: Bob clicks Approve again
    result = world.service.apply(world.click(BOB))
    # then
    assert result.outcome == Outcome.APPLIED
    assert world.updates() == [("Ready", "Approved by bob (UBOB00001), carol (UCAROL001) via Slack")]


# -- decisions by the policy ------------------------------------------------------------------------


def test_a_deny_rule_cancels_the_job_once_with_its_reason_and_its_own_origin(world: World) -> None:
    deny = rule(match={"operations": ["LambdaInvoke"]}, action="deny", reason="Not on production.")
    world.post(deny)
    request = world.store.get(world.ref)
    assert request is not None
    # when: the notifier applies it, twice (a retried event)
    first = world.service.apply(policy_command(request, deny))
    second = world.service.apply(policy_command(request, deny))
    # then
    assert first.outcome == Outcome.APPLIED
    assert second.outcome in (Outcome.RESUMED, Outcome.ALREADY_DECIDED)
    assert world.updates() == [("Cancelled", "Cancelled by policy test-rule: Not on production.")]
    [taken] = [r for r in world.audit() if r.event_type == AuditEventType.DECISION_TAKEN]
    assert taken.origin == "system:policy"
    assert taken.rule == "test-rule"
    assert world.chat.calls_to("chat.postEphemeral") == []  # nobody clicked: nobody is told
    shown = world.chat.calls_to("chat.update")  # the retry makes sure the message says it too
    assert shown
    assert all("Cancelled by policy rule" in str(update["blocks"]) for update in shown)


def test_an_approve_rule_confirms_the_job_without_a_person(world: World) -> None:
    approve = rule(match={"buckets": ["acme-scratch-*"]}, action="approve")
    world.post(approve)
    request = world.store.get(world.ref)
    assert request is not None
    result = world.service.apply(policy_command(request, approve))
    assert result.outcome == Outcome.APPLIED
    assert world.updates() == [("Ready", "Approved by policy test-rule")]


def test_a_vote_beside_the_quorum_that_wins_the_claim_decides_in_the_counted_voters_names(world: World) -> None:
    # given: Bob has voted; Carol's vote meets the quorum, but before Carol's delivery claims, Alice's vote
    # (a third, in another decider run at the same moment) is recorded and her delivery claims first
    pipeline = Requester(principal_arn="arn:aws:sts::123456789012:assumed-role/ci/run-1", found_in="event")
    world.post(rule(quorum=2), pipeline)
    world.service.apply(world.click(BOB))
    claim = world.store.claim_decision
    results: dict[str, Outcome] = {}

    def alice_first(command: DecisionCommand, *args: Any, **kwargs: Any) -> Any:
        if command.actor == CAROL:
            world.store.claim_decision = claim  # type: ignore[method-assign]
            world.now += timedelta(seconds=1)
            results["alice"] = world.service.apply(world.click(ALICE)).outcome
        return claim(command, *args, **kwargs)

    world.store.claim_decision = alice_first  # type: ignore[method-assign]
    world.now += timedelta(seconds=1)
    # when
    results["carol"] = world.service.apply(world.click(CAROL)).outcome
    # then: one call, naming the two counted votes; the decider on record is the last of them; Carol's vote
    # was part of the decision, so she is not refused
    assert results == {"alice": Outcome.APPLIED, "carol": Outcome.RESUMED}
    assert world.updates() == [("Ready", "Approved by bob (UBOB00001), carol (UCAROL001) via Slack")]
    [taken] = [r for r in world.audit() if r.event_type == AuditEventType.DECISION_TAKEN]
    assert (taken.actor_id, taken.approvers) == (CAROL.user_id, [BOB.user_id, CAROL.user_id])
    assert not [r for r in world.audit() if r.event_type == AuditEventType.DECISION_REFUSED]
    # and Carol's click, whose delivery lost the claim, left its trace all the same: her vote, once
    voted = [(r.actor_id, r.reason) for r in world.audit() if r.event_type == AuditEventType.VOTE_RECORDED]
    assert voted == [
        (BOB.user_id, "1 of 2 approvals"),
        (CAROL.user_id, "counted in the decision another click claimed"),
    ]
    stored = world.store.get(world.ref)
    assert stored is not None
    assert [a.user_id for a in stored.approvals] == [BOB.user_id, CAROL.user_id]


# -- what the review found --------------------------------------------------------------------------


def test_nobody_approves_a_job_its_rule_denies_even_while_the_policys_cancel_has_not_landed(world: World) -> None:
    world.post(rule(match={"operations": ["LambdaInvoke"]}, action="deny", reason="Not on production."))
    result = world.service.apply(world.click(BOB))
    assert result.outcome == Outcome.DENIED_BY_POLICY
    assert world.updates() == []
    assert "forbidden by policy rule" in world.told(BOB.user_id)[0]


def test_a_vote_cast_before_its_voter_was_learnt_to_be_the_creator_never_counts(world: World) -> None:
    # given: Alice votes while nobody knows she created the job (the rule allows approval after the wait)
    world.post(rule(quorum=2, requester_wait={"timeout_minutes": 0, "then": "allow"}))
    assert world.service.apply(world.click(ALICE)).outcome == Outcome.VOTE_RECORDED
    # when: CloudTrail says she created it, and Bob votes
    assert world.store.set_requester(world.ref, ALICE_CREATED_IT, rule(quorum=2)) is not None
    result = world.service.apply(world.click(BOB))
    # then: one counted vote of two; nothing applied
    assert result.outcome == Outcome.VOTE_RECORDED
    assert world.updates() == []
    stored = world.store.get(world.ref)
    assert stored is not None
    assert [a.user_id for a in stored.approvals] == [BOB.user_id]


def test_the_creator_learnt_between_the_check_and_the_vote_is_refused_by_the_vote_itself(world: World) -> None:
    world.post(rule(quorum=2, requester_wait={"timeout_minutes": 0, "then": "allow"}))
    world.store.set_requester(world.ref, ALICE_CREATED_IT, None)  # lands after the click was checked
    counted, _ = world.store.add_vote(world.ref, ALICE, "UALICE001:9", NOW)
    assert counted == "requester"


def test_votes_of_people_a_new_rule_no_longer_admits_do_not_count(world: World) -> None:
    # given: Alice votes under the default approvers; then the creator is learnt and a rule naming only
    # Bob and Carol applies
    world.post(rule(quorum=2, requester_wait={"timeout_minutes": 0, "then": "allow"}))
    world.service.apply(world.click(ALICE))
    pipeline = Requester(principal_arn="arn:aws:sts::123456789012:assumed-role/ci/run-1", found_in="event")
    world.store.set_requester(world.ref, pipeline, rule(quorum=2, approvers={"users": [BOB.user_id, CAROL.user_id]}))
    # when
    result = world.service.apply(world.click(BOB))
    # then: Bob's is the only counted vote
    assert result.outcome == Outcome.VOTE_RECORDED
    assert world.updates() == []


def test_recovering_a_stuck_policy_decision_keeps_its_origin_and_records_it(world: World) -> None:
    deny = rule(match={"operations": ["LambdaInvoke"]}, action="deny", reason="Not on production.")
    world.post(deny)
    request = world.store.get(world.ref)
    assert request is not None
    command = policy_command(request, deny)
    # given: the notifier claimed, S3 cancelled the job, and the notifier died before recording it
    assert world.store.claim_decision(command, NOW, 120).won
    world.jobs.update_status(world.ref, "Cancelled", "Cancelled by policy test-rule: Not on production.")
    stuck = world.store.get(world.ref)
    assert stuck is not None
    world.now = NOW + timedelta(minutes=40)
    # when
    result = world.service.recover(stuck)
    # then
    assert result.outcome == Outcome.APPLIED
    [taken] = [r for r in world.audit() if r.event_type == AuditEventType.DECISION_TAKEN]
    assert taken.origin == "system:policy"
    assert world.chat.calls_to("chat.postEphemeral") == []
