"""The approval loop over the wire: emulator → notifier → Slack → signed click → callback → decider → S3."""

from __future__ import annotations

import threading
import time
from collections import Counter

from approvals.models.records import AuditEventType as E
from sandbox.local import ACCOUNT_ID, ALICE, CHANNEL, GINA, MALLORY, LocalDeployment


def events(d: LocalDeployment, job_id: str) -> list[E]:
    return [record.event_type for record in d.audit(job_id)]


def update_calls(d: LocalDeployment) -> int:
    return d.jobs.calls["UpdateJobStatus"]


def test_a_suspended_job_gets_exactly_one_approval_request(d: LocalDeployment, suspended_job: str) -> None:
    # then
    requests = [m for m in d.slack.messages(CHANNEL) if suspended_job in str(m.blocks) and m.thread_ts in (None, m.ts)]
    assert len(requests) == 1
    assert [b["action_id"] for b in requests[0].buttons()] == ["approve_job", "cancel_job"]
    assert events(d, suspended_job) == [E.APPROVAL_REQUESTED]


def test_an_approver_approves_and_the_job_runs_to_complete(d: LocalDeployment, suspended_job: str) -> None:
    # given
    before = update_calls(d)
    # when
    click = d.click(suspended_job, "approve_job", ALICE)
    d.settle()
    # then
    assert click.status == 200
    assert update_calls(d) == before + 1
    job = d.s3control().describe_job(AccountId=ACCOUNT_ID, JobId=suspended_job)["Job"]
    assert job["Status"] == "Ready"
    assert job["StatusUpdateReason"] == f"Approved by {ALICE.display_name} ({ALICE.id}) via Slack"
    # and when the job runs
    d.advance_until(suspended_job, "Active")
    d.advance_until(suspended_job, "Complete")
    message = d.request_message(suspended_job)
    assert message.buttons() == []
    assert [r.text.split(":")[0] for r in d.slack.thread(CHANNEL, message.ts)] == ["Job is running", "Job complete"]
    assert events(d, suspended_job) == [
        E.APPROVAL_REQUESTED,
        E.DECISION_TAKEN,
        E.JOB_STATUS_CHANGED,
        E.JOB_STATUS_CHANGED,
        E.JOB_STATUS_CHANGED,
    ]


def test_an_approver_by_user_group_may_approve(d: LocalDeployment, suspended_job: str) -> None:
    # when
    d.click(suspended_job, "approve_job", GINA)
    d.settle()
    # then
    assert d.jobs.job_status(suspended_job) == "Ready"
    assert d.audit(suspended_job)[1].actor_id == GINA.id


def test_cancel_with_a_reason_through_the_modal(d: LocalDeployment, suspended_job: str) -> None:
    # when
    opened = d.click(suspended_job, "cancel_job", ALICE)
    empty = d.submit_reason(ALICE, "  ")
    submitted = d.submit_reason(ALICE, "Wrong <manifest> & prefix")
    d.settle()
    # then
    assert opened.status == 200
    assert empty.json()["response_action"] == "errors"
    assert submitted.status == 200
    job = d.s3control().describe_job(AccountId=ACCOUNT_ID, JobId=suspended_job)["Job"]
    assert job["Status"] == "Cancelled"
    assert (
        job["StatusUpdateReason"]
        == f"Cancelled by {ALICE.display_name} ({ALICE.id}) via Slack: Wrong <manifest> & prefix"
    )
    shown = str(d.request_message(suspended_job).blocks)
    assert "Wrong &lt;manifest&gt; &amp; prefix" in shown
    assert events(d, suspended_job) == [E.APPROVAL_REQUESTED, E.DECISION_TAKEN, E.JOB_STATUS_CHANGED]


def test_a_non_approver_is_refused_and_the_job_is_untouched(d: LocalDeployment, suspended_job: str) -> None:
    # given
    before = update_calls(d)
    # when
    click = d.click(suspended_job, "approve_job", MALLORY)
    d.settle()
    # then
    assert click.status == 200
    assert update_calls(d) == before
    assert d.jobs.job_status(suspended_job) == "Suspended"
    assert "not an approver" in d.slack.ephemerals(MALLORY.id)[-1].text
    assert events(d, suspended_job) == [E.APPROVAL_REQUESTED, E.DECISION_REFUSED]
    assert len(d.request_message(suspended_job).buttons()) == 2


def test_a_double_click_applies_one_decision(d: LocalDeployment, suspended_job: str) -> None:
    # given
    before = update_calls(d)
    # when
    first = d.click(suspended_job, "approve_job", ALICE)
    second = d.click(suspended_job, "approve_job", ALICE)
    d.settle()
    # then
    assert (first.status, second.status) == (200, 200)
    assert update_calls(d) == before + 1
    assert Counter(events(d, suspended_job)) == Counter(
        {E.APPROVAL_REQUESTED: 1, E.DECISION_TAKEN: 1, E.DECISION_REFUSED: 1, E.JOB_STATUS_CHANGED: 1}
    )


