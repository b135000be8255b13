"""The approver's queue end to end, over real HTTP: Slack's stand-in opens Home and runs the slash command,
signed as Slack signs them, through API Gateway's stand-in, the callback, the decisions queue and the decider,
to views.publish and the command's response_url; and a Home-tab click decides through the verified path."""

from __future__ import annotations

import json

from infra import constants as c
from sandbox.local import ALICE, CHANNEL, GINA, MALLORY, LocalDeployment
from sandbox.slack import deliver


def events_url(d: LocalDeployment) -> str:
    return d.api.url_for("/" + c.SLACK_EVENTS_PATH)


def publishes_for(d: LocalDeployment, user: str) -> int:
    return len([call for call in d.slack.calls_to("views.publish") if call.params.get("user_id") == user and call.ok])


def test_url_verification_is_answered_over_http(d: LocalDeployment) -> None:
    # when
    delivery = deliver(
        events_url(d),
        json.dumps({"type": "url_verification", "challenge": "c0ffee"}),
        "application/json",
        d.signing_secret,
    )

    # then
    assert delivery.acknowledged
    assert delivery.json() == {"challenge": "c0ffee"}


def test_a_forged_or_unsigned_event_is_refused(d: LocalDeployment) -> None:
    # given
    envelope = d.slack.app_home_opened_event(MALLORY.id)
    before = publishes_for(d, MALLORY.id)

    # when
    forged = d.slack.send_event(events_url(d), envelope, "not-the-signing-secret", retries=0)
    unsigned = deliver(
        events_url(d), json.dumps(envelope), "application/json", d.signing_secret, headers={"X-Slack-Signature": ""}
    )
    d.settle()

    # then
    assert [delivery.status for delivery in forged] == [401]
    assert unsigned.status == 401
    assert publishes_for(d, MALLORY.id) == before


def test_opening_home_shows_what_waits_and_its_button_approves_through_the_verified_path(
    d: LocalDeployment, suspended_job: str
) -> None:
    # given: the request is in the channel and waits for Alice
    deliveries = d.open_home(ALICE)
    view = d.slack.home_view(ALICE.id)
    assert view is not None
    assert [delivery.acknowledged for delivery in deliveries] == [True]
    assert suspended_job in json.dumps(view)

    # when: Alice clicks Approve on her Home tab (no channel, no message in the payload)
    click = d.click_home(suspended_job, "approve_job", ALICE)
    d.settle()

    # then: decided once, by her, and the channel message shows it
    assert click.status == 200
    record = d.request_record(suspended_job)
    assert record.state == "approved"
    assert record.decider.user_id == ALICE.id
    taken = [r for r in d.audit(suspended_job) if r.event_type == "decision_taken"]
    assert [(r.actor_id, r.action, r.origin) for r in taken] == [(ALICE.id, "approve", "slack")]
    assert d.jobs.job_status(suspended_job) in {"Ready", "Active", "Complete"}
    assert not d.request_message(suspended_job).buttons()


def test_a_retried_event_is_not_processed_twice(d: LocalDeployment, suspended_job: str) -> None:
    # given
    envelope = d.slack.app_home_opened_event(GINA.id)
    body = json.dumps(envelope)
    before = publishes_for(d, GINA.id)

    # when: Slack delivers the event, then retries it (as if the first answer had been lost)
    first = deliver(events_url(d), body, "application/json", d.signing_secret)
    retry = deliver(
        events_url(d),
        body,
        "application/json",
        d.signing_secret,
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    d.settle()

    # then: both acknowledged, one Home published
    assert first.acknowledged
    assert retry.acknowledged
    assert publishes_for(d, GINA.id) == before + 1
    assert suspended_job in json.dumps(d.slack.home_view(GINA.id))


def test_a_slash_command_from_a_non_approver_lists_nothing_it_may_not_see(
    d: LocalDeployment, suspended_job: str
) -> None:
    # when
    pending = d.command("/s3-approvals pending", MALLORY)
    status = d.command(f"/s3-approvals status {suspended_job}", MALLORY)
    home = d.home(MALLORY)

    # then
    assert pending == ["Nothing waits for your decision."]
    assert len(status) == 1
    assert "Nothing to show" in status[0]
    assert "Trail" not in status[0]
    assert suspended_job not in home
    assert all(e.channel == CHANNEL for e in d.slack.ephemerals(MALLORY.id)[-2:])


def test_an_approver_gets_the_list_and_the_status(d: LocalDeployment, suspended_job: str) -> None:
    # when
    pending = d.command("/s3-approvals pending", GINA)
    status = d.command(f"/s3-approvals status {suspended_job}", GINA)
    unknown = d.command("/s3-approvals approve everything", GINA)

    # then
    assert suspended_job in pending[0]
    assert "requested" in status[0]
    assert "Trail" in status[0]
    assert "unknown subcommand" in unknown[0]


def test_cancel_from_home_opens_the_reason_form_and_cancels_once(d: LocalDeployment, suspended_job: str) -> None:
    # given
    d.open_home(GINA)
    views_before = len(d.slack.views())

    # when
    click = d.click_home(suspended_job, "cancel_job", GINA)
    submitted = d.submit_reason(GINA, "wrong prefix")
    d.settle()

    # then
    assert (click.status, submitted.status) == (200, 200)
    assert len(d.slack.views()) == views_before + 1
    record = d.request_record(suspended_job)
    assert (record.state, record.decider.user_id, record.decision_reason) == ("cancelled", GINA.id, "wrong prefix")
    assert d.jobs.job_status(suspended_job) in {"Cancelling", "Cancelled"}


def test_a_click_on_a_stale_home_view_is_told_who_decided_in_the_requests_channel(
    d: LocalDeployment, suspended_job: str
) -> None:
    # given: both approvers have the request on their Home tab, Gina's client still shows the button when
    # Alice decides first (the refresh that follows removes it from Gina's published view)
    d.open_home(ALICE)
    d.open_home(GINA)
    stale = d.slack.home_block_actions_payload(GINA.id, suspended_job, "approve_job")
    d.click_home(suspended_job, "approve_job", ALICE)
    d.settle()
    assert suspended_job not in d.slack.render_home(GINA.id).split("Waiting for you")[1].split("Your jobs")[0]

    # when: Gina clicks on her stale Home view
    late = d.post_payload(stale)
    d.settle()

    # then: nothing more happened, and she was told, where the request is
    assert late.status == 200
    taken = [r for r in d.audit(suspended_job) if r.event_type == "decision_taken"]
    assert [r.actor_id for r in taken] == [ALICE.id]
    [told] = [e for e in d.slack.ephemerals(GINA.id) if suspended_job in e.text]
    assert told.channel == CHANNEL
    assert "already approved" in told.text
