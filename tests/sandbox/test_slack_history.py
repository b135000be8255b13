"""The Slack stand-in's conversations.history, users.lookupByEmail and OAuth scopes, over HTTP with WebClient."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from infra.slack_manifest import BOT_SCOPES
from sandbox.slack import METHOD_SCOPES, SlackStandIn

TOKEN = "xoxb-test-token"
PUBLIC = "C0APPROVALS"
PRIVATE = "G0PRIVATE"
CLOSED = "C0CLOSED"
ALICE, BOB = "UALICE001", "UBOB00002"
BOT_USER = "U0STANDINBOT"
ALL_SCOPES = [*BOT_SCOPES, "channels:history", "groups:history", "im:history", "users:read.email"]
MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Cancel job"}, "blocks": []}
METADATA = {"event_type": "approval_requested", "event_payload": {"job_id": "job-1"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def make_standin(clock: FakeClock, scopes: list[str] | None = ALL_SCOPES) -> SlackStandIn:
    return SlackStandIn(
        bot_token=TOKEN,
        users=[
            {"id": ALICE, "name": "alice", "real_name": "Alice Archer", "email": "alice@example.com"},
            {"id": BOB, "name": "bob", "real_name": "Bob Baker", "email": "bob@example.com", "deleted": True},
        ],
        channels=[
            {"id": PUBLIC, "name": "s3-approvals"},
            {"id": PRIVATE, "name": "ops", "members": [ALICE, BOT_USER], "is_private": True},
            {"id": CLOSED, "name": "secret", "members": [ALICE]},
        ],
        scopes=scopes,
        clock=clock,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackStandIn]:
    with make_standin(clock) as standin:
        yield standin


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.api_url)


def slack_error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response.data  # type: ignore[no-any-return]


def post(client: WebClient, clock: FakeClock, text: str, channel: str = PUBLIC, **extra: Any) -> str:
    """Post one second after the previous post, so that ts values are whole seconds apart."""
    clock.now += 1
    return str(client.chat_postMessage(channel=channel, text=text, **extra)["ts"])


# ----------------------------------------------------------------------------- conversations.history


def test_history_is_newest_first_with_the_shape_slack_documents(
    slack: SlackStandIn, client: WebClient, clock: FakeClock
) -> None:
    # given
    first = post(client, clock, "first", metadata=METADATA)
    clock.now += 1
    theirs = slack.add_message(PUBLIC, "hello from alice", user=ALICE)
    second = post(client, clock, "second")

    # when
    response = client.conversations_history(channel=PUBLIC)

    # then
    assert [m["ts"] for m in response["messages"]] == [second, theirs.ts, first]
    assert response["has_more"] is False
    mine, person = response["messages"][2], response["messages"][1]
    assert (mine["type"], mine["user"], mine["bot_id"], mine["app_id"]) == (
        "message",
        slack.bot_user_id,
        slack.bot_id,
        slack.app_id,
    )
    assert mine["text"] == "first"
    assert (person["user"], "bot_id" in person, "app_id" in person) == (ALICE, False, False)


def test_metadata_comes_back_only_when_asked_for(client: WebClient, clock: FakeClock) -> None:
    # given
    post(client, clock, "request", metadata=METADATA)

    # when
    plain = client.conversations_history(channel=PUBLIC)["messages"][0]
    with_metadata = client.conversations_history(channel=PUBLIC, include_all_metadata=True)["messages"][0]

    # then
    assert "metadata" not in plain
    assert with_metadata["metadata"] == METADATA


def test_replies_are_left_out_and_their_parent_says_it_has_a_thread(
    slack: SlackStandIn, client: WebClient, clock: FakeClock
) -> None:
    # given
    parent = post(client, clock, "request")
    post(client, clock, "approved by alice", thread_ts=parent)
    clock.now += 1
    slack.add_message(PUBLIC, "thanks", user=ALICE, thread_ts=parent)

    # when
    messages = client.conversations_history(channel=PUBLIC)["messages"]

    # then
    (only,) = messages
    assert only["ts"] == parent
    assert only["thread_ts"] == parent
    assert only["reply_count"] == 2
    assert only["reply_users"] == [BOT_USER, ALICE]
    assert only["reply_users_count"] == 2


def test_history_pages_with_a_cursor_until_has_more_is_false(client: WebClient, clock: FakeClock) -> None:
    # given
    stamps = [post(client, clock, f"n{i}") for i in range(7)]

    # when
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        response = client.conversations_history(channel=PUBLIC, limit=3, cursor=cursor)
        pages.append([m["ts"] for m in response["messages"]])
        if not response["has_more"]:
            assert "response_metadata" not in response or not response["response_metadata"].get("next_cursor")
            break
        cursor = response["response_metadata"]["next_cursor"]
        assert cursor

    # then
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [ts for page in pages for ts in page] == list(reversed(stamps))


def test_slack_sdks_own_pagination_walks_every_page(client: WebClient, clock: FakeClock) -> None:
    # given
    stamps = [post(client, clock, f"n{i}") for i in range(5)]

    # when
    seen = [m["ts"] for page in client.conversations_history(channel=PUBLIC, limit=2) for m in page["messages"]]

    # then
    assert seen == list(reversed(stamps))


def test_oldest_and_latest_are_exclusive_unless_inclusive(client: WebClient, clock: FakeClock) -> None:
    # given
    a, b, c, d = (post(client, clock, name) for name in "abcd")

    # when
    exclusive = client.conversations_history(channel=PUBLIC, oldest=a, latest=d)["messages"]
    inclusive = client.conversations_history(channel=PUBLIC, oldest=a, latest=d, inclusive=True)["messages"]
    only_oldest = client.conversations_history(channel=PUBLIC, oldest=b, inclusive=True)["messages"]
    only_latest = client.conversations_history(channel=PUBLIC, latest=c)["messages"]

    # then
    assert [m["ts"] for m in exclusive] == [c, b]
    assert [m["ts"] for m in inclusive] == [d, c, b, a]
    assert [m["ts"] for m in only_oldest] == [d, c, b]
    assert [m["ts"] for m in only_latest] == [b, a]


def test_bounds_compare_microseconds_exactly(client: WebClient, clock: FakeClock) -> None:
    # given: two posts in the same second, one microsecond apart
    first = client.chat_postMessage(channel=PUBLIC, text="a")["ts"]
    second = client.chat_postMessage(channel=PUBLIC, text="b")["ts"]

    # when
    after_first = client.conversations_history(channel=PUBLIC, oldest=first)["messages"]

    # then
    assert [m["ts"] for m in after_first] == [second]


def test_a_page_under_a_bound_pages_within_that_bound(client: WebClient, clock: FakeClock) -> None:
    # given
    stamps = [post(client, clock, f"n{i}") for i in range(6)]

    # when
    first = client.conversations_history(channel=PUBLIC, oldest=stamps[1], limit=2)
    second = client.conversations_history(
        channel=PUBLIC, oldest=stamps[1], limit=2, cursor=first["response_metadata"]["next_cursor"]
    )

    # then
    assert [m["ts"] for m in first["messages"]] == [stamps[5], stamps[4]]
    assert [m["ts"] for m in second["messages"]] == [stamps[3], stamps[2]]
    assert second["has_more"] is False


def test_the_limit_defaults_to_100_and_is_clamped_to_999(
    slack: SlackStandIn, client: WebClient, clock: FakeClock
) -> None:
    # given
    for i in range(1001):
        slack.add_message(PUBLIC, f"n{i}", user=ALICE)

    # when
    default = client.conversations_history(channel=PUBLIC)
    huge = client.conversations_history(channel=PUBLIC, limit=5000)

    # then
    assert len(default["messages"]) == 100
    assert len(huge["messages"]) == 999
    assert huge["has_more"] is True


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"channel": "C0NOWHERE"}, "channel_not_found"),
        ({"channel": "#s3-approvals"}, "channel_not_found"),
        ({"channel": ALICE}, "channel_not_found"),
        ({"channel": ""}, "channel_not_found"),
        ({"channel": CLOSED}, "not_in_channel"),
        ({"channel": PUBLIC, "oldest": "yesterday"}, "invalid_ts_oldest"),
        ({"channel": PUBLIC, "latest": "17e8"}, "invalid_ts_latest"),
        ({"channel": PUBLIC, "cursor": "not a cursor"}, "invalid_cursor"),
        ({"channel": PUBLIC, "limit": "ten"}, "invalid_arguments"),
    ],
    ids=["unknown", "by name", "user id", "empty", "bot not a member", "oldest", "latest", "cursor", "limit"],
)
def test_history_refuses_what_slack_refuses(client: WebClient, params: dict[str, str], error: str) -> None:
    # when
    response = slack_error(lambda: client.api_call("conversations.history", http_verb="GET", params=params))

    # then
    assert response["ok"] is False
    assert response["error"] == error


def test_a_private_channel_the_bot_is_in_can_be_read(client: WebClient, clock: FakeClock) -> None:
    # given
    ts = post(client, clock, "private", channel=PRIVATE)

    # when
    messages = client.conversations_history(channel=PRIVATE)["messages"]

    # then
    assert [m["ts"] for m in messages] == [ts]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.integers(min_value=0, max_value=12),
    limit=st.integers(min_value=1, max_value=5),
    oldest_index=st.one_of(st.none(), st.integers(min_value=0, max_value=11)),
    inclusive=st.booleans(),
)
def test_paging_returns_exactly_the_messages_in_range_once_each(
    count: int, limit: int, oldest_index: int | None, inclusive: bool
) -> None:
    # given
    clock = FakeClock()
    with make_standin(clock) as slack:
        client = WebClient(token=TOKEN, base_url=slack.api_url)
        stamps = [slack.add_message(PUBLIC, f"n{i}", user=ALICE).ts for i in range(count)]
        oldest = stamps[oldest_index] if oldest_index is not None and oldest_index < count else None
        params: dict[str, Any] = {"channel": PUBLIC, "limit": limit, "inclusive": inclusive}
        if oldest is not None:
            params["oldest"] = oldest

        # when
        seen = [m["ts"] for page in client.conversations_history(**params) for m in page["messages"]]

    # then
    expected = [
        ts for ts in reversed(stamps) if oldest is None or Decimal(ts) > Decimal(oldest) or (inclusive and ts == oldest)
    ]
    assert seen == expected


# ----------------------------------------------------------------------------- users.lookupByEmail


def test_lookup_by_email_finds_the_person_whatever_the_case(client: WebClient) -> None:
    # when
    user = client.users_lookupByEmail(email="Alice@Example.com")["user"]

    # then
    assert user["id"] == ALICE
    assert user["profile"]["email"] == "alice@example.com"


@pytest.mark.parametrize("email", ["nobody@example.com", "alice@example.org"])
def test_lookup_of_an_unknown_email_is_users_not_found(client: WebClient, email: str) -> None:
    # when
    response = slack_error(lambda: client.users_lookupByEmail(email=email))

    # then
    assert response == {"ok": False, "error": "users_not_found"}


def test_lookup_of_a_deactivated_person_says_they_are_deleted(client: WebClient) -> None:
    # when
    user = client.users_lookupByEmail(email="bob@example.com")["user"]

    # then
    assert (user["id"], user["deleted"]) == (BOB, True)


def test_users_info_shows_the_email_only_with_users_read_email(clock: FakeClock) -> None:
    # given
    with (
        make_standin(clock) as granted,
        make_standin(clock, scopes=["users:read"]) as without,
    ):
        # when
        shown = WebClient(token=TOKEN, base_url=granted.api_url).users_info(user=ALICE)["user"]
        hidden = WebClient(token=TOKEN, base_url=without.api_url).users_info(user=ALICE)["user"]

    # then
    assert shown["profile"]["email"] == "alice@example.com"
    assert "email" not in hidden["profile"]


# ----------------------------------------------------------------------------- OAuth scopes


def test_the_default_scopes_are_the_manifests_bot_scopes(clock: FakeClock) -> None:
    # when
    standin = make_standin(clock, scopes=None)

    # then
    assert standin.scopes == frozenset(BOT_SCOPES)


def test_a_method_without_its_scope_is_missing_scope_in_slacks_shape(clock: FakeClock) -> None:
    # given
    with make_standin(clock, scopes=["users:read", "chat:write"]) as slack:
        client = WebClient(token=TOKEN, base_url=slack.api_url)

        # when
        response = slack_error(lambda: client.users_lookupByEmail(email="alice@example.com"))

    # then
    assert response == {
        "ok": False,
        "error": "missing_scope",
        "needed": "users:read.email",
        "provided": "chat:write,users:read",
    }


@pytest.mark.parametrize(
    ("channel", "needed"),
    [(PUBLIC, "channels:history"), (PRIVATE, "groups:history"), ("DALICE001", "im:history")],
    ids=["public", "private", "dm"],
)
def test_history_needs_the_scope_of_the_kind_of_conversation(clock: FakeClock, channel: str, needed: str) -> None:
    # given: every scope but the one this conversation needs
    with make_standin(clock, scopes=[s for s in ALL_SCOPES if s != needed]) as slack:
        client = WebClient(token=TOKEN, base_url=slack.api_url)
        client.chat_postMessage(channel=ALICE, text="opens the DM")

        # when
        response = slack_error(lambda: client.conversations_history(channel=channel))
        others = [c for c in (PUBLIC, PRIVATE, "DALICE001") if c != channel]
        allowed = [client.conversations_history(channel=other)["ok"] for other in others]

    # then
    assert (response["error"], response["needed"]) == ("missing_scope", needed)
    assert allowed == [True, True]


CALLS: dict[str, dict[str, Any]] = {
    "chat.postMessage": {"channel": PUBLIC, "text": "hi"},
    "chat.update": {"channel": PUBLIC, "ts": "1.000001", "text": "hi"},
    "chat.postEphemeral": {"channel": PUBLIC, "user": ALICE, "text": "hi"},
    "usergroups.users.list": {"usergroup": "S0NOPE"},
    "users.info": {"user": ALICE},
    "users.lookupByEmail": {"email": "alice@example.com"},
}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_each_method_is_refused_without_its_scope_before_anything_else(clock: FakeClock, method: str) -> None:
    # given
    needed = METHOD_SCOPES[method]
    assert needed is not None
    with make_standin(clock, scopes=[s for s in ALL_SCOPES if s != needed]) as slack:
        client = WebClient(token=TOKEN, base_url=slack.api_url)

        # when
        response = slack_error(lambda: client.api_call(method, json=CALLS[method]))

        # then
        assert (response["error"], response["needed"]) == ("missing_scope", needed)
        assert needed not in response["provided"].split(",")
        assert slack.messages(PUBLIC) == []


def test_auth_test_and_views_open_need_no_scope(clock: FakeClock) -> None:
    # given
    with make_standin(clock, scopes=[]) as slack:
        client = WebClient(token=TOKEN, base_url=slack.api_url)

        # when
        identity = client.auth_test()
        opened = client.views_open(trigger_id=slack.issue_trigger_id(user=ALICE), view=MODAL)

    # then
    assert identity["user_id"] == BOT_USER
    assert opened["ok"] is True


def test_the_method_scopes_cover_every_scope_the_manifest_grants() -> None:
    # then: a scope the app asks for that no stand-in method needs would be untested
    needed = {scope for scope in METHOD_SCOPES.values() if scope} | {"channels:history", "groups:history"}
    assert set(BOT_SCOPES) <= needed
