"""Slack payloads → what to do: typed, validated, never an S3 call for a bad request."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from approvals.domain.interactions import (
    BadInteraction,
    ForeignTeam,
    ModalErrors,
    Nothing,
    OpenReasonModal,
    Queue,
    interpret,
    parse_payload,
    read,
)
from approvals.models.job import JobRef
from approvals.models.slack import ButtonValue, ModalMetadata
from tests.helpers import load_event

REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0001-abcdef")


def block_actions(action_id: str = "approve_job", value: str | None = None) -> dict[str, Any]:
    payload = load_event("slack_block_actions_approve")
    payload["actions"][0]["action_id"] = action_id
    payload["actions"][0]["value"] = ButtonValue.from_ref(REF).encode() if value is None else value
    return payload


def submission(reason: str, metadata: str | None = None) -> dict[str, Any]:
    payload = load_event("slack_view_submission_cancel")
    payload["view"]["private_metadata"] = (
        metadata or ModalMetadata(job=REF, channel="C0APPROVALS", message_ts="1.2").encode()
    )
    payload["view"]["state"]["values"]["reason"]["reason_input"]["value"] = reason
    return payload


def act(payload: dict[str, Any]) -> Any:
    return interpret(parse_payload(json.dumps(payload)), correlation_id="req-1")


def test_an_approve_click_becomes_a_queued_approval_for_that_job_and_person() -> None:
    # when
    action = act(block_actions())
    # then
    assert isinstance(action, Queue)
    assert action.command.job == REF
    assert action.command.decision == "approve"
    assert action.command.actor.user_id == "UALICE001"
    assert action.command.actor.team_id == "T0APPROVE"
    assert action.command.channel == "C0APPROVALS"


def test_a_cancel_click_opens_the_reason_modal_with_the_trigger() -> None:
    # when
    action = act(block_actions("cancel_job"))
    # then
    assert isinstance(action, OpenReasonModal)
    assert action.trigger_id == "123456.789.abcdef"
    assert action.metadata.job == REF


def test_a_submitted_reason_becomes_a_queued_cancellation() -> None:
    # when
    action = act(submission("  wrong manifest  "))
    # then
    assert isinstance(action, Queue)
    assert (action.command.decision, action.command.reason) == ("cancel", "wrong manifest")
    assert action.command.message_ts == "1.2"


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_an_empty_reason_is_refused_in_the_modal(reason: str) -> None:
    # when
    action = act(submission(reason))
    # then
    assert isinstance(action, ModalErrors)
    assert "reason" in action.errors


def test_a_closed_modal_does_nothing() -> None:
    assert isinstance(act({"type": "view_closed", "user": {"id": "UALICE001"}}), Nothing)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "no payload"),
        ("not json", "not JSON"),
        (json.dumps([1, 2]), "no type"),
        (json.dumps({"type": "shortcut", "user": {"id": "U1"}}), "unsupported payload type"),
        (json.dumps({"type": "block_actions", "user": {"id": "U1"}, "actions": []}), "malformed payload"),
    ],
)
def test_malformed_payloads_are_refused_with_a_clear_reason(payload: str | None, message: str) -> None:
    with pytest.raises(BadInteraction, match=message):
        parse_payload(payload)


@pytest.mark.parametrize(
    ("action_id", "value", "message"),
    [
        ("delete_bucket", None, "unknown action"),
        ("approve_job", "", "carries no job"),
        ("approve_job", "{not json", "names no valid job"),
        ("approve_job", json.dumps({"account_id": "12345", "region": "us-east-1", "job_id": "job-0001"}), "12 digits"),
        ("approve_job", json.dumps({"account_id": "123456789012", "region": "us-east-1", "job_id": "ab"}), "5 to 36"),
        (
            "approve_job",
            json.dumps({"account_id": "123456789012", "region": "us-east-1", "job_id": "a/../b"}),
            "5 to 36",
        ),
        ("approve_job", json.dumps({"account_id": "123456789012", "region": "moon", "job_id": "job-0001"}), "region"),
    ],
)
def test_bad_buttons_are_refused_with_a_clear_reason(action_id: str, value: str | None, message: str) -> None:
    with pytest.raises(BadInteraction, match=message):
        act(block_actions(action_id, value))


def test_an_oversized_button_value_is_refused() -> None:
    with pytest.raises(BadInteraction, match="malformed payload"):
        act(block_actions(value="x" * 2001))


def test_a_submission_of_an_unknown_form_is_refused() -> None:
    payload = submission("because")
    payload["view"]["callback_id"] = "something_else"
    with pytest.raises(BadInteraction, match="unknown form"):
        act(payload)


def test_a_submission_whose_metadata_names_no_valid_job_is_refused() -> None:
    with pytest.raises(BadInteraction, match="names no valid job"):
        act(submission("because", metadata='{"job": {"account_id": "1", "region": "us-east-1", "job_id": "x"}}'))


def test_a_request_from_another_workspace_is_refused_as_foreign_before_the_rest_is_read() -> None:
    # given a Slack Connect guest's click that is malformed as well
    payload = block_actions()
    payload["user"]["team_id"] = "T0OTHER01"
    payload["actions"] = []
    body = urlencode({"payload": json.dumps(payload)})
    # when / then
    with pytest.raises(ForeignTeam, match="'T0OTHER01'"):
        read(body, ("T0APPROVE",), correlation_id="req-1")


def test_a_payload_nested_deeper_than_the_json_parser_goes_is_a_bad_interaction() -> None:
    with pytest.raises(BadInteraction, match="not JSON"):
        read("payload=" + "[" * 50_000, ("T0APPROVE",), correlation_id="req-1")
