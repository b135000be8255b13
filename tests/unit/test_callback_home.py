"""The callback's Events API and slash command routes: verified first, acknowledged at once, queued as Slack
signed them. Driven in-process with API Gateway proxy events (tests/events), the queue and secret on moto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from approvals import wiring
from approvals.domain.interactions import Queue, read
from approvals.models.job import JobRef
from approvals.models.slack import APPROVE_ACTION_ID, ButtonValue, SignedSlackRequest
from infra import constants as c
from sandbox.apigw import LambdaContext
from sandbox.aws_local import LocalAws
from tests.fakes import slash_command_body
from tests.helpers import load_event

SIGNING_SECRET = "test-signing-secret"
TEAM = "T0APPROVE"
ALICE = "U0ALICE01"
HOOK = "https://hooks.slack.com/commands/T0APPROVE/1/abc"
REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0001-abcdef")


class Callback:
    def __init__(self, aws: LocalAws) -> None:
        self.sqs = aws.client("sqs")
        self.queue_url = aws.queue_url
        from approvals.handlers import callback

        self.handler = callback.handler

    def post(
        self,
        path: str,
        body: str,
        *,
        content_type: str = "application/json",
        secret: str | None = SIGNING_SECRET,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        event = load_event("apigw_slack_interaction")
        timestamp = str(int(time.time()))
        signed = {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp, **(headers or {})}
        if secret is not None:
            signed["X-Slack-Signature"] = str(
                SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
            )
        else:
            event["headers"].pop("X-Slack-Signature")
        event["headers"].update(signed)
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
        event.update(resource="/" + path, path="/" + path, body=body)
        event["requestContext"]["resourcePath"] = "/" + path
        response: dict[str, Any] = self.handler(event, LambdaContext("callback", timeout_seconds=10))
        return response

    def queued(self) -> list[SignedSlackRequest]:
        found: list[SignedSlackRequest] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            found += [SignedSlackRequest.model_validate_json(m["Body"]) for m in messages]


@pytest.fixture
def callback(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callback]:
    env = {
        **local_aws.env(),
        "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        c.ENV_SLACK_CHANNEL_ID: "C0APPROVALS",
        c.ENV_APPROVER_USER_IDS: ALICE,
        c.ENV_SLACK_TEAM_ID: TEAM,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wiring.reset_cold_start()
    yield Callback(local_aws)
    wiring.reset_cold_start()


def home_opened(tab: str = "home", team: str = TEAM) -> str:
    event = {"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE01", "tab": tab, "event_ts": "1.2"}
    return json.dumps({"type": "event_callback", "team_id": team, "event_id": "Ev0AB12CD34", "event": event})


def command_form(**overrides: str) -> str:
    return slash_command_body(ALICE, TEAM, HOOK, **overrides)


def test_url_verification_is_answered_with_the_challenge(callback: Callback) -> None:
    # when
    reply = callback.post(c.SLACK_EVENTS_PATH, json.dumps({"type": "url_verification", "challenge": "ch4ll3nge"}))

    # then
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"]) == {"challenge": "ch4ll3nge"}
    assert callback.queued() == []


@pytest.mark.parametrize("secret", [None, "not-the-signing-secret"])
def test_an_unsigned_or_forged_event_is_refused_before_it_is_read(callback: Callback, secret: str | None) -> None:
    # when
    reply = callback.post(
        c.SLACK_EVENTS_PATH, json.dumps({"type": "url_verification", "challenge": "x"}), secret=secret
    )

    # then
    assert reply["statusCode"] == 401
    assert "x" not in reply["body"]
    assert callback.queued() == []


def test_opening_home_is_acked_at_once_and_queued_as_signed(callback: Callback) -> None:
    # given
    body = home_opened()

    # when
    reply = callback.post(c.SLACK_EVENTS_PATH, body)

    # then
    assert (reply["statusCode"], reply["body"]) == (200, "")
    [work] = callback.queued()
    assert (work.intent, work.body) == ("home", body)


def test_a_retried_event_is_queued_too_the_decider_handles_each_event_once(callback: Callback) -> None:
    # when
    first = callback.post(c.SLACK_EVENTS_PATH, home_opened())
    retry = callback.post(
        c.SLACK_EVENTS_PATH,
        home_opened(),
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )

    # then
    assert first["statusCode"] == retry["statusCode"] == 200
    assert [w.intent for w in callback.queued()] == ["home", "home"]


def test_the_messages_tab_is_acked_and_not_queued(callback: Callback) -> None:
    reply = callback.post(c.SLACK_EVENTS_PATH, home_opened(tab="messages"))
    assert reply["statusCode"] == 200
    assert callback.queued() == []


def test_an_event_of_another_workspace_is_refused(callback: Callback) -> None:
    reply = callback.post(c.SLACK_EVENTS_PATH, home_opened(team="T0OTHER99"))
    assert reply["statusCode"] == 403
    assert callback.queued() == []


def test_a_slash_command_is_acked_empty_and_queued(callback: Callback) -> None:
    # given
    body = command_form()

    # when
    reply = callback.post(c.SLACK_COMMANDS_PATH, body, content_type="application/x-www-form-urlencoded")

    # then
    assert (reply["statusCode"], reply["body"]) == (200, "")
    [work] = callback.queued()
    assert (work.intent, work.body) == ("command", body)


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"response_url": "https://evil.example/hook"}, "does not point at Slack"),
        ({"command": "/other-app"}, "unknown command"),
    ],
)
def test_a_command_that_cannot_be_handled_is_told_why_and_not_queued(
    callback: Callback, overrides: dict[str, str], said: str
) -> None:
    # when
    reply = callback.post(
        c.SLACK_COMMANDS_PATH, command_form(**overrides), content_type="application/x-www-form-urlencoded"
    )

    # then
    assert reply["statusCode"] == 200
    answer = json.loads(reply["body"])
    assert answer["response_type"] == "ephemeral"
    assert said in answer["text"]
    assert callback.queued() == []


def test_the_slash_commands_name_is_a_setting(callback: Callback, monkeypatch: pytest.MonkeyPatch) -> None:
    # given
    monkeypatch.setenv(c.ENV_SLASH_COMMAND, "/approvals")
    wiring.reset_cold_start()

    # when
    default = callback.post(c.SLACK_COMMANDS_PATH, command_form(), content_type="application/x-www-form-urlencoded")
    renamed = callback.post(
        c.SLACK_COMMANDS_PATH, command_form(command="/approvals"), content_type="application/x-www-form-urlencoded"
    )

    # then
    assert "unknown command" in json.loads(default["body"])["text"]
    assert renamed["body"] == ""
    assert [w.intent for w in callback.queued()] == ["command"]


def test_an_unsigned_command_is_refused(callback: Callback) -> None:
    reply = callback.post(
        c.SLACK_COMMANDS_PATH, command_form(), content_type="application/x-www-form-urlencoded", secret=None
    )
    assert reply["statusCode"] == 401


def test_a_click_on_a_home_tab_button_is_queued_as_a_decision_without_a_channel(callback: Callback) -> None:
    # given: block_actions from a Home view: container.type "view", no channel and no message
    payload = load_event("slack_block_actions_approve")
    payload.pop("channel", None)
    payload.pop("message", None)
    payload["container"] = {"type": "view", "view_id": "V0HOME0001"}
    payload["view"] = {"id": "V0HOME0001", "type": "home", "blocks": []}
    payload["user"].update(id=ALICE, team_id=TEAM)
    payload["team"] = {"id": TEAM}
    payload["actions"][0].update(action_id=APPROVE_ACTION_ID, value=ButtonValue.from_ref(REF).encode())
    body = urlencode({"payload": json.dumps(payload)})

    # when
    reply = callback.post(c.SLACK_INTERACTIONS_PATH, body, content_type="application/x-www-form-urlencoded")

    # then
    assert reply["statusCode"] == 200
    [work] = callback.queued()
    action = read(work.body, (TEAM,), correlation_id=None)
    assert work.intent == "decide"
    assert isinstance(action, Queue)
    assert (action.command.job, action.command.channel, action.command.message_ts) == (REF, None, None)


def test_other_paths_are_not_found(callback: Callback) -> None:
    assert callback.post("slack/other", "{}")["statusCode"] == 404
