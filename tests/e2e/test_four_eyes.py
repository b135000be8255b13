"""Four eyes over the wire: whoever created a job (as CloudTrail recorded it, mapped to Slack by the sandbox
policy's identities) may not approve it, someone else must; and while nobody knows who created it, approval
waits (sandbox/policy.yaml's default rule: hold) until CloudTrail's event history says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from approvals.adapters.cloudtrail import MAX_ATTEMPTS
from approvals.models.records import AuditEventType as E
from approvals.models.records import AuditRecord
from sandbox.local import ACCOUNT_ID, ALICE, GINA, PRINCIPALS, LocalDeployment, Person

HISTORY_DELAY = 5.0  # seconds until CloudTrail's event history shows a CreateJob call (minutes in AWS)


@pytest.fixture(scope="class")
def deployment(request: pytest.FixtureRequest) -> Iterator[LocalDeployment]:
    """One deployment per test class, built with the class's ``options`` (one runs per process at a time)."""
    with LocalDeployment(**getattr(request.cls, "options", {})) as running:
        yield running


def events(d: LocalDeployment, job_id: str) -> list[E]:
    return [record.event_type for record in d.audit(job_id)]


def last(d: LocalDeployment, job_id: str, event_type: E) -> AuditRecord:
    return [record for record in d.audit(job_id) if record.event_type == event_type][-1]


def told(d: LocalDeployment, person: Person, job_id: str) -> list[str]:
    """The ephemeral notices ``person`` got about the job, oldest first."""
    return [notice.text for notice in d.slack.ephemerals(person.id) if job_id in notice.text]


