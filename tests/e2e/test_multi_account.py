"""One hub, a spoke account in another region: requested, decided and followed from the same channel, over the
wire (the emulator in two accounts, the buses' forward rules, the STS front, the spoke role's permissions)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from approvals.models.records import AuditEventType as E
from approvals.models.records import RequestState
from sandbox.local import (
    ACCOUNT_ID,
    ALICE,
    CHANNEL,
    GINA,
    HUB,
    REGION,
    SPOKE,
    SPOKE_ACCOUNT_ID,
    SPOKE_NAME,
    SPOKE_REGION,
    LocalDeployment,
    requests_posted,
)
from sandbox.router import PutEventsDenied, make_event


@pytest.fixture
def m(d: LocalDeployment) -> Iterator[LocalDeployment]:
    """The module's deployment, with the spoke role as its stack makes it and STS unbroken after each test."""
    yield d
    d.sts.clear_faults()
    d.restore_spoke_role()
    d.settle(60)


def wait_for(what: Callable[[], Any], timeout: float = 90.0, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout:.0f} s: {message}")


def spoke_job(d: LocalDeployment, **kwargs: Any) -> str:
    job_id = d.create_job(account=SPOKE, **kwargs)
    d.advance_until(job_id, "Suspended", account=SPOKE)
    return job_id


def events(d: LocalDeployment, job_id: str, account: str) -> list[E]:
    return [record.event_type for record in d.audit(job_id, account=account)]


def channel_texts(d: LocalDeployment) -> list[str]:
    return [message.text for message in d.slack.messages(CHANNEL)]


def test_a_spoke_job_is_approved_from_the_same_channel_and_followed_to_complete(m: LocalDeployment) -> None:
    # given
    job_id = spoke_job(m)
    message = m.request_message(job_id, account=SPOKE)
    # when
    click = m.click(job_id, "approve_job", ALICE, account=SPOKE)
    m.settle()
    # then the decision was applied in the spoke account, through the spoke role
    assert click.status == 200
    assert m.jobs.job_status(job_id, account_id=SPOKE_ACCOUNT_ID) == "Ready"
    sessions = {call.session_name for call in m.sts.calls if call.error is None and job_id in call.session_name}
    assert f"decider-{job_id}" in sessions
    assert SPOKE_NAME in json.dumps(message.blocks)  # the request names the account as people know it
    # and when the job runs
    m.advance_until(job_id, "Active", account=SPOKE)
    m.advance_until(job_id, "Complete", account=SPOKE)
    message = m.request_message(job_id, account=SPOKE)
    assert message.buttons() == []
    assert [r.text.split(":")[0] for r in m.slack.thread(CHANNEL, message.ts)] == ["Job is running", "Job complete"]
    # and the audit names the account and region it ran in
    records = m.audit(job_id, account=SPOKE)
    assert [r.event_type for r in records] == [
        E.APPROVAL_REQUESTED,
        E.DECISION_TAKEN,
        E.JOB_STATUS_CHANGED,
        E.JOB_STATUS_CHANGED,
        E.JOB_STATUS_CHANGED,
    ]
    assert {(r.account_id, r.region) for r in records} == {(SPOKE_ACCOUNT_ID, SPOKE_REGION)}
    assert records[1].actor_id == ALICE.id


def test_a_request_is_not_lost_while_the_spoke_role_is_gone(m: LocalDeployment) -> None:
    # given the spoke role is gone
    m.delete_spoke_role()
    refused_before = len(m.sts.refused())
    # when a spoke job waits for confirmation
    job_id = m.create_job(account=SPOKE)
    m.jobs.advance_until(job_id, "Suspended", account_id=SPOKE_ACCOUNT_ID)
    wait_for(lambda: len(m.sts.refused()) > refused_before, 30, "no AssumeRole was refused")
    # then nothing is posted as a request, but the channel is told the hub cannot act there
    assert requests_posted(m.slack)[job_id] == 0
    wait_for(lambda: [t for t in channel_texts(m) if job_id in t and "cannot act" in t], 30, "the channel was not told")
    # and when the role is back, the redelivered event posts the request, once
    m.restore_spoke_role()
    m.settle(60)
    assert requests_posted(m.slack)[job_id] == 1
    assert events(m, job_id, SPOKE)[0] == E.APPROVAL_REQUESTED


def test_a_spoke_event_that_keeps_failing_ends_in_the_job_events_dead_letter_queue(m: LocalDeployment) -> None:
    # given STS throttles every AssumeRole
    m.sts.throttle_next(10**6)
    # when
    job_id = m.create_job(account=SPOKE)
    m.jobs.advance_until(job_id, "Suspended", account_id=SPOKE_ACCOUNT_ID)
    # then the events are delivered again and again, and end in the dead-letter queue
    dead = wait_for(lambda: [e for e in m.notifier_failures if job_id in json.dumps(e)], 120, "nothing reached the DLQ")
    assert {e["account"] for e in dead} == {SPOKE_ACCOUNT_ID}
    assert requests_posted(m.slack)[job_id] == 0
    # and once STS answers again, the reconciliation finds the job through the spoke role
    m.sts.clear_faults()
    m.settle(60)
    m.reconcile()
    m.settle(60)
    assert requests_posted(m.slack)[job_id] == 1


