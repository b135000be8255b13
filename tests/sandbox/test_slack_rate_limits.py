"""The Slack stand-in's per-channel chat.postMessage limit, driven through the real slack_sdk.WebClient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from sandbox.slack import POST_BURST, SlackStandIn

TOKEN = "xoxb-test-token"
CHANNEL = "C0APPROVALS"
OTHER = "C0OTHER01"
ALICE = "UALICE001"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def standin(clock: FakeClock | None = None, **options: Any) -> SlackStandIn:
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return SlackStandIn(
        TOKEN,
        users=[{"id": ALICE, "name": "alice"}],
        channels=[{"id": CHANNEL, "name": "s3-approvals"}, {"id": OTHER, "name": "other"}],
        **extra,
        **options,
    )


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackStandIn]:
    with standin(clock) as running:
        yield running


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.api_url)


def post(client: WebClient, channel: str = CHANNEL, **extra: Any) -> SlackApiError | str:
    """The new message's ts, or the error Slack answered."""
    try:
        return str(client.chat_postMessage(channel=channel, text="hello", **extra)["ts"])
    except SlackApiError as error:
        return error


def fill_burst(client: WebClient, channel: str = CHANNEL) -> None:
    for _ in range(POST_BURST):
        assert isinstance(post(client, channel), str)


def test_a_post_beyond_the_burst_is_answered_429_with_retry_after_and_ratelimited(
    slack: SlackStandIn, client: WebClient
) -> None:
    # given
    fill_burst(client)

    # when
    answer = post(client)

    # then
    assert isinstance(answer, SlackApiError)
    assert answer.response.status_code == 429
    assert answer.response.headers["Retry-After"] == "1"
    assert answer.response.data == {"ok": False, "error": "ratelimited"}
    assert slack.rate_limited(CHANNEL) == 1


def test_the_rejected_post_has_no_effect(slack: SlackStandIn, client: WebClient) -> None:
    # given
    fill_burst(client)
    before = [m.ts for m in slack.messages(CHANNEL)]

    # when
    post(client)

    # then
    assert [m.ts for m in slack.messages(CHANNEL)] == before
    assert len(slack.post_times(CHANNEL)) == POST_BURST
    assert [call.status for call in slack.calls_to("chat.postMessage")] == [200] * POST_BURST + [429]


def test_another_channel_keeps_its_own_bucket(slack: SlackStandIn, client: WebClient) -> None:
    # given
    fill_burst(client)
    assert isinstance(post(client), SlackApiError)

    # when
    answers = [post(client, OTHER) for _ in range(POST_BURST)]

    # then
    assert all(isinstance(answer, str) for answer in answers)
    assert len(slack.messages(OTHER)) == POST_BURST
    assert slack.rate_limited(OTHER) == 0
    assert slack.rate_limited(CHANNEL) == 1


def test_a_token_comes_back_each_second(slack: SlackStandIn, client: WebClient, clock: FakeClock) -> None:
    # given
    fill_burst(client)

    # when
    clock.advance(0.5)
    half = post(client)
    clock.advance(0.5)
    whole = post(client)
    again = post(client)

    # then
    assert isinstance(half, SlackApiError)
    assert half.response.headers["Retry-After"] == "1"
    assert isinstance(whole, str)
    assert isinstance(again, SlackApiError)
    assert len(slack.messages(CHANNEL)) == POST_BURST + 1
    assert slack.rate_limited(CHANNEL) == 2


def test_an_idle_channel_allows_a_burst_and_no_more(slack: SlackStandIn, client: WebClient, clock: FakeClock) -> None:
    # given
    fill_burst(client)
    clock.advance(3600)

    # when
    answers = [post(client) for _ in range(POST_BURST + 2)]

    # then
    assert [isinstance(answer, str) for answer in answers] == [True] * POST_BURST + [False, False]
    assert len(slack.messages(CHANNEL)) == 2 * POST_BURST


def test_thread_replies_count_against_their_channel(slack: SlackStandIn, client: WebClient) -> None:
    # given
    parent = post(client)
    assert isinstance(parent, str)

    # when
    replies = [post(client, thread_ts=parent) for _ in range(POST_BURST)]

    # then
    assert [isinstance(reply, str) for reply in replies] == [True] * (POST_BURST - 1) + [False]
    assert len(slack.thread(CHANNEL, parent)) == POST_BURST - 1
    assert len(slack.post_times(CHANNEL)) == POST_BURST


