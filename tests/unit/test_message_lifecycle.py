"""What the request, its reminders and its expiry say about the lifecycle (approvals.domain.message)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from approvals.domain import message
from approvals.models.job import JobRef
from approvals.models.policy import Expiry, Rule
from approvals.models.records import ApprovalRequest, RequestState
from tests.fakes import make_job

REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0001-abcdef")
POSTED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def pending(**fields: object) -> ApprovalRequest:
    return ApprovalRequest(
        job=REF,
        state=RequestState.PENDING,
        requested_at=POSTED,
        deadline=POSTED + timedelta(hours=24),
        channel="C0APPROVALS",
        message_ts="1.2",
        **fields,  # type: ignore[arg-type]
    )


def texts(rendered: message.SlackMessage) -> str:
    return str(rendered.blocks)


def test_the_request_says_when_it_expires_and_what_happens_then() -> None:
    cancel = message.render_request(make_job(REF.job_id), REF, pending(), 1_000_000)
    leave = message.render_request(
        make_job(REF.job_id), REF, pending(rule=Rule(name="manual", expiry=Expiry(action="leave"))), 1_000_000
    )

    assert "Expires 2 Dec 2026 09:30 UTC: then the job is cancelled" in texts(cancel)
    assert "Expires 2 Dec 2026 09:30 UTC: then the request is marked expired" in texts(leave)


def test_an_expired_request_left_suspended_says_so_and_keeps_its_buttons() -> None:
    rule = Rule(name="manual", expiry=Expiry(action="leave"))
    request = pending(rule=rule, expired_at=POSTED + timedelta(hours=24))

    rendered = message.render_request(make_job(REF.job_id), REF, request, 1_000_000)

    assert "nobody decided within 24 h. The job is left Suspended. A late decision is still possible." in texts(
        rendered
    )
    assert any(block.get("type") == "actions" for block in rendered.blocks)


def test_a_job_the_expiry_cancelled_says_it_expired_not_who_cancelled_it() -> None:
    request = pending().model_copy(
        update={
            "state": RequestState.CANCELLED,
            "decision_origin": "system:expiry",
            "decided_at": POSTED + timedelta(hours=24),
            "decision_reason": "Expired: no decision within 24 h (policy default)",
        }
    )

    rendered = message.render_request(make_job(REF.job_id, "Cancelled"), REF, request, 1_000_000)
    told = message.already_decided_text(request)

    assert "expired and cancelled" in rendered.blocks[0]["text"]["text"]
    assert "nobody decided within 24 h, so the job was cancelled" in texts(rendered)
    assert "Expires" not in texts(rendered)
    assert told.startswith("Job `job-0001-abcdef` expired on 2 Dec 2026 09:30 UTC: nobody decided within 24 h")
    assert told.endswith("Nothing was changed.")


def test_a_reminder_names_at_most_twenty_people_and_fits_block_kit() -> None:
    many = [message.user_mention(f"U{index:08d}") for index in range(60)]

    reminder = message.render_reminder(pending(), 2, 4, many, [], POSTED + timedelta(minutes=45))

    text = reminder.blocks[0]["text"]["text"]
    assert text.startswith("⏰ *Reminder 2 of 4*: job `job-0001-abcdef` has waited 45 min for a decision.")
    assert text.count("<@U") == message.MAX_MENTIONS
    assert "and 40 more" in text
    message.validate_message(reminder)


def test_waited_time_reads_naturally() -> None:
    assert message.waited_text(POSTED, POSTED + timedelta(minutes=45)) == "45 min"
    assert message.waited_text(POSTED, POSTED + timedelta(hours=3, minutes=45)) == "3 h 45 min"
    assert message.waited_text(POSTED, POSTED + timedelta(days=2, hours=3)) == "2 days 3 h"