def test_a_decision_that_cannot_be_applied_goes_back_to_pending_and_the_person_is_told(m: LocalDeployment) -> None:
    # given
    job_id = spoke_job(m)
    told_before = len(m.slack.ephemerals(ALICE.id))
    m.delete_spoke_role()
    # when
    click = m.click(job_id, "approve_job", ALICE, account=SPOKE)
    m.settle(60)
    # then
    assert click.status == 200
    assert m.jobs.job_status(job_id, account_id=SPOKE_ACCOUNT_ID) == "Suspended"
    assert m.request_record(job_id, account=SPOKE).state == RequestState.PENDING
    assert len(m.slack.ephemerals(ALICE.id)) > told_before
    assert E.DECISION_FAILED in events(m, job_id, SPOKE)
    # and when the role is back, the same person decides again
    m.restore_spoke_role()
    m.click(job_id, "approve_job", ALICE, account=SPOKE)
    m.settle(60)
    assert m.jobs.job_status(job_id, account_id=SPOKE_ACCOUNT_ID) == "Ready"


def test_a_forged_event_from_outside_never_reaches_the_notifier(m: LocalDeployment) -> None:
    # given a job that really waits in the spoke, but whose events the spoke never forwarded
    from sandbox.local import FORWARD_RULE

    spoke_bus = m.default_bus(SPOKE_ACCOUNT_ID, SPOKE_REGION)
    spoke_bus.disable_rule(FORWARD_RULE)
    try:
        job_id = m.create_job(account=SPOKE)
        m.advance_until(job_id, "Suspended", account=SPOKE)
    finally:
        spoke_bus.enable_rule(FORWARD_RULE)
    detail = {
        "eventSource": "s3.amazonaws.com",
        "eventName": "JobStatusChanged",
        "eventType": "AwsServiceEvent",
        "userIdentity": {"accountId": SPOKE_ACCOUNT_ID, "invokedBy": "s3.amazonaws.com"},
        "serviceEventDetails": {
            "jobId": job_id,
            "jobArn": f"arn:aws:s3:{SPOKE_REGION}:{SPOKE_ACCOUNT_ID}:job/{job_id}",
            "status": "Suspended",
            "jobEventId": "forged0001",
            "failureCodes": [],
            "statusChangeReason": [],
        },
    }
    forged = make_event(
        "aws.s3", "AWS Service Event via CloudTrail", detail, account=SPOKE_ACCOUNT_ID, region=SPOKE_REGION
    )
    # when an account the hub does not serve puts it on the hub's bus
    with pytest.raises(PutEventsDenied):
        m.put_on_hub_bus(forged, sender_account="999999999999")
    m.settle()
    # then
    assert requests_posted(m.slack)[job_id] == 0
    # and an event from a member that names an account the hub does not serve is dropped, never acted on
    elsewhere = make_event(
        "aws.s3",
        "AWS Service Event via CloudTrail",
        {
            **detail,
            "serviceEventDetails": {
                **detail["serviceEventDetails"],
                "jobArn": "arn:aws:s3:us-east-1:999999999999:job/x",
            },
        },
        account="999999999999",
        region=REGION,
    )
    # (no PutEvents call could claim aws.s3 or another account: EventBridge refuses the source and stamps the
    # sender's account; so it is put on the bus as a rule's delivery would be, to show what the notifier does)
    assert m.hub_bus.put_events(elsewhere) == ["job-events"]
    m.settle()
    assert not [c for c in m.sts.calls if "999999999999" in c.role_arn]


def test_two_jobs_with_the_same_id_in_hub_and_spoke_are_two_requests_decided_separately(m: LocalDeployment) -> None:
    # given
    shared = "same-id-in-two-accounts-01"
    m.create_job(account=HUB, job_id=shared, description="Hub job")
    m.create_job(account=SPOKE, job_id=shared, description="Spoke job")
    m.advance_until(shared, "Suspended", account=HUB)
    m.advance_until(shared, "Suspended", account=SPOKE)
    # then
    assert requests_posted(m.slack)[shared] == 2
    hub_message = m.request_message(shared, account=HUB)
    spoke_message = m.request_message(shared, account=SPOKE)
    assert hub_message.ts != spoke_message.ts
    # when only the spoke's is approved
    m.click(shared, "approve_job", ALICE, account=SPOKE)
    m.settle()
    # then
    assert m.jobs.job_status(shared, account_id=SPOKE_ACCOUNT_ID) == "Ready"
    assert m.jobs.job_status(shared, account_id=ACCOUNT_ID) == "Suspended"
    assert m.request_record(shared, account=HUB).state == RequestState.PENDING
    assert m.request_record(shared, account=SPOKE).state == RequestState.APPROVED
    # and the hub's is decided on its own, by someone else
    m.click(shared, "approve_job", GINA, account=HUB)
    m.settle()
    assert m.jobs.job_status(shared, account_id=ACCOUNT_ID) == "Ready"
    assert m.audit(shared, account=HUB)[1].actor_id == GINA.id
    assert m.audit(shared, account=SPOKE)[1].actor_id == ALICE.id