def described(d: LocalDeployment, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = d.s3control().describe_job(AccountId=ACCOUNT_ID, JobId=job_id)["Job"]
    return job


def requester_block(d: LocalDeployment, job_id: str) -> str:
    blocks = d.request_message(job_id).blocks or []
    return next(block["text"]["text"] for block in blocks if block.get("block_id") == "requester")


class TestTheRequesterKnownFromTheCreateJobEvent:
    """A trail records management events, so EventBridge brings each CreateJob call before the job is Suspended."""

    options: ClassVar[dict[str, Any]] = {}

    @pytest.mark.parametrize(
        ("principal", "creator", "other", "mapped_by"),
        [("alice", ALICE, GINA, "email"), ("gina", GINA, ALICE, "mapping")],
        ids=["sso-session-by-email", "role-by-policy-mapping"],
    )
    def test_the_creator_cannot_approve_their_own_job_and_another_approver_can(
        self, d: LocalDeployment, principal: str, creator: Person, other: Person, mapped_by: str
    ) -> None:
        # given: the creator is an approver too (Alice by user ID, Gina by user group)
        job_id = d.create_job(principal=principal)
        d.advance_until(job_id, "Suspended")
        record = d.request_record(job_id)
        assert record.requester is not None
        assert (record.requester.principal_arn, record.requester.slack_user_id) == (PRINCIPALS[principal], creator.id)
        assert (record.requester.mapped_by, record.requester.found_in) == (mapped_by, "event")
        assert f"<@{creator.id}>" in requester_block(d, job_id)
        updates = d.jobs.calls["UpdateJobStatus"]
        # when: the creator approves
        refused = d.click(job_id, "approve_job", creator)
        d.settle()
        # then: refused, explained, recorded; S3 untouched
        assert refused.status == 200
        assert d.jobs.calls["UpdateJobStatus"] == updates
        assert described(d, job_id)["Status"] == "Suspended"
        assert "so you cannot approve it: someone else must" in told(d, creator, job_id)[-1]
        refusal = last(d, job_id, E.DECISION_REFUSED)
        assert (refusal.actor_id, refusal.action, refusal.reason) == (creator.id, "approve", "requester cannot approve")
        assert (refusal.requester_slack_id, refusal.status_after) == (creator.id, "Suspended")
        assert [b["action_id"] for b in d.request_message(job_id).buttons()] == ["approve_job", "cancel_job"]
        # when: someone else approves
        d.click(job_id, "approve_job", other)
        d.settle()
        # then: the job runs, and its reason names the approver, not the creator
        job = described(d, job_id)
        assert job["Status"] == "Ready"
        assert job["StatusUpdateReason"] == f"Approved by {other.display_name} ({other.id}) via Slack"
        assert d.jobs.calls["UpdateJobStatus"] == updates + 1
        taken = last(d, job_id, E.DECISION_TAKEN)
        assert (taken.actor_id, taken.requester_slack_id, taken.rule) == (other.id, creator.id, "default")
        assert events(d, job_id) == [
            E.APPROVAL_REQUESTED,
            E.DECISION_REFUSED,
            E.DECISION_TAKEN,
            E.JOB_STATUS_CHANGED,
        ]
        assert d.request_message(job_id).buttons() == []

    def test_the_creator_may_still_cancel_their_own_job(self, d: LocalDeployment) -> None:
        # given
        job_id = d.create_job(principal="alice")
        d.advance_until(job_id, "Suspended")
        assert d.request_record(job_id).requester is not None
        # when
        opened = d.click(job_id, "cancel_job", ALICE)
        submitted = d.submit_reason(ALICE, "I picked the wrong manifest")
        d.settle()
        # then
        assert (opened.status, submitted.status) == (200, 200)
        job = described(d, job_id)
        assert job["Status"] == "Cancelled"
        assert (
            job["StatusUpdateReason"]
            == f"Cancelled by {ALICE.display_name} ({ALICE.id}) via Slack: I picked the wrong manifest"
        )
        taken = last(d, job_id, E.DECISION_TAKEN)
        assert (taken.actor_id, taken.action, taken.requester_slack_id) == (ALICE.id, "cancel", ALICE.id)
        assert E.DECISION_REFUSED not in events(d, job_id)
        assert not told(d, ALICE, job_id)

    def test_a_job_created_by_a_role_nobody_in_slack_owns_is_approved_by_any_approver(self, d: LocalDeployment) -> None:
        # given: the pipeline's role maps to no Slack user
        job_id = d.create_job(principal="pipeline")
        d.advance_until(job_id, "Suspended")
        record = d.request_record(job_id)
        assert record.requester is not None
        assert (record.requester.principal_arn, record.requester.slack_user_id) == (PRINCIPALS["pipeline"], None)
        assert "no Slack user mapped" in requester_block(d, job_id)
        # when
        d.click(job_id, "approve_job", ALICE)
        d.settle()
        # then
        assert described(d, job_id)["StatusUpdateReason"] == f"Approved by {ALICE.display_name} ({ALICE.id}) via Slack"
        assert E.DECISION_REFUSED not in events(d, job_id)


class TestTheRequesterLearntFromCloudTrailsHistory:
    """No trail: EventBridge never sees CreateJob calls, and the event history shows them ``HISTORY_DELAY`` late."""

    options: ClassVar[dict[str, Any]] = {"trail": False, "history_delay": HISTORY_DELAY}

    def _refused_while_unknown(self, d: LocalDeployment, job_id: str) -> None:
        """The request says the requester is being looked up, and an Approve is refused: waiting for requester."""
        record = d.request_record(job_id)
        assert record.requester is None
        assert record.rule is not None
        assert record.rule.name == "default"
        block = requester_block(d, job_id)
        assert "Looking up who created this job in CloudTrail" in block
        assert "Approval waits until we know who created this job" in block
        updates = d.jobs.calls["UpdateJobStatus"]
        refused = d.click(job_id, "approve_job", GINA)
        d.settle()
        assert refused.status == 200
        assert d.jobs.calls["UpdateJobStatus"] == updates
        assert described(d, job_id)["Status"] == "Suspended"
        assert "cannot be approved yet: we are still learning who created it" in told(d, GINA, job_id)[-1]
        refusal = last(d, job_id, E.DECISION_REFUSED)
        assert (refusal.actor_id, refusal.reason) == (GINA.id, "waiting for requester")
        assert refusal.requester_arn is None

    def _learnt_then_four_eyes(self, d: LocalDeployment, job_id: str) -> None:
        """The requester is Alice (found in the history, by email): she is refused, Gina approves."""
        record = d.request_record(job_id)
        assert record.requester is not None
        assert (record.requester.principal_arn, record.requester.slack_user_id) == (PRINCIPALS["alice"], ALICE.id)
        assert (record.requester.found_in, record.requester.mapped_by) == ("history", "email")
        identified = last(d, job_id, E.REQUESTER_IDENTIFIED)
        assert (identified.requester_arn, identified.requester_slack_id) == (PRINCIPALS["alice"], ALICE.id)
        assert identified.detail == "found in history, Slack user by email"
        block = requester_block(d, job_id)
        assert block.startswith(f"*Requested by:* <@{ALICE.id}>")
        assert "Looking up" not in block
        d.click(job_id, "approve_job", ALICE)
        d.settle()
        assert last(d, job_id, E.DECISION_REFUSED).reason == "requester cannot approve"
        assert described(d, job_id)["Status"] == "Suspended"
        d.click(job_id, "approve_job", GINA)
        d.settle()
        job = described(d, job_id)
        assert job["Status"] == "Ready"
        assert job["StatusUpdateReason"] == f"Approved by {GINA.display_name} ({GINA.id}) via Slack"
        taken = last(d, job_id, E.DECISION_TAKEN)
        assert (taken.actor_id, taken.requester_slack_id, taken.detail) == (GINA.id, ALICE.id, None)
        assert events(d, job_id) == [
            E.APPROVAL_REQUESTED,
            E.DECISION_REFUSED,
            E.REQUESTER_IDENTIFIED,
            E.DECISION_REFUSED,
            E.DECISION_TAKEN,
            E.JOB_STATUS_CHANGED,
        ]

    def test_approval_waits_while_cloudtrail_is_unreachable_and_works_once_its_history_says_who(
        self, d: LocalDeployment
    ) -> None:
        # given: CloudTrail throttles the one lookup made when the request is posted (every attempt of it)
        job_id = d.create_job(principal="alice")
        visible_from = time.monotonic() + HISTORY_DELAY
        d.advance_until(job_id, "Preparing")  # its New and Preparing events handled: nothing to look up yet
        lookups = len(d.cloudtrail.history.calls)
        d.cloudtrail.history.throttle_next(MAX_ATTEMPTS)
        d.advance_until(job_id, "Suspended")
        assert [call.error for call in d.cloudtrail.history.calls[lookups:]] == ["ThrottlingException"] * MAX_ATTEMPTS
        # then: posted without a requester, and approval waits
        self._refused_while_unknown(d, job_id)
        # when: the history shows the call, and the 15-minute reconciliation runs
        time.sleep(max(0.0, visible_from - time.monotonic()) + 0.5)
        d.reconcile()
        d.settle()
        # then: asked again, once, and answered
        errors = [call.error for call in d.cloudtrail.history.calls[lookups:]]
        assert errors == ["ThrottlingException"] * MAX_ATTEMPTS + [None]
        self._learnt_then_four_eyes(d, job_id)

    def test_approval_waits_while_the_history_lags_and_works_once_it_says_who(self, d: LocalDeployment) -> None:
        """Slow (about a minute): the lookup made when the request is posted finds nothing yet, and the adapter
        keeps that answer for NOT_FOUND_SECONDS; reconciliations before then do not ask CloudTrail again."""
        # given
        lookups = len(d.cloudtrail.history.calls)
        job_id = d.create_job(principal="alice")
        d.advance_until(job_id, "Suspended")
        assert [call.error for call in d.cloudtrail.history.calls[lookups:]] == [None]  # asked, and answered
        # then
        self._refused_while_unknown(d, job_id)
        # when: reconciliations run until one learns the requester (the history shows it after HISTORY_DELAY)
        deadline = time.monotonic() + 150
        while d.request_record(job_id).requester is None and time.monotonic() < deadline:
            d.reconcile()
            time.sleep(1.0)
        d.settle()
        # then
        self._learnt_then_four_eyes(d, job_id)
