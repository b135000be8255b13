"""CloudTrail's event history (LookupEvents): who created a job, when its CreateJob event did not reach us.

LookupEvents needs no trail: it reads the last 90 days of management events of one account and region.
It allows 2 calls per second per account and region, so this adapter

- paces its own calls (``RateLimiter``: at most 2 in any second per account and region, across threads);
- caches what it learnt: a found record for the life of the process, "not found" for a minute, so a burst of
  events for one job makes one lookup (and concurrent lookups of one job wait for the first);
- retries ThrottlingException (other processes share the limit) a bounded number of times with backoff, then
  raises ``RequestersUnavailable``, as it does at once for any other error.

botocore's own retries are off for this client (``LOOKUP_CONFIG``: standard mode, one attempt), so that every
attempt goes through the limiter and is counted here; a retry inside botocore would bypass the pacing.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from approvals.domain.ports import JobsUnavailable, RequestersUnavailable
from approvals.models.events import CREATE_JOB_EVENT_NAME, CreateJobCall, create_job_call
from approvals.models.job import JobRef

# One attempt per botocore call: retries are this adapter's, each one paced by the limiter.
LOOKUP_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
CALLS_PER_SECOND = 2  # LookupEvents' limit per account and region
PAGE_SIZE = 50  # LookupEvents' largest page
MAX_PAGES = 4  # 200 CreateJob events (of every service) around one job's creation time
MAX_ATTEMPTS = 3  # per page: the first try and two retries after throttling
BACKOFF_SECONDS = 0.5  # before the first retry; doubled for each next one, with jitter
# CloudTrail's eventTime is the API call, a little before the job's CreationTime; clocks and records differ.
BEFORE = timedelta(minutes=5)
AFTER = timedelta(minutes=10)
NOT_FOUND_SECONDS = 60.0
FOUND_ENTRIES = 4096  # found records kept (the oldest go first): far more jobs than a process sees
THROTTLING = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})
_STRIPES = 64

_MISS = object()


class RateLimiter:
    """At most ``rate`` calls in any ``per`` seconds for each key; ``acquire`` waits for a place. Thread-safe.

    A sliding window, not a token bucket: a bucket of 2 refilled at 2/s lets 3 calls into one second.
    """

    def __init__(
        self,
        rate: int = CALLS_PER_SECOND,
        per: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 1 or per <= 0:
            raise ValueError("rate must be at least 1 and per more than 0")
        self._rate = rate
        self._per = per
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> None:
        while True:
            with self._lock:
                now = self._monotonic()
                window = self._calls.setdefault(key, deque())
                while window and window[0] <= now - self._per:
                    window.popleft()
                if len(window) < self._rate:
                    window.append(now)
                    return
                wait = window[0] + self._per - now
            self._sleep(max(wait, 0.0))


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class CloudTrailRequesters:
    """Implements ``domain.ports.Requesters`` with LookupEvents in the job's region.

    ``client_for(account_id, region, job_id)`` gives a CloudTrail client whose credentials are the job's account
    (the history is per account: adapters/aws.py AccountClients assumes a member's spoke role); ``clock`` is
    the wall clock (the lookup window ends no later than now, and the cache ages by it). ``sleep`` waits
    between retries; ``limiter`` paces the calls (share one per process).
    """

    def __init__(
        self,
        client_for: Callable[[str, str, str | None], Any],
        clock: Callable[[], datetime],
        *,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        max_pages: int = MAX_PAGES,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_seconds: float = BACKOFF_SECONDS,
        before: timedelta = BEFORE,
        after: timedelta = AFTER,
        not_found_seconds: float = NOT_FOUND_SECONDS,
        found_entries: int = FOUND_ENTRIES,
    ) -> None:
        if max_pages < 1 or max_attempts < 1:
            raise ValueError("max_pages and max_attempts must be at least 1")
        self._client_for = client_for
        self._clock = clock
        self._limiter = limiter or RateLimiter(sleep=sleep)
        self._sleep = sleep
        self._jitter = jitter
        self._max_pages = max_pages
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._before = before
        self._after = after
        self._not_found = timedelta(seconds=not_found_seconds)
        self._found_entries = found_entries
        self._lock = threading.Lock()
        self._found: OrderedDict[tuple[str, str, str], CreateJobCall] = OrderedDict()
        self._missing: dict[tuple[str, str, str], datetime] = {}
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]

    def lookup(self, ref: JobRef, created_at: datetime) -> CreateJobCall | None:
        """The CreateJob record of ``ref`` from about 5 minutes before ``created_at`` to 10 after; None when
        the history does not hold it (yet). Raises RequestersUnavailable when CloudTrail kept throttling or
        failed."""
        key = (ref.account_id, ref.region, ref.job_id)
        with self._stripes[hash(key) % _STRIPES]:  # one lookup per job at a time: the others use its answer
            cached = self._cached(key)
            if cached is not _MISS:
                return cached  # type: ignore[return-value]
            call = self._search(ref, created_at)
            self._remember(key, call)
            return call

    def _cached(self, key: tuple[str, str, str]) -> object:
        with self._lock:
            found = self._found.get(key)
            if found is not None:
                self._found.move_to_end(key)
                return found
            missing_since = self._missing.get(key)
            if missing_since is not None:
                if self._clock() - missing_since < self._not_found:
                    return None
                del self._missing[key]
            return _MISS

    def _remember(self, key: tuple[str, str, str], call: CreateJobCall | None) -> None:
        with self._lock:
            if call is None:
                now = self._clock()
                # Forget the expired "not found" answers first, so that the dict stays small.
                for stale in [k for k, at in self._missing.items() if now - at >= self._not_found]:
                    del self._missing[stale]
                self._missing[key] = now
                return
            self._missing.pop(key, None)
            self._found[key] = call
            while len(self._found) > self._found_entries:
                self._found.popitem(last=False)

    def _search(self, ref: JobRef, created_at: datetime) -> CreateJobCall | None:
        start = created_at - self._before
        end = max(start, min(created_at + self._after, self._clock()))
        request: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": CREATE_JOB_EVENT_NAME}],
            "StartTime": start,
            "EndTime": end,
            "MaxResults": PAGE_SIZE,
        }
        try:
            client = self._client_for(ref.account_id, ref.region, ref.job_id)
        except JobsUnavailable as exc:  # the spoke role could not be assumed: looked up again later
            raise RequestersUnavailable(str(exc)) from exc
        for _ in range(self._max_pages):
            page = self._page(client, ref, request)
            for event in page.get("Events") or []:
                call = _call_of(event)
                if (
                    call is not None
                    and call.job_id == ref.job_id
                    and call.account_id == ref.account_id
                    and call.region == ref.region
                ):
                    return call
            token = page.get("NextToken")
            if not token:
                return None
            request["NextToken"] = token
        return None  # more CreateJob events in the window than the pages read: treated as not found (yet)

    def _page(self, client: Any, ref: JobRef, request: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(1, self._max_attempts + 1):
            self._limiter.acquire(f"{ref.account_id}/{ref.region}")
            try:
                page: dict[str, Any] = client.lookup_events(**request)
                return page
            except ClientError as exc:
                code = _code(exc)
                if code not in THROTTLING:
                    raise RequestersUnavailable(f"LookupEvents failed: {code or exc}") from exc
                if attempt == self._max_attempts:
                    raise RequestersUnavailable(
                        f"LookupEvents failed: {code} after {self._max_attempts} attempts"
                    ) from exc
                self._sleep(self._backoff * 2 ** (attempt - 1) * (0.5 + self._jitter() / 2))
            except BotoCoreError as exc:
                raise RequestersUnavailable(f"CloudTrail did not answer: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover


def _call_of(event: object) -> CreateJobCall | None:
    if not isinstance(event, dict):
        return None
    raw = event.get("CloudTrailEvent")
    if not isinstance(raw, str):
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return create_job_call(record)
