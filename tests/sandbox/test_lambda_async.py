"""Lambda's asynchronous invocation model: queue, retries of function errors, event age, on-failure records."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra import constants as c
from sandbox.lambda_async import AsyncInvoker, InvokerStopped

EVENT = {"version": "0", "id": "e-1", "source": "aws.s3", "detail": {"serviceEventDetails": {"jobId": "job-1"}}}
DELAYS = (0.05, 0.1)


class Clock:
    """Wall-clock seconds that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Function:
    """A handler that records each call, fails its first ``failures`` calls, and can be held."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ValueError("DescribeJob failed")
        self.calls: list[tuple[dict[str, Any], Any, float]] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        self.calls.append((event, context, time.monotonic()))
        self.entered.set()
        self.release.wait(timeout=10)
        if len(self.calls) <= self.failures:
            raise self.error

    def __len__(self) -> int:
        return len(self.calls)


@pytest.fixture
def failures() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def invokers() -> Iterator[list[AsyncInvoker]]:
    started: list[AsyncInvoker] = []
    yield started
    for invoker in started:
        invoker.stop()


def start(invokers: list[AsyncInvoker], function: Function, failures: list[dict[str, Any]], **options: Any) -> Any:
    options.setdefault("retry_delays", DELAYS)
    invoker = AsyncInvoker("notifier", function, on_failure=failures.append, **options).start()
    invokers.append(invoker)
    return invoker


def test_an_event_that_succeeds_runs_once_and_reports_nothing(
    invokers: list[AsyncInvoker], failures: list[dict[str, Any]]
) -> None:
    # given
    function = Function()
    invoker = start(invokers, function, failures)
    # when
    request_id = invoker.invoke(EVENT)
    # then
    assert invoker.wait_idle(timeout=5)
    assert len(function) == 1
    event, context, _ = function.calls[0]
    assert event == EVENT
    assert context.aws_request_id == request_id
    assert context.function_name == "notifier"
    assert failures == []


def test_the_caller_gets_the_request_id_at_once_and_never_sees_the_functions_error(
    invokers: list[AsyncInvoker], failures: list[dict[str, Any]]
) -> None:
    # given: a function that is slow and then fails
    function = Function(failures=10)
    function.release.clear()
    invoker = start(invokers, function, failures)
    # when
    started = time.monotonic()
    request_id = invoker.invoke(EVENT)
    returned_after = time.monotonic() - started
    # then
    assert returned_after < 0.05
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
    assert function.entered.wait(timeout=5)
    assert not invoker.idle()  # still running
    function.release.set()
    assert invoker.wait_idle(timeout=5)


def test_a_function_error_is_retried_twice_then_recorded_as_lambdas_destination_record(
    invokers: list[AsyncInvoker], failures: list[dict[str, Any]]
) -> None:
    # given
    function = Function(failures=10, error=ValueError("DescribeJob failed"))
    invoker = start(invokers, function, failures)
    # when
    request_id = invoker.invoke(EVENT)
    assert invoker.wait_idle(timeout=5)
    # then: the first run and NOTIFIER_ASYNC_RETRY_ATTEMPTS retries, all with the same request ID
    assert len(function) == 1 + c.NOTIFIER_ASYNC_RETRY_ATTEMPTS == 3
    assert {context.aws_request_id for _, context, _ in function.calls} == {request_id}
    (record,) = failures
    assert set(record) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    assert record["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:notifier:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == EVENT
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorMessage"] == "DescribeJob failed"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert [attempt.number for attempt in invoker.attempts] == [1, 2, 3]


def test_retries_wait_their_delays(invokers: list[AsyncInvoker], failures: list[dict[str, Any]]) -> None:
    # given
    function = Function(failures=10)
    invoker = start(invokers, function, failures, retry_delays=(0.1, 0.2))
    # when
    invoker.invoke(EVENT)
    assert invoker.wait_idle(timeout=5)
    # then
    first, second, third = (at for _, _, at in function.calls)
    assert second - first >= 0.1
    assert third - second >= 0.2


def test_an_error_then_a_success_is_one_retry_and_no_failure(
    invokers: list[AsyncInvoker], failures: list[dict[str, Any]]
) -> None:
    # given
    function = Function(failures=1)
    invoker = start(invokers, function, failures)
    # when
    invoker.invoke(EVENT)
    assert invoker.wait_idle(timeout=5)
    # then
    assert len(function) == 2
    assert [attempt.ok for attempt in invoker.attempts] == [False, True]
    assert failures == []


def test_other_events_run_while_one_waits_for_its_retry(
    invokers: list[AsyncInvoker], failures: list[dict[str, Any]]
) -> None:
    # given: one worker; the first event fails and waits half a second to be retried
    function = Function(failures=1)
    invoker = start(invokers, function, failures, retry_delays=(0.5, 0.5), concurrency=1)
    # when
    invoker.invoke({**EVENT, "id": "first"})
    invoker.invoke({**EVENT, "id": "second"})
    assert invoker.wait_idle(timeout=5)
    # then
    assert [event["id"] for event, _, _ in function.calls] == ["first", "second", "first"]


def test_an_event_older_than_the_max_age_is_not_run_and_is_recorded_as_age_exceeded(
    invokers: list[AsyncInvoker], failures: list[dict[str, Any]]
) -> None:
    # given: the only worker is busy with another event
    clock = Clock()
    function = Function()
    function.release.clear()
    invoker = start(invokers, function, failures, clock=clock, max_event_age_seconds=60, concurrency=1)
    invoker.invoke({**EVENT, "id": "busy"})
    assert function.entered.wait(timeout=5)
    # when: another waits in the queue past its max age
    request_id = invoker.invoke({**EVENT, "id": "stale"})
    clock.advance(61)
    function.release.set()
    assert invoker.wait_idle(timeout=5)
    # then
    assert [event["id"] for event, _, _ in function.calls] == ["busy"]
    (record,) = failures
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"]["id"] == "stale"
    assert "responsePayload" not in record  # it never ran, so there is no response


def test_an_event_that_grows_too_old_between_retries_is_not_retried_again(
    invokers: list[AsyncInvoker], failures: list[dict[str, Any]]
) -> None:
    # given: each run takes (on the test's clock) 40 s and fails
    clock = Clock()

    class Slow(Function):
        def __call__(self, event: dict[str, Any], context: Any) -> None:
            clock.advance(40)
            super().__call__(event, context)

    function = Slow(failures=10)
    invoker = start(invokers, function, failures, clock=clock, max_event_age_seconds=60)
    # when
    invoker.invoke(EVENT)
    assert invoker.wait_idle(timeout=5)
    # then: run at age 0 and 40 s; at 80 s it is too old
    assert len(function) == 2
    (record,) = failures
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responsePayload"]["errorType"] == "ValueError"


def test_running_past_the_timeout_is_a_function_error(
    invokers: list[AsyncInvoker], failures: list[dict[str, Any]]
) -> None:
    # given
    class Overrun(Function):
        def __call__(self, event: dict[str, Any], context: Any) -> None:
            super().__call__(event, context)
            time.sleep(0.06)

    function = Overrun()
    invoker = start(invokers, function, failures, timeout_seconds=0.05)
    # when
    invoker.invoke(EVENT)
    assert invoker.wait_idle(timeout=5)
    # then
    assert len(function) == 3
    (record,) = failures
    assert record["responsePayload"]["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.05 seconds" in record["responsePayload"]["errorMessage"]


def test_a_stopped_invoker_refuses_events_so_the_caller_can_dead_letter_them(failures: list[dict[str, Any]]) -> None:
    # given
    invoker = AsyncInvoker("notifier", Function(), on_failure=failures.append, retry_delays=DELAYS).start()
    invoker.stop()
    # when / then
    with pytest.raises(InvokerStopped):
        invoker.invoke(EVENT)
    assert invoker.idle()


def test_stopping_abandons_events_still_waiting_for_a_retry(failures: list[dict[str, Any]]) -> None:
    # given
    function = Function(failures=10)
    invoker = AsyncInvoker("notifier", function, on_failure=failures.append, retry_delays=(30.0, 30.0)).start()
    invoker.invoke(EVENT)
    deadline = time.monotonic() + 5
    while not invoker.attempts and time.monotonic() < deadline:
        time.sleep(0.01)
    # when
    invoker.stop()
    # then
    assert invoker.idle()
    assert invoker.abandoned == [EVENT]
    assert failures == []


def test_a_destination_that_fails_does_not_stop_the_function(
    invokers: list[AsyncInvoker],
) -> None:
    # given
    def refuse(record: dict[str, Any]) -> None:
        raise RuntimeError("queue gone")

    function = Function(failures=3)
    invoker = AsyncInvoker("notifier", function, on_failure=refuse, retry_delays=DELAYS).start()
    invokers.append(invoker)
    # when
    invoker.invoke({**EVENT, "id": "lost"})
    assert invoker.wait_idle(timeout=5)
    invoker.invoke({**EVENT, "id": "next"})
    # then
    assert invoker.wait_idle(timeout=5)
    assert [event["id"] for event, _, _ in function.calls][-1] == "next"
    assert invoker.attempts[-1].ok


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_attempts": 3}, "MaximumRetryAttempts"),
        ({"max_event_age_seconds": 59}, "MaximumEventAgeInSeconds"),
        ({"max_event_age_seconds": 6 * 60 * 60 + 1}, "MaximumEventAgeInSeconds"),
        ({"retry_delays": (0.1,)}, "retry_delays"),
    ],
)
def test_settings_lambda_would_refuse_are_refused(options: dict[str, Any], message: str) -> None:
    # when / then
    with pytest.raises(ValueError, match=message):
        AsyncInvoker("notifier", Function(), on_failure=print, **{"retry_delays": DELAYS, **options})
