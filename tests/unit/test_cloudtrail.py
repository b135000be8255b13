"""The CloudTrail history fallback, through a real boto3 client over HTTP to the CloudTrail stand-in.

The adapter and the stand-in share one moved clock: the adapter's pacing and backoff sleep by moving it, and
the stand-in's 2-per-second limit counts by it, so what is paced and what is throttled is exact, not timed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from approvals.adapters.cloudtrail import LOOKUP_CONFIG, CloudTrailRequesters, RateLimiter
from approvals.domain.ports import RequestersUnavailable
from approvals.models.job import JobRef
from sandbox.cloudtrail import CloudTrailHistory, CloudTrailStandIn, create_job_record

ACCOUNT = "111122223333"
REGION = "eu-west-1"
CREATED = datetime(2026, 11, 30, 9, 15, 2, tzinfo=UTC)
ALICE = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com"


class MovedTime:
    """A wall clock and a monotonic clock that move only when something sleeps or a test says so."""

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._start = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return 1000.0 + self._offset

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._offset)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._offset += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


@pytest.fixture
def time_() -> MovedTime:
    return MovedTime(CREATED + timedelta(minutes=20))


@pytest.fixture
def history(time_: MovedTime) -> CloudTrailHistory:
    return CloudTrailHistory(account_id=ACCOUNT, region=REGION, clock=time_.now, rate_clock=time_.monotonic)


@pytest.fixture
def standin(history: CloudTrailHistory) -> Iterator[CloudTrailStandIn]:
    with CloudTrailStandIn(history) as running:
        yield running


@pytest.fixture
def client_for_region(standin: CloudTrailStandIn) -> Any:
    clients: dict[str, Any] = {}

    def client(account_id: str, region: str, job_id: str | None) -> Any:
        if region not in clients:
            clients[region] = boto3.client(
                "cloudtrail",
                region_name=region,
                endpoint_url=standin.url,
                aws_access_key_id="AKIDSANDBOX",
                aws_secret_access_key="sandbox",
                config=LOOKUP_CONFIG,
            )
        return clients[region]

    return client


def requesters(client_for_region: Any, time_: MovedTime, **options: Any) -> CloudTrailRequesters:
    limiter = RateLimiter(monotonic=time_.monotonic, sleep=time_.sleep)
    return CloudTrailRequesters(
        client_for_region, time_.now, limiter=limiter, sleep=time_.sleep, jitter=lambda: 1.0, **options
    )


def ref(job_id: str = "job-00001") -> JobRef:
    return JobRef(account_id=ACCOUNT, region=REGION, job_id=job_id)


def record_job(history: CloudTrailHistory, job_id: str, at: datetime = CREATED, **kwargs: Any) -> None:
    history.record(
        create_job_record(
            job_id,
            principal_arn=ALICE,
            account_id=ACCOUNT,
            region=REGION,
            event_time=at - timedelta(seconds=1),
            **kwargs,
        )
    )


def test_the_create_job_record_of_the_job_is_found(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime
) -> None:
    # given: the job's record among others
    record_job(history, "job-00002", CREATED - timedelta(minutes=1))
    record_job(history, "job-00001")
    record_job(history, "job-00003", CREATED + timedelta(minutes=1))

    # when
    call = requesters(client_for_region, time_).lookup(ref(), CREATED)

    # then
    assert call is not None
    assert (call.job_id, call.principal_arn, call.principal_type) == ("job-00001", ALICE, "AssumedRole")
    (lookup,) = history.calls
    assert lookup.params["LookupAttributes"] == [{"AttributeKey": "EventName", "AttributeValue": "CreateJob"}]
    assert lookup.params["MaxResults"] == 50
    start = datetime.fromtimestamp(lookup.params["StartTime"], UTC)
    end = datetime.fromtimestamp(lookup.params["EndTime"], UTC)
    assert (start, end) == (CREATED - timedelta(minutes=5), CREATED + timedelta(minutes=10))
    assert (lookup.account_id, lookup.region) == (ACCOUNT, REGION)


def test_the_window_ends_now_when_the_job_is_younger_than_ten_minutes(
    history: CloudTrailHistory, client_for_region: Any
) -> None:
    # given
    time_ = MovedTime(CREATED + timedelta(minutes=2))
    history.clock, history.rate_clock = time_.now, time_.monotonic

    # when
    requesters(client_for_region, time_).lookup(ref(), CREATED)

    # then
    assert datetime.fromtimestamp(history.calls[0].params["EndTime"], UTC) == CREATED + timedelta(minutes=2)


def test_a_record_not_yet_visible_is_not_found_then_found_once_the_cache_expires(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime
) -> None:
    # given: CloudTrail shows the record only three minutes after it was made
    history.visibility_delay = timedelta(minutes=3)
    record_job(history, "job-00001")
    adapter = requesters(client_for_region, time_)

    # when / then: not found, and "not found" is remembered for a minute
    assert adapter.lookup(ref(), CREATED) is None
    assert adapter.lookup(ref(), CREATED) is None
    assert len(history.calls) == 1

    # when: later than both the delay and the cache
    time_.advance(181)
    call = adapter.lookup(ref(), CREATED)

    # then
    assert call is not None
    assert call.job_id == "job-00001"
    assert len(history.calls) == 2


def test_a_found_record_is_cached_so_a_burst_of_events_makes_one_lookup(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime
) -> None:
    # given
    record_job(history, "job-00001")
    adapter = requesters(client_for_region, time_)

    # when
    calls = [adapter.lookup(ref(), CREATED) for _ in range(5)]
    time_.advance(24 * 3600)
    calls.append(adapter.lookup(ref(), CREATED))

    # then
    assert len({call.event_id for call in calls if call is not None}) == 1
    assert len(history.calls) == 1


def test_concurrent_lookups_of_one_job_make_one_call(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime
) -> None:
    # given
    record_job(history, "job-00001")
    adapter = requesters(client_for_region, time_)
    results: list[Any] = []

    # when
    threads = [threading.Thread(target=lambda: results.append(adapter.lookup(ref(), CREATED))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then
    assert len(results) == 8
    assert all(result is not None for result in results)
    assert len(history.calls) == 1


def test_the_job_is_found_on_a_later_page(history: CloudTrailHistory, client_for_region: Any, time_: MovedTime) -> None:
    # given: 120 newer CreateJob records of other jobs (and another service's CreateJob) in the window
    record_job(history, "job-00001", CREATED - timedelta(minutes=4))
    for number in range(120):
        record_job(history, f"other-{number:05d}", CREATED + timedelta(seconds=number))
    history.record({**create_job_record("iot-job-1", principal_arn=ALICE), "eventSource": "iot.amazonaws.com"})

    # when
    call = requesters(client_for_region, time_).lookup(ref(), CREATED)

    # then: three pages, each paced (2 calls a second at most)
    assert call is not None
    assert call.job_id == "job-00001"
    assert len(history.calls) == 3
    assert history.calls[1].params["NextToken"]
    assert history.calls[2].params["NextToken"]
    assert history.throttled == 0


def test_the_pages_read_are_bounded(history: CloudTrailHistory, client_for_region: Any, time_: MovedTime) -> None:
    # given
    record_job(history, "job-00001", CREATED - timedelta(minutes=4))
    for number in range(120):
        record_job(history, f"other-{number:05d}", CREATED + timedelta(seconds=number))

    # when
    call = requesters(client_for_region, time_, max_pages=2).lookup(ref(), CREATED)

    # then
    assert call is None
    assert len(history.calls) == 2


class OnePage:
    """A CloudTrail client that answers every LookupEvents with the same one page of these events."""

    def __init__(self, *events: dict[str, Any]) -> None:
        self.events = list(events)

    def lookup_events(self, **params: Any) -> dict[str, Any]:
        return {"Events": self.events}


def test_a_record_of_the_job_id_in_another_account_or_region_or_unreadable_is_not_the_jobs(time_: MovedTime) -> None:
    # given: the same job ID created elsewhere, a record that is not JSON, and the job's own record last
    other_account = create_job_record("job-00001", principal_arn=ALICE, account_id="444455556666", region=REGION)
    other_region = create_job_record("job-00001", principal_arn=ALICE, account_id=ACCOUNT, region="us-east-1")
    own = create_job_record("job-00001", principal_arn=ALICE, account_id=ACCOUNT, region=REGION)
    client = OnePage(
        {"CloudTrailEvent": "{not json"},
        {"CloudTrailEvent": None},
        *({"EventId": r["eventID"], "CloudTrailEvent": json.dumps(r)} for r in (other_account, other_region, own)),
    )

    # when
    found = requesters(lambda _account, _region, _job: client, time_).lookup(ref(), CREATED)

    # then
    assert found is not None
    assert (found.account_id, found.region, found.event_id) == (ACCOUNT, REGION, own["eventID"])


def test_lookups_are_paced_to_two_a_second_per_account_and_region(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime
) -> None:
    # given
    adapter = requesters(client_for_region, time_)

    # when: six different jobs, none in the history
    for number in range(6):
        adapter.lookup(ref(f"job-{number:05d}"), CREATED)

    # then: none throttled, because the adapter waited (two calls, then a second, ...)
    assert len(history.calls) == 6
    assert history.throttled == 0
    assert sum(time_.slept) == pytest.approx(2.0)


def test_without_pacing_the_stand_in_throttles_the_third_call_in_a_second(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime
) -> None:
    # given: a limiter as generous as no limiter, and no retries
    adapter = CloudTrailRequesters(
        client_for_region,
        time_.now,
        limiter=RateLimiter(rate=100, monotonic=time_.monotonic, sleep=time_.sleep),
        sleep=time_.sleep,
        max_attempts=1,
    )
    adapter.lookup(ref("job-00001"), CREATED)
    adapter.lookup(ref("job-00002"), CREATED)

    # when / then
    with pytest.raises(RequestersUnavailable, match="ThrottlingException"):
        adapter.lookup(ref("job-00003"), CREATED)


def test_throttling_is_retried_with_backoff(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime
) -> None:
    # given: another process used up the account's calls twice
    record_job(history, "job-00001")
    history.throttle_next(2)

    # when
    call = requesters(client_for_region, time_).lookup(ref(), CREATED)

    # then
    assert call is not None
    assert [lookup.error for lookup in history.calls] == ["ThrottlingException", "ThrottlingException", None]
    assert time_.slept[:2] == [0.5, 1.0]


def test_throttling_that_does_not_stop_is_unavailable_and_not_cached(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime
) -> None:
    # given
    record_job(history, "job-00001")
    history.throttle_next(3)
    adapter = requesters(client_for_region, time_)

    # when / then
    with pytest.raises(RequestersUnavailable, match="ThrottlingException after 3 attempts"):
        adapter.lookup(ref(), CREATED)
    assert len(history.calls) == 3
    assert adapter.lookup(ref(), CREATED) is not None  # the failure was not remembered as "not found"


@pytest.mark.parametrize(("code", "status"), [("InternalFailure", 500), ("AccessDeniedException", 400)])
def test_another_error_is_unavailable_at_once_with_its_code(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime, code: str, status: int
) -> None:
    # given
    history.fail_next(1, code=code, status=status)

    # when / then
    with pytest.raises(RequestersUnavailable, match=code):
        requesters(client_for_region, time_).lookup(ref(), CREATED)
    assert len(history.calls) == 1


def test_cloudtrail_not_answering_is_unavailable(time_: MovedTime) -> None:
    # given: a port nobody listens on (a stopped stand-in)
    stopped = CloudTrailStandIn()
    url = stopped.url
    stopped.stop()
    client = boto3.client(
        "cloudtrail",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="AKIDSANDBOX",
        aws_secret_access_key="sandbox",
        config=LOOKUP_CONFIG,
    )

    # when / then
    with pytest.raises(RequestersUnavailable, match="CloudTrail did not answer"):
        requesters(lambda _account, _region, _job: client, time_).lookup(ref(), CREATED)


def test_the_lookup_runs_in_the_jobs_region(
    history: CloudTrailHistory, client_for_region: Any, time_: MovedTime
) -> None:
    # given: the record is in us-west-2's history
    history.record(
        create_job_record("job-00001", principal_arn=ALICE, account_id=ACCOUNT, region="us-west-2", event_time=CREATED)
    )
    adapter = requesters(client_for_region, time_)

    # when
    elsewhere = adapter.lookup(ref(), CREATED)
    there = adapter.lookup(JobRef(account_id=ACCOUNT, region="us-west-2", job_id="job-00001"), CREATED)

    # then
    assert elsewhere is None
    assert there is not None
    assert there.region == "us-west-2"
    assert [lookup.region for lookup in history.calls] == [REGION, "us-west-2"]


def test_the_rate_limiter_allows_two_calls_in_any_second_per_key() -> None:
    # given
    time_ = MovedTime(CREATED)
    limiter = RateLimiter(monotonic=time_.monotonic, sleep=time_.sleep)
    starts: list[tuple[str, float]] = []

    # when
    for key in ["a", "a", "b", "a", "b", "b", "a"]:
        limiter.acquire(key)
        starts.append((key, time_.monotonic()))

    # then: for each key, no three calls within one second
    for key in ("a", "b"):
        times = [at for k, at in starts if k == key]
        assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[2:], strict=False))
