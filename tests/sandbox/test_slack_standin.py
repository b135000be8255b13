"""The Slack Web API stand-in, driven through the real slack_sdk.WebClient over HTTP."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from sandbox.slack import SlackStandIn, block_kit_builder_url

TOKEN = "xoxb-test-token"
CHANNEL = "C0APPROVALS"
PRIVATE = "C0PRIVATE"
ALICE, BOB, CAROL = "UALICE001", "UBOB00002", "UCAROL003"
APPROVERS = "S0APPROVERS"


def text(value: str, kind: str = "plain_text") -> dict[str, str]:
    return {"type": kind, "text": value}


def button(label: str, action_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": text(label), "action_id": action_id, "value": "job-1", **extra}


def confirm(**overrides: str) -> dict[str, Any]:
    parts = {"title": "Cancel job?", "text": "The job will not run.", "confirm": "Cancel it", "deny": "Keep it"}
    parts.update(overrides)
    return {key: text(value) for key, value in parts.items()}


def approval_blocks() -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": text("S3 Batch job awaiting approval")},
        {
            "type": "section",
            "text": text("Job *job-1* copies objects to `archive-bucket`", "mrkdwn"),
            "fields": [text("*Operation*\nS3PutObjectCopy", "mrkdwn"), text("*Tasks*\n1,200", "mrkdwn")],
        },
        {"type": "divider"},
        {"type": "context", "elements": [text("Created 2024-05-01 12:00 UTC", "mrkdwn")]},
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [
                button("Approve", "approve_job", style="primary"),
                button("Cancel", "cancel_job", style="danger", confirm=confirm()),
            ],
        },
    ]


METADATA = {"event_type": "approval_requested", "event_payload": {"job_id": "job-1"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackStandIn]:
    standin = SlackStandIn(
        bot_token=TOKEN,
        users=[
            {"id": ALICE, "name": "alice", "real_name": "Alice Archer", "display_name": "alice"},
            {"id": BOB, "name": "bob", "real_name": "Bob Baker", "display_name": "bobby"},
            {"id": CAROL, "name": "carol", "real_name": "Carol Cole", "display_name": ""},
        ],
        groups={APPROVERS: [ALICE, BOB]},
        channels=[{"id": CHANNEL, "name": "s3-approvals"}, {"id": PRIVATE, "name": "ops", "members": [ALICE]}],
        clock=clock,
    )
    with standin:
        yield standin


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.url + "/api/")


def slack_error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response.data  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- chat.postMessage


def test_a_posted_message_is_kept_with_its_blocks_and_metadata(slack: SlackStandIn, client: WebClient) -> None:
    # when
    response = client.chat_postMessage(
        channel=CHANNEL, text="Job job-1 awaits approval", blocks=approval_blocks(), metadata=METADATA
    )

    # then
    assert response["ok"] is True
    assert response["channel"] == CHANNEL
    assert response["message"]["blocks"] == approval_blocks()
    stored = slack.message(CHANNEL, response["ts"])
    assert (stored.text, stored.blocks, stored.metadata) == ("Job job-1 awaits approval", approval_blocks(), METADATA)
    assert stored.user == slack.bot_user_id
    assert slack.messages("#s3-approvals") == [stored]


def test_timestamps_are_unique_and_increasing_even_when_the_clock_stands_still(
    slack: SlackStandIn, client: WebClient
) -> None:
    # when
    stamps = [client.chat_postMessage(channel=CHANNEL, text=f"n{i}")["ts"] for i in range(3)]

    # then
    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 3
    assert stamps[0] == "1700000000.000000"
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


def test_form_encoded_blocks_and_metadata_are_decoded_like_json(slack: SlackStandIn, client: WebClient) -> None:
    # given: what a client that form-encodes sends, JSON strings inside the form body
    params = {
        "channel": CHANNEL,
        "text": "fallback",
        "blocks": json.dumps(approval_blocks()),
        "metadata": json.dumps(METADATA),
    }

    # when
    response = client.api_call("chat.postMessage", params=params)

    # then
    call = slack.calls[-1]
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params["blocks"] == approval_blocks()
    assert call.params["metadata"] == METADATA
    assert slack.message(CHANNEL, response["ts"]).blocks == approval_blocks()


def test_the_token_may_come_as_a_form_field(slack: SlackStandIn) -> None:
    # given
    body = urlencode({"token": TOKEN, "channel": CHANNEL, "text": "hi"}).encode()
    request = urllib.request.Request(slack.url + "/api/chat.postMessage", data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")

    # when
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.loads(response.read())

    # then
    assert answer["ok"] is True
    assert slack.calls[-1].token == TOKEN


@pytest.mark.parametrize(("token", "error"), [("", "not_authed"), ("xoxb-wrong", "invalid_auth")])
def test_a_missing_or_wrong_token_is_refused(slack: SlackStandIn, token: str, error: str) -> None:
    # given
    client = WebClient(token=token or None, base_url=slack.url + "/api/")

    # when
    response = slack_error(lambda: client.chat_postMessage(channel=CHANNEL, text="hi"))

    # then
    assert response == {"ok": False, "error": error}
    assert slack.messages(CHANNEL) == []


@pytest.mark.parametrize("channel", ["C0NOWHERE", "", "#no-such-channel"])
def test_an_unknown_channel_is_channel_not_found(client: WebClient, channel: str) -> None:
    # when
    response = slack_error(lambda: client.chat_postMessage(channel=channel, text="hi"))

    # then
    assert response["error"] == "channel_not_found"


def test_a_message_without_text_or_blocks_is_no_text(client: WebClient) -> None:
    # when
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        response = slack_error(lambda: client.chat_postMessage(channel=CHANNEL, text=" "))

    # then
    assert response["error"] == "no_text"


def test_text_over_40000_characters_is_msg_too_long(client: WebClient) -> None:
    # when
    response = slack_error(lambda: client.chat_postMessage(channel=CHANNEL, text="x" * 40_001))

    # then
    assert response["error"] == "msg_too_long"


def test_posting_to_a_user_id_lands_in_a_direct_message(slack: SlackStandIn, client: WebClient) -> None:
    # when
    response = client.chat_postMessage(channel=ALICE, text="psst")

    # then
    assert response["channel"].startswith("D")
    assert [m.text for m in slack.messages(response["channel"])] == ["psst"]


def with_block(block: dict[str, Any]) -> list[dict[str, Any]]:
    return [block]


def with_button(**fields: Any) -> list[dict[str, Any]]:
    element = {**button("Approve", "approve_job"), **fields}
    return [{"type": "actions", "elements": [element]}]


INVALID_BLOCKS = {
    "51 blocks": ([{"type": "divider"}] * 51, "/blocks"),
    "section text 3001": (with_block({"type": "section", "text": text("x" * 3001, "mrkdwn")}), "/blocks/0/text/text"),
    "section field 2001": (
        with_block({"type": "section", "fields": [text("x" * 2001, "mrkdwn")]}),
        "/blocks/0/fields/0/text",
    ),
    "section without text": (with_block({"type": "section"}), "/blocks/0"),
    "header 151": (with_block({"type": "header", "text": text("x" * 151)}), "/blocks/0/text/text"),
    "header in mrkdwn": (with_block({"type": "header", "text": text("x", "mrkdwn")}), "/blocks/0/text/type"),
    "empty text": (with_block({"type": "section", "text": text("")}), "/blocks/0/text/text"),
    "button text 76": (with_button(text=text("x" * 76)), "/blocks/0/elements/0/text/text"),
    "button value 2001": (with_button(value="x" * 2001), "/blocks/0/elements/0/value"),
    "action_id 256": (with_button(action_id="x" * 256), "/blocks/0/elements/0/action_id"),
    "button style": (with_button(style="green"), "/blocks/0/elements/0/style"),
    "confirm title 101": (with_button(confirm=confirm(title="x" * 101)), "/blocks/0/elements/0/confirm/title/text"),
    "confirm text 301": (with_button(confirm=confirm(text="x" * 301)), "/blocks/0/elements/0/confirm/text/text"),
    "confirm confirm 31": (
        with_button(confirm=confirm(confirm="x" * 31)),
        "/blocks/0/elements/0/confirm/confirm/text",
    ),
    "confirm deny 31": (with_button(confirm=confirm(deny="x" * 31)), "/blocks/0/elements/0/confirm/deny/text"),
    "duplicate block_id": (
        [{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}],
        "/blocks/1/block_id",
    ),
    "unknown block type": (with_block({"type": "carousel"}), "/blocks/0/type"),
    "text input in actions": (
        with_block({"type": "actions", "elements": [{"type": "plain_text_input", "action_id": "x"}]}),
        "/blocks/0/elements/0/type",
    ),
}


@pytest.mark.parametrize(("blocks", "pointer"), INVALID_BLOCKS.values(), ids=INVALID_BLOCKS.keys())
def test_blocks_past_a_block_kit_limit_are_invalid_blocks(
    slack: SlackStandIn, client: WebClient, blocks: list[dict[str, Any]], pointer: str
) -> None:
    # when
    response = slack_error(lambda: client.chat_postMessage(channel=CHANNEL, text="fallback", blocks=blocks))

    # then
    assert response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in message for message in response["response_metadata"]["messages"])
    assert slack.messages(CHANNEL) == []


def test_blocks_right_at_the_limits_are_accepted(client: WebClient) -> None:
    # given
    at_limits = with_button(
        text=text("x" * 75),
        value="x" * 2000,
        action_id="x" * 255,
        confirm=confirm(title="x" * 100, text="x" * 300, confirm="x" * 30, deny="x" * 30),
    )
    blocks = [
        {"type": "header", "text": text("x" * 150)},
        {"type": "section", "text": text("x" * 3000, "mrkdwn")},
        *at_limits,
        *[{"type": "divider"}] * 47,
    ]

    # when
    response = client.chat_postMessage(channel=CHANNEL, text="fallback", blocks=blocks)

    # then
    assert response["ok"] is True
    assert len(blocks) == 50


@pytest.mark.parametrize("raw", ["[not json", '{"type": "divider"}'])
def test_blocks_that_are_not_a_json_array_are_invalid_blocks_format(client: WebClient, raw: str) -> None:
    # when
    response = slack_error(
        lambda: client.api_call("chat.postMessage", params={"channel": CHANNEL, "text": "x", "blocks": raw})
    )

    # then
    assert response["error"] == "invalid_blocks_format"


def test_metadata_without_event_type_is_invalid_metadata_schema(client: WebClient) -> None:
    # when
    response = slack_error(
        lambda: client.chat_postMessage(channel=CHANNEL, text="x", metadata={"event_payload": {"a": 1}})
    )

    # then
    assert response["error"] == "invalid_metadata_schema"


# ----------------------------------------------------------------------------- threads


def test_a_reply_is_recorded_in_its_parents_thread(slack: SlackStandIn, client: WebClient) -> None:
    # given
    parent = client.chat_postMessage(channel=CHANNEL, text="approval")["ts"]

    # when
    first = client.chat_postMessage(channel=CHANNEL, text="Approved by alice", thread_ts=parent)
    second = client.chat_postMessage(channel=CHANNEL, text="Job is running", thread_ts=first["ts"])

    # then
    assert [reply.text for reply in slack.thread(CHANNEL, parent)] == ["Approved by alice", "Job is running"]
    assert first["message"]["thread_ts"] == parent
    assert second["message"]["thread_ts"] == parent
    assert [m.ts for m in slack.messages(CHANNEL)] == [parent]


# ----------------------------------------------------------------------------- chat.update


def test_an_update_replaces_the_blocks_and_keeps_the_earlier_version(slack: SlackStandIn, client: WebClient) -> None:
    # given
    ts = client.chat_postMessage(channel=CHANNEL, text="awaiting", blocks=approval_blocks(), metadata=METADATA)["ts"]
    decided = [{"type": "section", "text": text(":white_check_mark: Approved by <@UALICE001>", "mrkdwn")}]

    # when
    response = client.chat_update(channel=CHANNEL, ts=ts, text="approved", blocks=decided)

    # then
    assert (response["ts"], response["text"]) == (ts, "approved")
    stored = slack.message(CHANNEL, ts)
    assert (stored.text, stored.blocks) == ("approved", decided)
    assert stored.metadata == METADATA
    assert [edit["blocks"] for edit in stored.edits] == [approval_blocks()]
    assert stored.edited


def test_an_update_without_blocks_keeps_them_and_empty_metadata_removes_it(
    slack: SlackStandIn, client: WebClient
) -> None:
    # given
    ts = client.chat_postMessage(channel=CHANNEL, text="awaiting", blocks=approval_blocks(), metadata=METADATA)["ts"]

    # when
    client.chat_update(channel=CHANNEL, ts=ts, text="still awaiting", metadata={})

    # then
    stored = slack.message(CHANNEL, ts)
    assert stored.blocks == approval_blocks()
    assert stored.metadata is None


def test_updating_an_unknown_message_is_message_not_found(client: WebClient) -> None:
    # when
    response = slack_error(lambda: client.chat_update(channel=CHANNEL, ts="1600000000.000001", text="x"))

    # then
    assert response["error"] == "message_not_found"


def test_updating_a_persons_message_is_cant_update_message(slack: SlackStandIn, client: WebClient) -> None:
    # given
    theirs = slack.add_message(CHANNEL, "hello from alice", user=ALICE)

    # when
    response = slack_error(lambda: client.chat_update(channel=CHANNEL, ts=theirs.ts, text="edited"))

    # then
    assert response["error"] == "cant_update_message"
    assert slack.message(CHANNEL, theirs.ts).text == "hello from alice"


def test_an_update_with_invalid_blocks_leaves_the_message_alone(slack: SlackStandIn, client: WebClient) -> None:
    # given
    ts = client.chat_postMessage(channel=CHANNEL, text="awaiting", blocks=approval_blocks())["ts"]

    # when
    response = slack_error(
        lambda: client.chat_update(channel=CHANNEL, ts=ts, text="x", blocks=[{"type": "divider"}] * 51)
    )

    # then
    assert response["error"] == "invalid_blocks"
    assert slack.message(CHANNEL, ts).blocks == approval_blocks()
    assert slack.message(CHANNEL, ts).edits == []


# ----------------------------------------------------------------------------- chat.postEphemeral


def test_an_ephemeral_is_recorded_for_its_user(slack: SlackStandIn, client: WebClient) -> None:
    # when
    response = client.chat_postEphemeral(channel=CHANNEL, user=CAROL, text="You are not an approver")

    # then
    assert response["message_ts"]
    (ephemeral,) = slack.ephemerals(user=CAROL)
    assert (ephemeral.channel, ephemeral.text) == (CHANNEL, "You are not an approver")
    assert slack.ephemerals(user=ALICE) == []


@pytest.mark.parametrize(
    ("channel", "user", "error"),
    [
        (PRIVATE, BOB, "user_not_in_channel"),
        (CHANNEL, "UNOBODY", "user_not_found"),
        ("C0NOPE", BOB, "channel_not_found"),
    ],
)
def test_an_ephemeral_to_someone_who_cannot_see_it_is_refused(
    client: WebClient, channel: str, user: str, error: str
) -> None:
    # when
    response = slack_error(lambda: client.chat_postEphemeral(channel=channel, user=user, text="hi"))

    # then
    assert response["error"] == error


# ----------------------------------------------------------------------------- views.open


def modal(**overrides: Any) -> dict[str, Any]:
    view = {
        "type": "modal",
        "callback_id": "cancel_reason",
        "title": text("Cancel job"),
        "submit": text("Cancel job"),
        "close": text("Back"),
        "private_metadata": json.dumps({"job_id": "job-1"}),
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": text("Reason"),
                "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True},
            }
        ],
    }
    view.update(overrides)
    return view


def test_a_trigger_id_the_stand_in_issued_opens_a_modal(slack: SlackStandIn, client: WebClient) -> None:
    # given
    trigger_id = slack.issue_trigger_id(user=ALICE)

    # when
    response = client.views_open(trigger_id=trigger_id, view=modal())

    # then
    assert response["view"]["id"].startswith("V")
    assert response["view"]["private_metadata"] == json.dumps({"job_id": "job-1"})
    (opened,) = slack.views()
    assert (opened.user, opened.callback_id, opened.title) == (ALICE, "cancel_reason", "Cancel job")


def test_a_trigger_id_works_only_once(slack: SlackStandIn, client: WebClient) -> None:
    # given
    trigger_id = slack.issue_trigger_id()
    client.views_open(trigger_id=trigger_id, view=modal())

    # when
    response = slack_error(lambda: client.views_open(trigger_id=trigger_id, view=modal()))

    # then
    assert response["error"] == "exchanged_trigger_id"
    assert len(slack.views()) == 1


def test_a_trigger_id_older_than_three_seconds_has_expired(
    slack: SlackStandIn, client: WebClient, clock: FakeClock
) -> None:
    # given
    trigger_id = slack.issue_trigger_id()
    clock.now += 3.01

    # when
    response = slack_error(lambda: client.views_open(trigger_id=trigger_id, view=modal()))

    # then
    assert response["error"] == "expired_trigger_id"


def test_a_trigger_id_at_three_seconds_still_works(slack: SlackStandIn, client: WebClient, clock: FakeClock) -> None:
    # given
    trigger_id = slack.issue_trigger_id()
    clock.now += 3.0

    # when
    response = client.views_open(trigger_id=trigger_id, view=modal())

    # then
    assert response["ok"] is True


def test_a_trigger_id_the_stand_in_never_issued_is_invalid(client: WebClient) -> None:
    # when
    response = slack_error(lambda: client.views_open(trigger_id="12345.98765.abcd2358fdea", view=modal()))

    # then
    assert response["error"] == "invalid_trigger_id"


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"title": text("x" * 25)}, "/view/title/text"),
        ({"private_metadata": "x" * 3001}, "/view/private_metadata"),
        ({"submit": text("x" * 25)}, "/view/submit/text"),
        ({"type": "home"}, "/view/type"),
        ({"blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
    ],
    ids=["title 25", "private_metadata 3001", "submit 25", "home tab", "101 blocks"],
)
def test_a_modal_past_its_limits_is_invalid_arguments_and_keeps_the_trigger(
    slack: SlackStandIn, client: WebClient, overrides: dict[str, Any], pointer: str
) -> None:
    # given
    trigger_id = slack.issue_trigger_id()

    # when
    response = slack_error(lambda: client.views_open(trigger_id=trigger_id, view=modal(**overrides)))

    # then
    assert response["error"] == "invalid_arguments"
    assert any(f"[json-pointer:{pointer}]" in message for message in response["response_metadata"]["messages"])
    assert client.views_open(trigger_id=trigger_id, view=modal())["ok"] is True


def test_a_modal_at_its_limits_opens(slack: SlackStandIn, client: WebClient) -> None:
    # when
    response = client.views_open(
        trigger_id=slack.issue_trigger_id(), view=modal(title=text("x" * 24), private_metadata="x" * 3000)
    )

    # then
    assert response["ok"] is True


# ----------------------------------------------------------------------------- users and groups


def test_a_user_group_lists_its_members(client: WebClient) -> None:
    # when
    response = client.usergroups_users_list(usergroup=APPROVERS)

    # then
    assert response["users"] == [ALICE, BOB]


def test_an_unknown_user_group_is_no_such_subteam(client: WebClient) -> None:
    # when
    response = slack_error(lambda: client.usergroups_users_list(usergroup="S0NOPE"))

    # then
    assert response["error"] == "no_such_subteam"


def test_users_info_returns_names_and_profile(client: WebClient) -> None:
    # when
    user = client.users_info(user=BOB)["user"]

    # then
    assert (user["id"], user["name"], user["real_name"]) == (BOB, "bob", "Bob Baker")
    assert user["profile"]["display_name"] == "bobby"
    assert user["is_bot"] is False


def test_an_unknown_user_is_user_not_found(client: WebClient) -> None:
    # when
    response = slack_error(lambda: client.users_info(user="UNOBODY"))

    # then
    assert response["error"] == "user_not_found"


# ----------------------------------------------------------------------------- faults


def test_a_rate_limited_call_succeeds_on_retry_with_the_rate_limit_handler(slack: SlackStandIn) -> None:
    # given
    slack.rate_limit("chat.postMessage", times=1, retry_after=0)
    client = WebClient(
        token=TOKEN, base_url=slack.url + "/api/", retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )

    # when
    response = client.chat_postMessage(channel=CHANNEL, text="hi")

    # then
    assert response["ok"] is True
    assert [(call.status, call.error) for call in slack.calls_to("chat.postMessage")] == [
        (429, "ratelimited"),
        (200, None),
    ]
    assert len(slack.messages(CHANNEL)) == 1


def test_a_rate_limited_call_fails_without_a_retry_handler(slack: SlackStandIn, client: WebClient) -> None:
    # given
    slack.rate_limit("chat.postMessage", times=1, retry_after=7)

    # when
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=CHANNEL, text="hi")

    # then
    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert raised.value.response.headers["Retry-After"] == "7"
    assert slack.messages(CHANNEL) == []
    assert client.chat_postMessage(channel=CHANNEL, text="hi")["ok"] is True


def test_an_injected_failure_answers_that_error_the_given_number_of_times(
    slack: SlackStandIn, client: WebClient
) -> None:
    # given
    slack.fail("chat.update", "fatal_error", times=2)
    ts = client.chat_postMessage(channel=CHANNEL, text="a")["ts"]

    # when
    errors = [slack_error(lambda: client.chat_update(channel=CHANNEL, ts=ts, text="b"))["error"] for _ in range(2)]
    third = client.chat_update(channel=CHANNEL, ts=ts, text="b")

    # then
    assert errors == ["fatal_error", "fatal_error"]
    assert third["ok"] is True


def test_a_slow_method_delays_its_answers(slack: SlackStandIn, client: WebClient) -> None:
    # given
    slack.slow("users.info", 0.3)
    started = time.monotonic()

    # when
    client.users_info(user=ALICE)
    client.usergroups_users_list(usergroup=APPROVERS)

    # then
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.6


def test_a_slow_method_can_outlast_the_clients_timeout(slack: SlackStandIn) -> None:
    # given
    slack.slow("chat.postMessage", 0.5, times=1)
    impatient = WebClient(token=TOKEN, base_url=slack.url + "/api/", timeout=0.1)

    # when / then
    with pytest.raises(TimeoutError):
        impatient.chat_postMessage(channel=CHANNEL, text="hi")


# ----------------------------------------------------------------------------- records and rendering


def test_every_call_is_recorded_with_decoded_params_and_the_answer(slack: SlackStandIn, client: WebClient) -> None:
    # given
    client.chat_postMessage(channel=CHANNEL, text="a", blocks=approval_blocks())
    slack_error(lambda: client.users_info(user="UNOBODY"))

    # when
    calls = slack.calls

    # then
    assert len(slack) == 2
    assert [call.method for call in calls] == ["chat.postMessage", "users.info"]
    assert calls[0].params["blocks"] == approval_blocks()
    assert calls[0].ok
    assert not calls[1].ok
    assert calls[1].response == {"ok": False, "error": "user_not_found"}
    assert slack.calls_to("users.info") == [calls[1]]


def test_a_message_renders_readably_in_a_terminal(slack: SlackStandIn, client: WebClient) -> None:
    # given
    ts = client.chat_postMessage(channel=CHANNEL, text="a", blocks=approval_blocks())["ts"]
    client.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=ts)

    # when
    rendered = slack.render_message(CHANNEL, ts)

    # then
    assert "== S3 Batch job awaiting approval ==" in rendered
    assert "Job *job-1* copies objects" in rendered
    assert "*Operation* S3PutObjectCopy" in rendered
    assert "[ Approve ] [ Cancel ]" in rendered
    assert "Approve: primary" in rendered
    assert 'Cancel: danger; confirm "Cancel job?"' in rendered
    assert "1 reply in thread" in rendered


def test_the_block_kit_builder_link_carries_the_blocks() -> None:
    # when
    url = block_kit_builder_url(approval_blocks())

    # then
    prefix = "https://app.slack.com/block-kit-builder#"
    assert url.startswith(prefix)
    assert json.loads(unquote(url.removeprefix(prefix))) == {"blocks": approval_blocks()}


def test_a_click_payload_carries_the_button_and_a_usable_trigger_id(slack: SlackStandIn, client: WebClient) -> None:
    # given
    ts = client.chat_postMessage(channel=CHANNEL, text="a", blocks=approval_blocks())["ts"]

    # when
    payload = slack.block_actions_payload(CHANNEL, ts, "cancel_job", user=BOB)

    # then
    (action,) = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == ("cancel_job", "decision", "job-1")
    assert payload["user"]["id"] == BOB
    assert payload["container"] == {"type": "message", "message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": False}
    assert client.views_open(trigger_id=payload["trigger_id"], view=modal())["ok"] is True
    assert slack.views()[0].user == BOB


def test_concurrent_posts_each_get_their_own_ts(slack: SlackStandIn, client: WebClient) -> None:
    # given: 16 posts at once to one channel (Slack's pace is tested in test_slack_rate_limits.py)
    slack.rate_limits = False
    stamps: list[str] = []
    lock = threading.Lock()

    def post(n: int) -> None:
        ts = client.chat_postMessage(channel=CHANNEL, text=f"n{n}")["ts"]
        with lock:
            stamps.append(ts)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(16)]

    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then
    assert len(set(stamps)) == 16
    assert len(slack.messages(CHANNEL)) == 16


def test_a_long_url_is_never_split_across_lines_in_the_terminal(slack: SlackStandIn, client: WebClient) -> None:
    # given: a section with a link far longer than the terminal's width
    url = "https://s3.console.aws.amazon.com/s3/jobs/" + "a" * 150 + "?region=us-east-1&accountId=123456789012"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"Open it: {url} (the console)"}}]
    ts = client.chat_postMessage(channel=CHANNEL, text="a", blocks=blocks)["ts"]

    # when
    rendered = slack.render_message(CHANNEL, ts)

    # then: the whole URL is on one line, so a terminal can still open it
    assert any(url in line for line in rendered.splitlines())