def test_twenty_concurrent_clicks_over_http_make_one_update_job_status_call(
    d: LocalDeployment, suspended_job: str
) -> None:
    # given
    before = update_calls(d)
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def click(i: int) -> None:
        barrier.wait()
        statuses.append(d.click(suspended_job, "approve_job", ALICE if i % 2 else GINA).status)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(20)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    d.settle()
    # then
    assert statuses == [200] * 20
    assert update_calls(d) == before + 1
    trail = events(d, suspended_job)
    assert trail.count(E.DECISION_TAKEN) == 1
    assert trail.count(E.DECISION_REFUSED) == 19


def test_a_job_confirmed_outside_slack_is_reported_not_confirmed_again(d: LocalDeployment, suspended_job: str) -> None:
    # given: someone confirms it with the CLI, and the status event is lost
    d.jobs.drop_next_events(1)
    d.s3control().update_job_status(
        AccountId=ACCOUNT_ID, JobId=suspended_job, RequestedJobStatus="Ready", StatusUpdateReason="confirmed by CLI"
    )
    before = update_calls(d)
    # when
    d.click(suspended_job, "approve_job", ALICE)
    d.settle()
    # then
    assert update_calls(d) == before
    assert "outside Slack" in d.slack.ephemerals(ALICE.id)[-1].text or "Ready" in d.slack.ephemerals(ALICE.id)[-1].text
    assert d.request_message(suspended_job).buttons() == []
    assert d.request_record(suspended_job).state == "closed"
    assert events(d, suspended_job) == [E.APPROVAL_REQUESTED, E.DECISION_REFUSED]


def test_a_lost_suspended_event_is_recovered_by_reconciliation(d: LocalDeployment) -> None:
    # given: the Suspended event never arrives
    job_id = d.create_job()
    d.advance_until(job_id, "Preparing")
    d.jobs.drop_next_events(1)
    d.advance_until(job_id, "Suspended")
    assert not [m for m in d.slack.messages(CHANNEL) if job_id in str(m.blocks)]
    # when: the 15-minute schedule runs
    d.reconcile()
    # then
    assert len(d.request_message(job_id).buttons()) == 2
    assert events(d, job_id) == [E.APPROVAL_REQUESTED]


def test_duplicate_events_post_nothing_twice(d: LocalDeployment) -> None:
    # given
    job_id = d.create_job()
    d.advance_until(job_id, "Preparing")
    d.jobs.duplicate_next_events(1)
    # when
    d.advance_until(job_id, "Suspended")
    # then
    requests = [m for m in d.slack.messages(CHANNEL) if job_id in str(m.blocks) and m.thread_ts in (None, m.ts)]
    assert len(requests) == 1
    assert events(d, job_id) == [E.APPROVAL_REQUESTED]


def test_slack_answering_429_then_succeeding_still_posts_the_request(d: LocalDeployment) -> None:
    # given
    d.slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    job_id = d.create_job()
    # when
    d.advance_until(job_id, "Suspended")
    # then
    assert len(d.request_message(job_id).buttons()) == 2
    posts = [call for call in d.slack.calls_to("chat.postMessage") if job_id in str(call.params)]
    assert [call.ok for call in posts] == [False, True]
    assert not d.event_dlq


def test_s3_control_answering_slowly_keeps_the_ack_on_time_and_the_decision_completes(
    d: LocalDeployment, suspended_job: str
) -> None:
    # given
    d.jobs.delay["DescribeJob"] = 5.0
    d.jobs.delay["UpdateJobStatus"] = 5.0
    # when
    started = time.monotonic()
    click = d.click(suspended_job, "approve_job", ALICE)
    acked = time.monotonic() - started
    d.settle(timeout=40)
    # then
    assert click.status == 200
    assert acked < 3.0
    assert d.jobs.job_status(suspended_job) == "Ready"


def test_a_forged_click_is_rejected_with_401_and_changes_nothing(d: LocalDeployment, suspended_job: str) -> None:
    # given
    before = update_calls(d)
    message = d.request_message(suspended_job)
    payload = d.slack.block_actions_payload(CHANNEL, message.ts, "approve_job", user=ALICE.id)
    # when
    forged = d.post_payload(payload, secret="not-the-signing-secret")
    stale = d.post_payload(payload, timestamp=int(time.time()) - 301)
    d.settle()
    # then
    assert (forged.status, forged.body, stale.status) == (401, "", 401)
    assert update_calls(d) == before
    assert events(d, suspended_job) == [E.APPROVAL_REQUESTED]


def test_a_signed_request_that_cannot_be_acted_on_is_refused_recorded_and_explained(
    d: LocalDeployment, suspended_job: str
) -> None:
    # given: a click Slack signed, for a button this product never made
    message = d.request_message(suspended_job)
    payload = d.slack.block_actions_payload(CHANNEL, message.ts, "approve_job", user=MALLORY.id)
    payload["actions"][0]["action_id"] = "delete_everything"
    before = update_calls(d)
    # when
    reply = d.post_payload(payload)
    d.settle()
    # then
    assert reply.status == 400
    assert "unknown action" in reply.body
    assert update_calls(d) == before
    assert "could not be handled" in d.slack.ephemerals(MALLORY.id)[-1].text
    refused = d.audit(suspended_job)[-1]
    assert (refused.event_type, refused.actor_id) == (E.DECISION_REFUSED, MALLORY.id)
    assert refused.reason.startswith("invalid request: unknown action")
