"""Slack's posting pace, shared by every function through one DynamoDB item per channel.

Slack lets ``chat.postMessage`` post about one message per second to a channel, with short bursts, and
answers HTTP 429 beyond. Many notifiers each retrying their 429 on their own would keep hitting the
limit; instead each poster takes the channel's next turn before posting. The turns are kept as a
generic cell rate algorithm (GCRA): the item holds the channel's *theoretical arrival time* (``tat``),
and taking a turn is one conditional write that moves it on by one interval. The write is conditional
on the value read, so concurrent posters on any number of Lambda instances get distinct turns.

A poster waits for its turn in-process. The waits stay short because the posters are few: the job
events queue runs at most a handful of notifiers at once (infra/notifier.py), so at most that many
turns are ever taken ahead. A turn further away than the invocation's time left is not taken at all:
``PostingDeferred`` is raised and the work comes back later.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from approvals.domain.ports import ChatUnavailable, PostingDeferred

PACE_PREFIX = "PACE#"
PACE_SK = "PACE"
# A turn item outlives its last use by a day (DynamoDB's TTL deletes it), so idle channels cost nothing.
PACE_TTL_SECONDS = 24 * 3600
WRITE_ATTEMPTS = 50  # concurrent posters losing the conditional write to each other, before giving up


class DynamoChannelPacer:
    """Implements ``domain.ports.Pacer`` on the requests table (items ``PACE#<channel>`` / ``PACE``).

    ``interval``: seconds between turns (Slack: 1); ``burst``: turns that may be taken at once after a
    quiet spell (1: never more than one per interval); ``seconds_left``: how long the caller may wait.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        interval: float,
        burst: int = 1,
        seconds_left: Callable[[], float] = lambda: 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if interval < 0 or burst < 1:
            raise ValueError("interval must be >= 0 and burst >= 1")
        self._db = client
        self._table = table_name
        self._interval = interval
        self._tolerance = (burst - 1) * interval
        self._seconds_left = seconds_left
        self._clock = clock
        self._sleep = sleep
        self.waited = 0.0  # seconds this pacer has waited for turns (for logs and benchmarks)

    def wait_turn(self, channel: str) -> None:
        if self._interval == 0:
            return
        send_at = self._take(channel)
        wait = send_at - self._clock()
        if wait > 0:
            self.waited += wait
            self._sleep(wait)

    def _take(self, channel: str) -> float:
        """Reserves the channel's next turn and returns when it is (epoch seconds)."""
        key = {"pk": {"S": PACE_PREFIX + channel}, "sk": {"S": PACE_SK}}
        for _ in range(WRITE_ATTEMPTS):
            try:
                item = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            except ClientError as exc:
                raise ChatUnavailable(f"Slack's pace for channel {channel} could not be read: {exc}") from exc
            known = Decimal(item["tat"]["N"]) if item and "tat" in item else None
            now = self._clock()
            tat = max(float(known) if known is not None else now, now)
            send_at = max(now, tat - self._tolerance)
            if send_at - now > self._seconds_left():
                raise PostingDeferred(
                    f"Slack's pace for channel {channel}: the next turn is in {send_at - now:.1f} s, "
                    f"more than the {self._seconds_left():.1f} s left"
                )
            condition = "attribute_not_exists(pk)" if known is None else "tat = :old"
            values: dict[str, Any] = {
                ":new": {"N": _number(max(tat, send_at) + self._interval)},
                ":ttl": {"N": str(int(now) + PACE_TTL_SECONDS)},
            }
            if known is not None:
                values[":old"] = {"N": item["tat"]["N"]}  # type: ignore[index]
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET tat = :new, expires_at = :ttl",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise ChatUnavailable(f"Slack's pace for channel {channel} could not be kept: {exc}") from exc
                # Another poster took this turn; a little jitter keeps the losers from colliding again.
                self._sleep(random.uniform(0, min(0.05, self._interval / 4)))  # noqa: S311
                continue
            return send_at
        raise ChatUnavailable(f"Slack's pace for channel {channel}: no turn after {WRITE_ATTEMPTS} attempts")


def _number(value: float) -> str:
    return f"{value:.6f}"
