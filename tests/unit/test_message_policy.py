"""What the request says about four eyes, the quorum and the policy: who asked, the rule, progress, outcomes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from approvals.domain.message import (
    SlackMessage,
    already_decided_text,
    notice_already_approved,
    notice_requester_cannot_approve,
    notice_vote_recorded,
    notice_waiting_for_requester,
    render_request,
    requester_wait_ends,
    slack_len,
    validate_message,
)
from approvals.models.job import Job, JobRef
from approvals.models.policy import Approvers, RequesterWait, Rule
from approvals.models.records import Actor, ApprovalRequest, Requester, RequestState
from tests.helpers import load_event

THRESHOLD = 1_000_000
REQUESTED_AT = datetime(2025, 3, 14, 9, 32, tzinfo=UTC)
DECIDED_AT = datetime(2025, 3, 14, 11, 2, 33, tzinfo=UTC)
SSO_ARN = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DataEng_0123456789abcdef/bob@example.com"
BOB = Requester(principal_arn=SSO_ARN, principal_type="AssumedRole", slack_user_id="U0BOB0001", found_in="event")
ALICE = Actor(user_id="U0ALICE01", name="alice")
GINA = Actor(user_id="U0GINA001", name="gina")
TWO_OF_THREE = Rule(
    name="large-copies",
    quorum=2,
    approvers=Approvers(users=["U0ALICE01", "U0GINA001", "U0BOB0001"], groups=["S0DATAPLAT"]),
)


# -- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def tagging() -> tuple[Job, JobRef]:
    job = Job.model_validate(load_event("describe_job_tagging")["Job"])
    return job, JobRef(account_id="111122223333", region="eu-west-1", job_id=job.job_id)


def pending(ref: JobRef, **changes: Any) -> ApprovalRequest:
    return ApprovalRequest(job=ref, state=RequestState.PENDING, requested_at=REQUESTED_AT, **changes)


def text_of(msg: SlackMessage, block_id: str) -> str:
    return str(next(b for b in msg.blocks if b.get("block_id") == block_id)["text"]["text"])


def block_ids(msg: SlackMessage) -> list[str | None]:
    return [b.get("block_id") for b in msg.blocks]


def texts(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def live_markup(msg: SlackMessage) -> set[str]:
    """Every <…> Slack would act on, apart from the console link."""
    found = {markup for text in texts(msg.blocks) for markup in re.findall(r"<[^>]*>", text)}
    return {markup for markup in found if not markup.endswith("|Open in the S3 console>")}


def assert_slack_accepts(msg: SlackMessage) -> None:
    validate_message(msg)
    for raw in msg.blocks:
        parsed = Block.parse(raw)
        assert parsed is not None, raw
        parsed.to_dict()


def decided(job: Job, status: str) -> Job:
    return job.model_copy(update={"status": status})


# -- who asked ------------------------------------------------------------------------------------


def test_a_mapped_requester_is_mentioned_and_their_principal_shown_near_the_top(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    msg = render_request(job, ref, pending(ref, requester=BOB, rule=TWO_OF_THREE), THRESHOLD)
    # then
    assert text_of(msg, "requester") == f"*Requested by:* <@U0BOB0001> · `{SSO_ARN}`"
    assert block_ids(msg).index("requester") < block_ids(msg).index("details")
    assert_slack_accepts(msg)


def test_an_unmapped_requester_is_shown_by_principal_alone(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    role = Requester(principal_arn="arn:aws:iam::111122223333:user/ci-deployer", found_in="history")
    # when
    msg = render_request(job, ref, pending(ref, requester=role, rule=TWO_OF_THREE), THRESHOLD)
    # then
    assert text_of(msg, "requester") == (
        "*Requested by:* `arn:aws:iam::111122223333:user/ci-deployer` (no Slack user mapped)"
    )
    assert "<@" not in text_of(msg, "requester")


def test_an_unknown_requester_is_being_looked_up_and_approval_holds_until_a_time(tagging: tuple[Job, JobRef]) -> None:
    # given: the default requester wait (60 minutes, then keep holding)
    job, ref = tagging
    # when
    msg = render_request(job, ref, pending(ref, rule=TWO_OF_THREE), THRESHOLD)
    # then
    assert text_of(msg, "requester") == (
        "*Requested by:* 🔎 Looking up who created this job in CloudTrail…\n"
        "⏳ Approval waits until we know who created this job, until 14 Mar 2025 10:32 UTC: "
        "then it keeps waiting; Cancel works at any time."
    )


def test_a_rule_that_allows_after_the_wait_says_so(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    rule = Rule(name="default", requester_wait=RequesterWait(timeout_minutes=15, then="allow"))
    request = pending(ref, rule=rule)
    # when
    msg = render_request(job, ref, request, THRESHOLD)
    # then
    assert requester_wait_ends(request) == datetime(2025, 3, 14, 9, 47, tzinfo=UTC)
    assert text_of(msg, "requester").endswith(
        "Approval waits until we know who created this job, until 14 Mar 2025 09:47 UTC: then any approver may approve."
    )


def test_no_wait_and_allow_means_approval_does_not_wait(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    rule = Rule(name="default", requester_wait=RequesterWait(timeout_minutes=0, then="allow"))
    # when
    msg = render_request(job, ref, pending(ref, rule=rule), THRESHOLD)
    # then
    assert "does not wait to learn who created this job: any approver may approve" in text_of(msg, "requester")
    assert "⏳" not in text_of(msg, "requester")


def test_self_approval_allowed_means_nothing_to_wait_for(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    rule = Rule(name="sandbox", allow_self_approval=True, match={"accounts": ["111122223333"]})
    # when
    msg = render_request(job, ref, pending(ref, rule=rule), THRESHOLD)
    # then
    assert text_of(msg, "requester") == "*Requested by:* 🔎 Looking up who created this job in CloudTrail…"


def test_a_decided_job_whose_requester_never_came_says_not_known(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    done = pending(ref, rule=TWO_OF_THREE, decider=ALICE, decided_at=DECIDED_AT).model_copy(
        update={"state": RequestState.CANCELLED}
    )
    # when
    msg = render_request(decided(job, "Cancelled"), ref, done, THRESHOLD)
    # then
    assert text_of(msg, "requester").startswith("*Requested by:* not known")
    assert "waits" not in text_of(msg, "requester")


def test_without_a_request_record_nothing_is_said_about_requester_or_rule(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then
    assert "requester" not in block_ids(msg)
    assert "policy" not in block_ids(msg)


# -- the rule -------------------------------------------------------------------------------------


def test_the_rule_says_how_many_approvals_from_whom(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    msg = render_request(job, ref, pending(ref, requester=BOB, rule=TWO_OF_THREE), THRESHOLD)
    # then
    assert text_of(msg, "policy").split("\n")[0] == (
        "Policy rule `large-copies`: needs 2 approvals from <@U0ALICE01>, <@U0GINA001>, <@U0BOB0001>, "
        "<!subteam^S0DATAPLAT>"
    )


def test_a_default_rule_names_the_deployments_approvers_and_one_approval(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    msg = render_request(job, ref, pending(ref, requester=BOB, rule=Rule(name="default")), THRESHOLD)
    # then
    assert text_of(msg, "policy") == "Policy rule `default`: needs 1 approval from the deployment's approvers"


def test_self_approval_is_mentioned_only_when_the_rule_allows_it(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    rule = Rule(name="sandbox", allow_self_approval=True, reason="sandbox <!here> *accounts*")
    # when
    msg = render_request(job, ref, pending(ref, requester=BOB, rule=rule), THRESHOLD)
    # then
    assert text_of(msg, "policy") == (
        "Policy rule `sandbox`: needs 1 approval from the deployment's approvers · the requester may approve\n"
        "Rule's reason: sandbox &lt;!here&gt; *accounts*"
    )


def test_no_rule_no_policy_block(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    msg = render_request(job, ref, pending(ref, requester=BOB), THRESHOLD)
    # then
    assert "policy" not in block_ids(msg)
    assert "requester" in block_ids(msg)


# -- quorum progress ------------------------------------------------------------------------------


def test_no_votes_yet(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    msg = render_request(job, ref, pending(ref, requester=BOB, rule=TWO_OF_THREE), THRESHOLD)
    # then
    assert text_of(msg, "policy").split("\n")[-1] == "0 of 2 approvals yet"


def test_one_vote_of_two_shows_who_and_who_else_may_approve(tagging: tuple[Job, JobRef]) -> None:
    # given: Alice voted; Bob created the job, so he is not among those still awaited
    job, ref = tagging
    # when
    msg = render_request(job, ref, pending(ref, requester=BOB, rule=TWO_OF_THREE, approvals=(ALICE,)), THRESHOLD)
    # then
    assert text_of(msg, "policy").split("\n")[-1] == (
        "1 of 2 approvals: <@U0ALICE01> ✅ · waiting for 1 more from <@U0GINA001>, <!subteam^S0DATAPLAT>"
    )


def test_a_quorum_of_one_or_a_decided_job_shows_no_progress(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    one = pending(ref, requester=BOB, rule=Rule(name="default"))
    done = pending(ref, requester=BOB, rule=TWO_OF_THREE, approvals=(ALICE, GINA), decider=GINA).model_copy(
        update={"state": RequestState.APPROVED}
    )
    # then
    assert "approvals yet" not in text_of(render_request(job, ref, one, THRESHOLD), "policy")
    assert "of 2 approvals" not in text_of(render_request(decided(job, "Ready"), ref, done, THRESHOLD), "policy")


# -- outcomes -------------------------------------------------------------------------------------


def test_a_quorum_approval_names_every_approver(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    done = pending(
        ref, requester=BOB, rule=TWO_OF_THREE, approvals=(ALICE, GINA), decider=GINA, decided_at=DECIDED_AT
    ).model_copy(update={"state": RequestState.APPROVED, "s3_status": "Ready"})
    # when
    msg = render_request(decided(job, "Ready"), ref, done, THRESHOLD)
    # then
    assert text_of(msg, "outcome") == (
        "*Decision:* ✅ Approved\n*By:* <@U0ALICE01> (alice), <@U0GINA001> (gina)\n"
        "*When:* 14 Mar 2025 11:02:33 UTC\n*S3 status at the decision:* Ready"
    )
    assert msg.text.startswith(f"S3 Batch Operations job {ref.job_id}: Approved by alice, gina.")
    assert "approved by <@U0ALICE01> (alice), <@U0GINA001> (gina)" in already_decided_text(done)


def test_an_approval_by_policy_names_the_rule_and_no_person(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    rule = Rule(name="sandbox-tags", action="approve", match={"accounts": ["111122223333"]})
    done = pending(ref, rule=rule, decided_at=DECIDED_AT).model_copy(
        update={"state": RequestState.APPROVED, "decision_origin": "system:policy"}
    )
    # when
    msg = render_request(decided(job, "Ready"), ref, done, THRESHOLD)
    # then
    assert text_of(msg, "outcome").split("\n")[0] == "*Decision:* ✅ Approved by policy rule `sandbox-tags`"
    assert "*By:*" not in text_of(msg, "outcome")
    assert "Approved by policy rule sandbox-tags." in msg.text
    assert "approved by policy rule `sandbox-tags`" in already_decided_text(done)


def test_a_cancellation_by_policy_gives_the_rules_reason_escaped(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    rule = Rule(
        name="no-lambda-prod", action="deny", reason="LambdaInvoke on <!channel> prod", match={"regions": ["eu-west-1"]}
    )
    done = pending(ref, rule=rule, decision_reason=rule.reason, decided_at=DECIDED_AT).model_copy(
        update={"state": RequestState.CANCELLED, "decision_origin": "system:policy"}
    )
    # when
    msg = render_request(decided(job, "Cancelled"), ref, done, THRESHOLD)
    # then
    outcome = text_of(msg, "outcome")
    assert outcome.split("\n")[0] == (
        "*Decision:* 🛑 Cancelled by policy rule `no-lambda-prod`: LambdaInvoke on &lt;!channel&gt; prod"
    )
    assert "*Reason:*" not in outcome  # said once, on the decision line
    assert text_of(msg, "policy").startswith("Policy rule `no-lambda-prod`: cancels jobs like this one")
    assert live_markup(msg) == set()


def test_a_policy_decision_without_the_rule_on_record_reads_the_rule_from_the_status_reason(
    tagging: tuple[Job, JobRef],
) -> None:
    # given
    job, ref = tagging
    done = pending(ref, status_update_reason="Cancelled by policy no-lambda-prod: forbidden").model_copy(
        update={"state": RequestState.CANCELLED, "decision_origin": "system:policy"}
    )
    # when
    msg = render_request(decided(job, "Cancelled"), ref, done, THRESHOLD)
    # then
    assert text_of(msg, "outcome").startswith("*Decision:* 🛑 Cancelled by policy rule `no-lambda-prod`")


def test_an_approval_without_the_requester_is_warned(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    rule = Rule(name="default", requester_wait=RequesterWait(timeout_minutes=30, then="allow"))
    done = pending(ref, rule=rule, decider=ALICE, approved_without_requester=True).model_copy(
        update={"state": RequestState.APPROVED}
    )
    # when
    msg = render_request(decided(job, "Ready"), ref, done, THRESHOLD)
    # then
    assert text_of(msg, "outcome").split("\n")[-1] == (
        "⚠️ Approved without knowing who created the job: the requester wait of 30 min ran out "
        "and rule `default` allows it"
    )


# -- hostile input and limits ---------------------------------------------------------------------


def test_a_hostile_principal_arn_and_names_cannot_ping_or_format(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    arn = "arn:aws:sts::111122223333:assumed-role/x/<!channel>*bold*`tick`\n<@U0ADMIN01>"
    hostile = Requester(principal_arn=arn, slack_user_id="<!everyone>", found_in="event")
    mallory = Actor(user_id="U0MALLORY", name="<!here> *x*")
    request = pending(ref, requester=hostile, rule=TWO_OF_THREE, approvals=(mallory,))
    # when
    msg = render_request(job, ref, request, THRESHOLD)
    # then
    line = text_of(msg, "requester")
    assert line == (
        "*Requested by:* `arn:aws:sts::111122223333:assumed-role/x/&lt;!channel&gt;*bold*\u02cbtick\u02cb "
        "&lt;@U0ADMIN01&gt;` (no Slack user mapped)"
    )
    assert live_markup(msg) == {
        "<@U0ALICE01>",
        "<@U0GINA001>",
        "<@U0BOB0001>",
        "<!subteam^S0DATAPLAT>",
        "<@U0MALLORY>",
    }
    assert_slack_accepts(msg)


def test_ten_approvers_many_named_and_a_huge_arn_stay_within_block_kit_limits(tagging: tuple[Job, JobRef]) -> None:
    # given: 2048-character ARN full of escapes, 10 votes with long names, 60 users and 40 groups named
    job, ref = tagging
    arn = "arn:aws:sts::111122223333:assumed-role/" + "<&>" * 700
    users = [f"U{index:08d}" for index in range(60)]
    groups = [f"S{index:08d}" for index in range(40)]
    rule = Rule(name="r" * 32, quorum=10, approvers=Approvers(users=users, groups=groups), reason="<&>" * 66)
    voters = tuple(Actor(user_id=users[index], name="\U0001f468\u200d\U0001f469" * 60) for index in range(9))
    request = pending(ref, requester=Requester(principal_arn=arn[:2048], found_in="event"), rule=rule, approvals=voters)
    # when
    msg = render_request(job, ref, request, THRESHOLD)
    # then
    assert_slack_accepts(msg)
    policy = text_of(msg, "policy")
    assert "and 80 more" in policy.split("\n")[0]  # 100 named, 20 shown
    assert "9 of 10 approvals: " in policy
    assert text_of(msg, "requester").endswith("…` (no Slack user mapped)")
    assert all(slack_len(b["text"]["text"]) <= 3000 for b in msg.blocks if b["type"] == "section" and "text" in b)
    # and once approved by ten, the outcome names all ten
    done = request.model_copy(
        update={"state": RequestState.APPROVED, "approvals": (*voters, Actor(user_id=users[9], name="n" * 80))}
    )
    outcome = render_request(decided(job, "Ready"), ref, done, THRESHOLD)
    assert_slack_accepts(outcome)
    assert all(f"<@{user}>" in text_of(outcome, "outcome") for user in users[:10])
    assert slack_len(outcome.text) < 4000


# -- ephemeral notices ----------------------------------------------------------------------------

JOB_ID = "c0ffee00-1234-4abc-8def-001122334455"


def test_the_requester_is_told_they_cannot_approve_but_may_cancel() -> None:
    assert notice_requester_cannot_approve(JOB_ID) == (
        f"You created job `{JOB_ID}`, so you cannot approve it: someone else must. "
        "Nothing was changed. You can still cancel it."
    )


def test_a_second_vote_is_told_it_counted_once() -> None:
    assert notice_already_approved(JOB_ID, 1, 2) == (
        f"You already approved job `{JOB_ID}` (1 of 2 approvals so far, waiting for 1 more). Nothing was changed."
    )
    assert "2 of 2 approvals, so the job is being approved" in notice_already_approved(JOB_ID, 2, 2)


def test_an_early_approval_is_told_to_wait_for_the_requester() -> None:
    until = datetime(2025, 3, 14, 10, 32, tzinfo=UTC)
    assert notice_waiting_for_requester(JOB_ID, until) == (
        f"Job `{JOB_ID}` cannot be approved yet: we are still learning who created it from CloudTrail, "
        "and the creator may not approve their own job. The wait ends 14 Mar 2025 10:32 UTC. "
        "Nothing was changed. Cancel works at any time."
    )
    assert "10:32 UTC: then any approver may approve." in notice_waiting_for_requester(JOB_ID, until, "allow")
    assert "10:32 UTC: then it keeps waiting until we know." in notice_waiting_for_requester(JOB_ID, until, "hold")
    assert "The wait ends" not in notice_waiting_for_requester(JOB_ID, None)


def test_a_counted_vote_is_told_how_many_more_are_needed() -> None:
    assert notice_vote_recorded(JOB_ID, 1, 3) == (
        f"Your approval of job `{JOB_ID}` is recorded: 1 of 3 approvals, waiting for 2 more."
    )
    assert notice_vote_recorded(JOB_ID, 3, 3) == (
        f"Your approval of job `{JOB_ID}` is recorded: 3 of 3 approvals, so the job is being approved."
    )


def test_notices_escape_a_hostile_job_id() -> None:
    for text in (
        notice_requester_cannot_approve("<!channel>"),
        notice_already_approved("<!channel>", 1, 2),
        notice_waiting_for_requester("<!channel>", None),
        notice_vote_recorded("<!channel>", 1, 2),
    ):
        assert "<" not in text