def test_retry_after_is_the_whole_seconds_until_the_next_token(clock: FakeClock) -> None:
    # given: one message every 4 seconds
    with standin(clock, post_rate=0.25, post_burst=1) as slack:
        client = WebClient(token=TOKEN, base_url=slack.api_url)
        assert isinstance(post(client), str)

        # when
        first = post(client)
        clock.advance(1.5)
        later = post(client)

    # then
    assert isinstance(first, SlackApiError)
    assert first.response.headers["Retry-After"] == "4"
    assert isinstance(later, SlackApiError)
    assert later.response.headers["Retry-After"] == "3"


def test_the_time_scale_shortens_the_slack_second_but_retry_after_stays_in_slack_seconds(clock: FakeClock) -> None:
    # given
    with standin(clock, time_scale=0.05) as slack:
        client = WebClient(token=TOKEN, base_url=slack.api_url)
        fill_burst(client)

        # when
        limited = post(client)
        clock.advance(0.05)
        refilled = post(client)

    # then
    assert isinstance(limited, SlackApiError)
    assert limited.response.headers["Retry-After"] == "1"
    assert isinstance(refilled, str)


def test_without_rate_limits_every_post_goes_through_and_is_counted(clock: FakeClock) -> None:
    # given
    with standin(clock, rate_limits=False) as slack:
        client = WebClient(token=TOKEN, base_url=slack.api_url)

        # when
        answers = [post(client) for _ in range(4 * POST_BURST)]

        # then
        assert all(isinstance(answer, str) for answer in answers)
        assert len(slack.post_times(CHANNEL)) == 4 * POST_BURST
        assert slack.rate_limited() == 0


def test_the_limit_can_be_turned_off_while_serving(slack: SlackStandIn, client: WebClient) -> None:
    # given
    fill_burst(client)
    assert isinstance(post(client), SlackApiError)

    # when
    slack.rate_limits = False
    answer = post(client)

    # then
    assert isinstance(answer, str)
    assert len(slack.messages(CHANNEL)) == POST_BURST + 1


def test_a_post_to_a_user_counts_against_the_bots_dm_with_them(slack: SlackStandIn, client: WebClient) -> None:
    # given
    fill_burst(client, ALICE)

    # when
    answer = post(client, ALICE)

    # then
    assert isinstance(answer, SlackApiError)
    assert answer.response.status_code == 429
    assert slack.rate_limited(ALICE) == 1
    assert isinstance(post(client), str)


def test_other_methods_are_not_held_by_the_post_limit(slack: SlackStandIn, client: WebClient) -> None:
    # given
    fill_burst(client)
    ts = slack.messages(CHANNEL)[0].ts

    # when
    updates = [client.chat_update(channel=CHANNEL, ts=ts, text=f"edit {n}") for n in range(POST_BURST + 2)]

    # then
    assert all(update["ok"] for update in updates)
    assert slack.rate_limited() == 0


def test_the_sdk_rate_limit_handler_waits_and_the_post_goes_through() -> None:
    # given: the real clock, Slack's second shrunk to half: the burst goes out well within it, and the bucket
    # has a token again by the time the client retries (it sleeps Retry-After, a whole second or more)
    with standin(time_scale=0.5) as slack:
        client = WebClient(
            token=TOKEN, base_url=slack.api_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)]
        )

        # when
        answers = [client.chat_postMessage(channel=CHANNEL, text=f"n{n}") for n in range(POST_BURST + 1)]

        # then
        assert all(answer["ok"] for answer in answers)
        assert len(slack.messages(CHANNEL)) == POST_BURST + 1
        assert slack.rate_limited(CHANNEL) == 1
        assert [call.status for call in slack.calls_to("chat.postMessage")] == [200] * POST_BURST + [429, 200]


@pytest.mark.parametrize("options", [{"time_scale": 0}, {"post_rate": -1.0}, {"post_burst": 0}])
def test_nonsense_limits_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="post_burst at least 1"):
        standin(**options)
