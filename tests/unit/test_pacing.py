"""Slack's posting pace: turns per channel from one conditional DynamoDB item (adapters/pacing.py).

The clock is fake and sleeping moves it, so each test reads the exact moments posts would go out.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from approvals.adapters.pacing import PACE_PREFIX, PACE_SK, DynamoChannelPacer
from approvals.domain.ports import ChatUnavailable, PostingDeferred
from sandbox.aws_local import LocalAws

START = 1_800_000_000.0


class FakeTime:
    """A clock that only moves when someone sleeps (or the test moves it)."""

    def __init__(self) -> None:
        self.now = START
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def _pacer(local_aws: LocalAws, time: FakeTime, client: Any = None, **kwargs: Any) -> DynamoChannelPacer:
    options: dict[str, Any] = {"interval": 1.0, "clock": time.clock, "sleep": time.sleep, **kwargs}
    return DynamoChannelPacer(client or local_aws.client("dynamodb"), local_aws.requests_table, **options)


def _post_times(pacer: DynamoChannelPacer, time: FakeTime, channel: str, count: int) -> list[float]:
    sent = []
    for _ in range(count):
        pacer.wait_turn(channel)
        sent.append(round(time.now - START, 3))
    return sent


def test_posts_to_one_channel_go_out_one_interval_apart(local_aws: LocalAws) -> None:
    # given
    time = FakeTime()
    pacer = _pacer(local_aws, time)

    # when
    sent = _post_times(pacer, time, "C0APPROVALS", 5)

    # then
    assert sent == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert pacer.waited == pytest.approx(4.0)


def test_a_quiet_channel_allows_its_burst_then_keeps_the_interval(local_aws: LocalAws) -> None:
    # given
    time = FakeTime()
    pacer = _pacer(local_aws, time, burst=3)

    # when
    sent = _post_times(pacer, time, "C0APPROVALS", 5)
    time.now += 60  # a quiet minute refills the burst
    later = _post_times(pacer, time, "C0APPROVALS", 4)

    # then
    assert sent == [0.0, 0.0, 0.0, 1.0, 2.0]
    assert later == [62.0, 62.0, 62.0, 63.0]


def test_channels_keep_their_own_turns(local_aws: LocalAws) -> None:
    # given
    time = FakeTime()
    pacer = _pacer(local_aws, time)
    pacer.wait_turn("C0APPROVALS")

    # when
    pacer.wait_turn("C0OTHER")

    # then: the second channel's first post did not wait for the first channel
    assert time.now == START


def test_posters_in_other_instances_share_the_channel_s_turns(local_aws: LocalAws) -> None:
    # given: two functions' pacers on the same table, taking turns alternately
    time = FakeTime()
    first, second = _pacer(local_aws, time), _pacer(local_aws, time)

    # when
    sent = []
    for pacer in (first, second, first, second):
        pacer.wait_turn("C0APPROVALS")
        sent.append(time.now - START)

    # then
    assert sent == [0.0, 1.0, 2.0, 3.0]


class RacingClient:
    """The real client, except that before the pacer's first write another poster takes the turn."""

    def __init__(self, client: Any, rival: DynamoChannelPacer) -> None:
        self._client, self._rival, self.conflicts = client, rival, 0

    def get_item(self, **kwargs: Any) -> Any:
        return self._client.get_item(**kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        if self.conflicts == 0:
            self.conflicts += 1
            self._rival._take("C0APPROVALS")  # the rival's conditional write lands first
        return self._client.update_item(**kwargs)


def test_a_turn_taken_by_another_poster_meanwhile_is_not_taken_twice(local_aws: LocalAws) -> None:
    # given
    time = FakeTime()
    client = local_aws.client("dynamodb")
    rival = _pacer(local_aws, time)
    racing = RacingClient(client, rival)
    pacer = _pacer(local_aws, time, client=racing)

    # when
    pacer.wait_turn("C0APPROVALS")

    # then: the rival got the turn at 0 s; this poster lost the write, read again and got the next one
    assert racing.conflicts == 1
    assert time.now - START == pytest.approx(1.0, abs=0.06)
    item = client.get_item(
        TableName=local_aws.requests_table, Key={"pk": {"S": PACE_PREFIX + "C0APPROVALS"}, "sk": {"S": PACE_SK}}
    )["Item"]
    assert float(item["tat"]["N"]) == pytest.approx(START + 2.0)


def test_concurrent_posters_never_share_a_turn(local_aws: LocalAws) -> None:
    # given: eight threads, each its own pacer (as eight Lambda instances), on the serialised moto server
    time = FakeTime()
    turns: list[float] = []
    lock = threading.Lock()

    def poster() -> None:
        pacer = _pacer(local_aws, time, sleep=lambda seconds: None)
        turn = pacer._take("C0APPROVALS")
        with lock:
            turns.append(turn - START)

    # when
    threads = [threading.Thread(target=poster) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then
    assert sorted(turns) == [float(n) for n in range(8)]


def test_a_turn_further_away_than_the_time_left_is_not_taken(local_aws: LocalAws) -> None:
    # given: three turns already taken, and a poster with 1.5 s left
    time = FakeTime()
    busy = _pacer(local_aws, time, sleep=lambda seconds: None)
    for _ in range(3):
        busy.wait_turn("C0APPROVALS")
    hurried = _pacer(local_aws, time, seconds_left=lambda: 1.5)

    # when / then
    with pytest.raises(PostingDeferred, match=r"next turn is in 3\.0 s"):
        hurried.wait_turn("C0APPROVALS")
    assert isinstance(PostingDeferred("x"), ChatUnavailable), "a deferral is retried like Slack being unavailable"
    # the turn it did not take is the next poster's
    assert busy._take("C0APPROVALS") - START == pytest.approx(3.0)


def test_no_interval_means_no_pacing_and_no_table(local_aws: LocalAws) -> None:
    # given
    time = FakeTime()

    class NoTable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the table was used: {name}")

    pacer = _pacer(local_aws, time, client=NoTable(), interval=0)

    # when
    pacer.wait_turn("C0APPROVALS")

    # then
    assert time.now == START


def test_a_table_error_other_than_a_lost_race_is_slack_unavailable(local_aws: LocalAws) -> None:
    # given: a table that does not exist
    time = FakeTime()
    pacer = DynamoChannelPacer(
        local_aws.client("dynamodb"), "no-such-table", interval=1.0, clock=time.clock, sleep=time.sleep
    )

    # when / then
    with pytest.raises(ChatUnavailable, match=r"could not be read: .*ResourceNotFound"):
        pacer.wait_turn("C0APPROVALS")


# -- against the Slack stand-in's per-channel limit -------------------------------------------------------


def _post_from_threads(chat: Any, posters: int, each: int) -> list[str]:
    """``posters`` threads posting ``each`` messages at once to one channel; the errors they met."""
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(posters)

    def poster(n: int) -> None:
        barrier.wait()
        for m in range(each):
            try:
                chat.post("C0APPROVALS", f"poster {n} message {m}", [], None)
            except ChatUnavailable as exc:
                with lock:
                    errors.append(str(exc))

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(posters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "unpaced"])
def test_concurrent_posters_stay_within_slack_s_limit_only_when_paced(local_aws: LocalAws, paced: bool) -> None:
    # given: Slack's limit at a tenth of its time (10 posts a second, a burst of 3: posts may bunch by up to
    # 0.3 s on their way, as a loaded machine makes them), and four posters sharing one pacer table (as four
    # notifiers), their clients making one attempt each (no 429 retry)
    from approvals.adapters.slack import SlackChat, web_client
    from sandbox.slack import SlackStandIn

    scale = 0.1
    slack = SlackStandIn("xoxb-test-token", channels=[{"id": "C0APPROVALS", "name": "approvals"}], time_scale=scale)
    slack.start()
    try:
        pacer = DynamoChannelPacer(local_aws.client("dynamodb"), local_aws.requests_table, interval=scale)
        client = web_client("xoxb-test-token", slack.api_url, retries=False)
        chat = SlackChat(client, pacer=pacer if paced else None)

        # when
        errors = _post_from_threads(chat, posters=4, each=5)

        # then
        if paced:
            assert (errors, slack.rate_limited("C0APPROVALS")) == ([], 0)
            assert len(slack.post_times("C0APPROVALS")) == 20
        else:
            assert slack.rate_limited("C0APPROVALS") > 0
            assert errors
            assert all("ratelimited" in error for error in errors)
    finally:
        slack.stop()
