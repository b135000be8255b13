"""The Slack stand-in's side of the approver's queue: views.publish as strict as Slack, response_url's
5 posts in 30 minutes, and Events API deliveries signed, timed (3 s) and retried as Slack does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from sandbox.slack import RESPONSE_URL_POSTS, SlackStandIn

ALICE = "U0ALICE01"
SECRET = "stand-in-signing-secret"


class At(SignatureClock):
    def __init__(self, at: str) -> None:
        self._at = float(at)

    def now(self) -> float:
        return self._at


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def slack(clock: Clock) -> Iterator[SlackStandIn]:
    with SlackStandIn(users=[{"id": ALICE, "name": "alice"}], channels=["C0APPROVALS"], clock=clock) as standin:
        yield standin


def client(slack: SlackStandIn) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url)


def home(blocks: int = 1, **changes: Any) -> dict[str, Any]:
    view = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"line {n}"}} for n in range(blocks)],
    }
    return {**view, **changes}


def test_views_publish_keeps_each_persons_home(slack: SlackStandIn) -> None:
    # when
    response = client(slack).views_publish(user_id=ALICE, view=home(3))

    # then
    assert response["ok"]
    assert response["view"]["id"].startswith("V")
    stored = slack.home_view(ALICE)
    assert stored is not None
    assert len(stored["blocks"]) == 3
    assert "line 2" in slack.render_home(ALICE)


@pytest.mark.parametrize(
    ("view", "problem"),
    [
        (home(type="modal"), "must be `home` [json-pointer:/view/type]"),
        (home(101), "no more than 100 items allowed [json-pointer:/view/blocks]"),
        (
            {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
            "must be less than 3001 characters [json-pointer:/view/blocks/0/text/text]",
        ),
        ({"type": "home"}, "missing required field [json-pointer:/view/blocks]"),
    ],
)
def test_views_publish_refuses_what_slack_refuses(slack: SlackStandIn, view: dict[str, Any], problem: str) -> None:
    # when
    with pytest.raises(SlackApiError) as raised:
        client(slack).views_publish(user_id=ALICE, view=view)

    # then
    assert raised.value.response["error"] == "invalid_arguments"
    assert any(problem in message for message in raised.value.response["response_metadata"]["messages"])
    assert slack.home_view(ALICE) is None


def test_views_publish_needs_a_known_user(slack: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as raised:
        client(slack).views_publish(user_id="U0NOBODY1", view=home())
    assert raised.value.response["error"] == "user_not_found"


def test_a_response_url_takes_five_posts_as_ephemerals_then_refuses(slack: SlackStandIn) -> None:
    # given
    url = slack.issue_response_url(ALICE, "C0APPROVALS")
    hook = WebhookClient(url)

    # when
    answers = [hook.send(text=f"reply {n}", response_type="ephemeral") for n in range(RESPONSE_URL_POSTS + 1)]

    # then
    assert [a.status_code for a in answers] == [200] * 5 + [404]
    assert answers[-1].body == "used_url"
    assert [e.text for e in slack.ephemerals(ALICE)] == [f"reply {n}" for n in range(5)]
    assert {e.channel for e in slack.ephemerals(ALICE)} == {"C0APPROVALS"}


def test_a_response_url_expires_after_thirty_minutes(slack: SlackStandIn, clock: Clock) -> None:
    # given
    url = slack.issue_response_url(ALICE, "C0APPROVALS")

    # when
    clock.now += 30 * 60 + 1
    answer = WebhookClient(url).send(text="too late")

    # then
    assert (answer.status_code, answer.body) == (404, "expired_url")
    assert slack.ephemerals(ALICE) == []


def test_a_response_url_checks_blocks_like_a_message(slack: SlackStandIn) -> None:
    answer = WebhookClient(slack.issue_response_url(ALICE)).send(text="x", blocks=[{"type": "nonsense"}])
    assert answer.status_code == 400


class App:
    """An app endpoint that records what Slack sent and answers as told (status, delay)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], str]] = []
        self.status = 200
        self.delay = 0.0
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                app.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(app.delay)
                self.send_response(app.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app() -> Iterator[App]:
    endpoint = App()
    yield endpoint
    endpoint.close()


def test_an_event_is_signed_as_slack_signs_it(slack: SlackStandIn, app: App) -> None:
    # when
    [delivery] = slack.send_event(app.url, slack.app_home_opened_event(ALICE), SECRET)

    # then
    assert delivery.acknowledged
    [(headers, body)] = app.received
    timestamp = headers["x-slack-request-timestamp"]
    assert SignatureVerifier(SECRET, clock=At(timestamp)).is_valid(body, timestamp, headers["x-slack-signature"])
    event = json.loads(body)
    assert (event["type"], event["event"]["type"], event["event"]["user"]) == (
        "event_callback",
        "app_home_opened",
        ALICE,
    )
    assert event["event_id"].startswith("Ev")


def test_an_event_not_acknowledged_is_retried_with_the_same_event_id(slack: SlackStandIn, app: App) -> None:
    # given
    app.status = 500

    # when
    deliveries = slack.send_event(app.url, slack.app_home_opened_event(ALICE), SECRET)

    # then
    assert [d.retry_num for d in deliveries] == [0, 1, 2, 3]
    assert not any(d.acknowledged for d in deliveries)
    ids = {json.loads(body)["event_id"] for _, body in app.received}
    assert len(ids) == 1
    assert [h.get("x-slack-retry-num") for h, _ in app.received] == [None, "1", "2", "3"]
    assert app.received[1][0]["x-slack-retry-reason"] == "http_error"


def test_an_answer_slower_than_three_seconds_is_a_timeout(slack: SlackStandIn, app: App) -> None:
    # given
    app.delay = 3.5

    # when
    deliveries = slack.send_event(app.url, slack.app_home_opened_event(ALICE), SECRET, retries=1)

    # then
    assert [d.status for d in deliveries] == [None, None]
    assert app.received[1][0]["x-slack-retry-reason"] == "http_timeout"


def test_a_click_on_a_home_button_carries_a_view_and_no_channel(slack: SlackStandIn) -> None:
    # given
    button = {
        "type": "button",
        "action_id": "approve_job",
        "text": {"type": "plain_text", "text": "Approve"},
        "value": '{"job_id":"job-0001-abcdef"}',
    }
    actions = {"type": "actions", "block_id": "decision:job-0001-abcdef", "elements": [button]}
    client(slack).views_publish(user_id=ALICE, view={"type": "home", "blocks": [actions]})

    # when
    payload = slack.home_block_actions_payload(ALICE, "job-0001-abcdef", "approve_job")

    # then
    assert payload["container"]["type"] == "view"
    assert "channel" not in payload
    assert "message" not in payload
    assert payload["actions"][0]["value"] == button["value"]
