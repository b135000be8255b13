"""A quorum over the wire: sandbox/policy.yaml's large-jobs rule wants two different approvers for a million
objects or more. Three people may approve here (Alice and Mallory by user ID, Gina by user group)."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from approvals.models.records import AuditEventType as E
from approvals.models.records import AuditRecord
from sandbox.local import ACCOUNT_ID, ALICE, CHANNEL, GINA, MALLORY, LocalDeployment, Person

APPROVERS = (ALICE, MALLORY, GINA)
LARGE = 2_000_000
# "Approved by NAME (ID), NAME (ID) via Slack": the head reasons.status_update_reason writes for two people.
TWO_APPROVERS = re.compile(
    r"^Approved by [^()]+ \((?P<first>U[A-Z0-9]+)\), [^()]+ \((?P<second>U[A-Z0-9]+)\) via Slack$"
)


@pytest.fixture(scope="module")
def deployment() -> Iterator[LocalDeployment]:
    with LocalDeployment(approver_ids=(ALICE.id, MALLORY.id)) as running:
        yield running


@pytest.fixture
def large_job(d: LocalDeployment) -> str:
    """A 2,000,000-object job the pipeline created (a role nobody in Slack owns), awaiting two approvals."""
    job_id = d.create_job(principal="pipeline", object_count=LARGE, description="Restore the 2019 archive")
    d.advance_until(job_id, "Suspended")
    request = d.request_record(job_id)
    assert request.rule is not None
    assert (request.rule.name, request.rule.quorum) == ("large-jobs", 2)
    assert request.requester is not None
    assert request.requester.slack_user_id is None
    return job_id


def events(d: LocalDeployment, job_id: str) -> list[E]:
    return [record.event_type for record in d.audit(job_id)]


def records(d: LocalDeployment, job_id: str, event_type: E) -> list[AuditRecord]:
    return [record for record in d.audit(job_id) if record.event_type == event_type]


def told(d: LocalDeployment, person: Person, job_id: str) -> list[str]:
    return [notice.text for notice in d.slack.ephemerals(person.id) if job_id in notice.text]


def status_history(d: LocalDeployment, job_id: str) -> list[str]:
    """Every status the emulator announced for the job, in order."""
    return [
        event["detail"]["serviceEventDetails"]["status"]
        for event in list(d.jobs.emitted)
        if event["detail"].get("serviceEventDetails", {}).get("jobId") == job_id
    ]


def described(d: LocalDeployment, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = d.s3control().describe_job(AccountId=ACCOUNT_ID, JobId=job_id)["Job"]
    return job


def policy_block(d: LocalDeployment, job_id: str) -> str:
    blocks = d.request_message(job_id).blocks or []
    return next(block["text"]["text"] for block in blocks if block.get("block_id") == "policy")


def test_one_approval_of_two_is_recorded_shown_and_changes_nothing_in_s3(d: LocalDeployment, large_job: str) -> None:
    # given
    updates = d.jobs.calls["UpdateJobStatus"]
    assert "0 of 2 approvals yet" in policy_block(d, large_job)
    # when
    click = d.click(large_job, "approve_job", ALICE)
    d.settle()
    # then
    assert click.status == 200
    assert d.jobs.calls["UpdateJobStatus"] == updates
    assert described(d, large_job)["Status"] == "Suspended"
    assert told(d, ALICE, large_job)[-1].endswith("is recorded: 1 of 2 approvals, waiting for 1 more.")
    [vote] = records(d, large_job, E.VOTE_RECORDED)
    assert (vote.actor_id, vote.action, vote.reason, vote.rule) == (
        ALICE.id,
        "approve",
        "1 of 2 approvals",
        "large-jobs",
    )
    progress = policy_block(d, large_job)
    assert f"1 of 2 approvals: <@{ALICE.id}> ✅ · waiting for 1 more" in progress
    assert len(d.request_message(large_job).buttons()) == 2
    # and when she clicks again, her vote still counts once
    d.click(large_job, "approve_job", ALICE)
    d.settle()
    assert "You already approved job" in told(d, ALICE, large_job)[-1]
    assert records(d, large_job, E.DECISION_REFUSED)[-1].reason == "already approved"
    assert len(records(d, large_job, E.VOTE_RECORDED)) == 1
    assert d.jobs.calls["UpdateJobStatus"] == updates


def test_twenty_concurrent_votes_from_three_approvers_make_one_decision_by_two_of_them(
    d: LocalDeployment, large_job: str
) -> None:
    # given: twenty signed clicks, ready to leave at once, round-robin over the three approvers
    updates = d.jobs.calls["UpdateJobStatus"]
    notices_before = {person.id: len(told(d, person, large_job)) for person in APPROVERS}
    message = d.request_message(large_job)
    voters = [APPROVERS[i % len(APPROVERS)] for i in range(20)]
    payloads = [d.slack.block_actions_payload(CHANNEL, message.ts, "approve_job", user=p.id) for p in voters]
    barrier = threading.Barrier(len(payloads))
    statuses: list[int] = []

    def send(payload: dict[str, Any]) -> None:
        barrier.wait()
        statuses.append(d.post_payload(payload).status)

    threads = [threading.Thread(target=send, args=(payload,)) for payload in payloads]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    d.settle()
    # then: S3 got one call, and the job ran on it
    assert statuses == [200] * 20
    assert d.jobs.calls["UpdateJobStatus"] == updates + 1
    assert status_history(d, large_job)[-2:] == ["Suspended", "Ready"]
    job = described(d, large_job)
    assert job["Status"] == "Ready"
    # and its reason names exactly two different approvers
    named = TWO_APPROVERS.match(job["StatusUpdateReason"])
    assert named is not None, job["StatusUpdateReason"]
    pair = [named["first"], named["second"]]
    assert len(set(pair)) == 2
    assert set(pair) <= {person.id for person in APPROVERS}
    # and the audit has one decision, by those two, and at most one vote per person
    [taken] = records(d, large_job, E.DECISION_TAKEN)
    assert (taken.action, taken.status_update_reason, taken.approvers) == ("approve", job["StatusUpdateReason"], pair)
    assert taken.actor_id == pair[-1]  # the vote that made the quorum
    votes = Counter(record.actor_id for record in records(d, large_job, E.VOTE_RECORDED))
    assert all(count == 1 for count in votes.values())
    assert set(votes) <= set(pair)
    # and every click but the deciding one was answered with a notice (its answer is the message itself)
    heard = {person.id: told(d, person, large_job)[notices_before[person.id] :] for person in APPROVERS}
    assert sum(len(notices) for notices in heard.values()) == 19
    assert all(heard[person.id] for person in APPROVERS)
    refusals = records(d, large_job, E.DECISION_REFUSED)
    assert len(refusals) == 20 - 1 - sum(votes.values())
    assert {record.reason for record in refusals} <= {"already approved", "already decided"}
    # and the message shows who approved, with nothing left to click
    message = d.request_message(large_job)
    assert message.buttons() == []
    shown = str(message.blocks)
    assert all(f"<@{user_id}>" in shown for user_id in pair)
    assert [actor.user_id for actor in d.request_record(large_job).approvals] == pair


def test_a_cancel_after_one_approval_vetoes_the_job(d: LocalDeployment, large_job: str) -> None:
    # given: Alice approves (1 of 2); Mallory's Slack still shows the buttons
    d.click(large_job, "approve_job", ALICE)
    d.settle()
    assert described(d, large_job)["Status"] == "Suspended"
    message = d.request_message(large_job)
    late_approve = d.slack.block_actions_payload(CHANNEL, message.ts, "approve_job", user=MALLORY.id)
    updates = d.jobs.calls["UpdateJobStatus"]
    # when: Gina cancels, with a reason
    opened = d.click(large_job, "cancel_job", GINA)
    submitted = d.submit_reason(GINA, "Wrong year: this is the 2018 archive")
    d.settle()
    # then: cancelled, in Gina's name alone
    assert (opened.status, submitted.status) == (200, 200)
    job = described(d, large_job)
    assert job["Status"] == "Cancelled"
    assert job["StatusUpdateReason"] == (
        f"Cancelled by {GINA.display_name} ({GINA.id}) via Slack: Wrong year: this is the 2018 archive"
    )
    assert d.jobs.calls["UpdateJobStatus"] == updates + 1
    [taken] = records(d, large_job, E.DECISION_TAKEN)
    assert (taken.actor_id, taken.action, taken.approvers) == (GINA.id, "cancel", None)
    shown = str(d.request_message(large_job).blocks)
    assert "Cancelled" in shown
    assert f"<@{GINA.id}>" in shown
    assert f"<@{ALICE.id}>" not in shown
    assert d.request_message(large_job).buttons() == []
    # when: Mallory's approve arrives afterwards
    late = d.post_payload(late_approve)
    d.settle()
    # then: told it was decided, nothing changed
    assert late.status == 200
    assert d.jobs.calls["UpdateJobStatus"] == updates + 1
    assert described(d, large_job)["Status"] == "Cancelled"
    assert "was already cancelled by" in told(d, MALLORY, large_job)[-1]
    assert GINA.id in told(d, MALLORY, large_job)[-1]
    refusal = records(d, large_job, E.DECISION_REFUSED)[-1]
    assert (refusal.actor_id, refusal.reason) == (MALLORY.id, "already decided")
    assert events(d, large_job) == [
        E.APPROVAL_REQUESTED,
        E.VOTE_RECORDED,
        E.DECISION_TAKEN,
        E.JOB_STATUS_CHANGED,
        E.DECISION_REFUSED,
    ]
