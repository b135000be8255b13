"""Nothing waits unseen, over the wire: a request nobody answers is reminded in its thread, escalated, and
cancelled at its deadline, by the real notifier's lifecycle tick as the sandbox's clock moves (the sandbox
policy's default rule: reminders at 15, 45, 105 and 225 minutes, escalation from the third, expiry 24 h)."""

from __future__ import annotations

import threading
from datetime import timedelta

from approvals.models.records import AuditEventType as E
from approvals.models.records import RequestState
from sandbox.local import ACCOUNT_ID, ALICE, CHANNEL, GINA, ONCALL_CHANNEL, ONCALL_GROUP, LocalDeployment

EXPIRED_REASON = "Expired: no decision within 24 h (policy default)"


def thread_texts(d: LocalDeployment, job_id: str) -> list[str]:
    message = d.request_message(job_id)
    return [reply.text for reply in d.slack.thread(CHANNEL, message.ts) if reply.ts != message.ts]


def reminder_blocks(d: LocalDeployment, job_id: str) -> list[str]:
    """The mrkdwn of each reminder and escalation in the request's thread."""
    message = d.request_message(job_id)
    found = []
    for reply in d.slack.thread(CHANNEL, message.ts):
        for block in reply.blocks or []:
            if block.get("block_id") in ("reminder", "expired"):
                found.append(block["text"]["text"])
    return found


def reason_of(d: LocalDeployment, job_id: str) -> str:
    return str(d.jobs.describe_job(ACCOUNT_ID, job_id)["StatusUpdateReason"])


def applied(d: LocalDeployment, job_id: str) -> list[str]:
    """Every UpdateJobStatus S3 accepted for the job."""
    return [update.requested for update in d.jobs.status_updates(job_id) if update.error is None]


def events(d: LocalDeployment, job_id: str) -> list[E]:
    return [record.event_type for record in d.audit(job_id)]


def test_the_request_shows_its_deadline_from_the_start(d: LocalDeployment, suspended_job: str) -> None:
    # given
    request = d.request_record(suspended_job)

    # when
    shown = d.slack.render_message(CHANNEL, d.request_message(suspended_job).ts)

    # then
    assert request.deadline is not None
    assert request.deadline - request.requested_at == timedelta(hours=24)
    assert "Expires " in shown
    assert "then the job is cancelled" in shown


def test_a_request_nobody_answers_is_reminded_escalated_and_cancelled_once_at_its_deadline(
    d: LocalDeployment, suspended_job: str
) -> None:
    # given a request that has waited ten minutes: nothing is due yet
    d.advance(timedelta(minutes=10))
    assert reminder_blocks(d, suspended_job) == []

    # when the first reminder is due
    d.advance(timedelta(minutes=6))

    # then one reminder in the thread, mentioning who may decide, and the audit says so
    (first,) = reminder_blocks(d, suspended_job)
    assert "Reminder 1 of 4" in first
    assert f"<@{ALICE.id}>" in first
    assert E.REMINDER_SENT in events(d, suspended_job)

    # when the rest of the day passes
    d.advance(timedelta(hours=24))

    # then reminders 2 to 4 (3 and 4 escalated, also in the on-call channel), then the expiry cancelled the job
    blocks = reminder_blocks(d, suspended_job)
    assert [(f"reminder {n} of 4" in b.lower(), "Escalated" in b) for n, b in enumerate(blocks[:4], start=1)] == [
        (True, False),
        (True, False),
        (True, True),
        (True, True),
    ]
    assert f"<!subteam^{ONCALL_GROUP}>" in blocks[2]
    assert "Expired" in blocks[4]
    assert "cancelled" in blocks[4]
    assert len(blocks) == 5
    assert sum("Escalated" in m.text for m in d.slack.messages(ONCALL_CHANNEL)) >= 2
    assert d.jobs.job_status(suspended_job) == "Cancelled"
    assert reason_of(d, suspended_job) == EXPIRED_REASON
    request = d.request_record(suspended_job)
    assert request.state == RequestState.CANCELLED
    assert request.decision_origin == "system:expiry"
    trail = events(d, suspended_job)
    assert trail.count(E.REQUEST_EXPIRED) == 1
    assert trail.count(E.DECISION_TAKEN) == 1
    assert trail.count(E.REMINDER_SENT) == 2
    assert trail.count(E.REQUEST_ESCALATED) == 2
    assert applied(d, suspended_job) == ["Cancelled"]

    # when the tick runs again (a duplicated tick) and a late click comes in
    d.tick()
    click = d.click(suspended_job, "approve_job", ALICE) if _has_buttons(d, suspended_job) else None
    d.settle()

    # then nothing more happens
    assert click is None or click.status == 200
    assert applied(d, suspended_job) == ["Cancelled"]
    assert len(reminder_blocks(d, suspended_job)) == 5


def _has_buttons(d: LocalDeployment, job_id: str) -> bool:
    return any(b.get("action_id") == "approve_job" for b in d.request_message(job_id).buttons())


def test_a_decision_stops_the_reminders_at_once(d: LocalDeployment, suspended_job: str) -> None:
    # given one reminder went out
    d.advance(timedelta(minutes=16))
    assert len(reminder_blocks(d, suspended_job)) == 1

    # when alice approves, and the day passes
    d.click(suspended_job, "approve_job", ALICE)
    d.settle()
    d.advance(timedelta(hours=25))

    # then no other reminder, no expiry, the job approved
    assert len(reminder_blocks(d, suspended_job)) == 1
    assert E.REQUEST_EXPIRED not in events(d, suspended_job)
    assert d.request_record(suspended_job).state == RequestState.APPROVED
    assert d.request_record(suspended_job).due_at is None


def test_a_click_after_the_expiry_cancelled_the_job_is_told_so(d: LocalDeployment, suspended_job: str) -> None:
    # given the first version of the message, still showing its buttons in someone's client
    message = d.request_message(suspended_job)
    payload = d.slack.block_actions_payload(CHANNEL, message.ts, "approve_job", user=GINA.id)
    d.advance(timedelta(hours=25))
    assert d.jobs.job_status(suspended_job) == "Cancelled"

    # when gina's click arrives
    click = d.post_payload(payload)
    d.settle()

    # then she is told it expired, and nothing changed
    assert click.status == 200
    told = [e.text for e in d.slack.ephemerals(GINA.id)]
    assert told
    assert "expired" in told[-1]
    assert "Nothing was changed" in told[-1]
    assert applied(d, suspended_job) == ["Cancelled"]


def test_expiry_cancels_exactly_once_under_concurrent_late_clicks_and_duplicated_ticks(
    d: LocalDeployment, suspended_job: str
) -> None:
    # given the request just before its deadline, every reminder sent
    d.advance(timedelta(hours=23, minutes=59))
    message = d.request_message(suspended_job)
    payloads = [d.slack.block_actions_payload(CHANNEL, message.ts, "approve_job", user=ALICE.id)]
    d.clock.advance(timedelta(minutes=2))

    # when two ticks and alice's click race
    threads = [threading.Thread(target=d.tick), threading.Thread(target=d.tick)]
    threads += [threading.Thread(target=d.post_payload, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    d.settle()

    # then exactly one decision reached S3: the expiry's, or alice's if hers came first
    updates = applied(d, suspended_job)
    assert len(updates) == 1
    trail = events(d, suspended_job)
    assert trail.count(E.DECISION_TAKEN) == 1
    request = d.request_record(suspended_job)
    assert request.state in (RequestState.CANCELLED, RequestState.APPROVED)
    if request.state == RequestState.CANCELLED:
        assert reason_of(d, suspended_job) == EXPIRED_REASON
