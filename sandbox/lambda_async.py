"""Lambda's asynchronous invocation, locally: the queue between an event source and a function.

What Lambda does with an event it accepted for asynchronous invocation (developer guide,
"invocation-async"), this does:

- ``invoke`` only queues the event and returns its request ID at once (Invoke with
  ``InvocationType=Event`` answers 202); the caller is never blocked by the function, nor told of its errors;
- the function runs later, on a worker thread, with a ``LambdaContext`` carrying the same request ID on
  every attempt;
- a function error (an exception, or running past the function's timeout) is retried
  ``retry_attempts`` times (0 to 2), after ``retry_delays`` (about 1 and then 2 minutes in AWS; scaled
  down in the sandbox). Other events keep running meanwhile;
- an event older than ``max_event_age_seconds`` (60 s to 6 h) when its turn comes is not run;
- an event whose retries are exhausted, or that grew too old, goes to the on-failure destination as
  Lambda's destination record (``condition`` RetriesExhausted or EventAgeExceeded). An event that was
  never run has no response to report, so its record has no ``responseContext``/``responsePayload``
  (an inference: the documented sample is of RetriesExhausted).

Events may run concurrently (``concurrency`` workers) and in any order after a retry, as in AWS.
"""

from __future__ import annotations

import copy
import datetime as dt
import heapq
import itertools
import logging
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra import constants as c
from sandbox.apigw import LambdaContext

__all__ = [
    "AWS_RETRY_DELAYS",
    "AsyncInvoker",
    "Attempt",
    "InvokerStopped",
]

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
Destination = Callable[[dict[str, Any]], Any]

AWS_RETRY_DELAYS: tuple[float, ...] = (60.0, 120.0)  # about a minute before the first retry, two before the second
MAX_RETRY_ATTEMPTS = 2  # MaximumRetryAttempts: 0-2
MIN_EVENT_AGE_SECONDS, MAX_EVENT_AGE_SECONDS = 60, 6 * 60 * 60  # MaximumEventAgeInSeconds: 60 s - 6 h


class InvokerStopped(RuntimeError):
    """The function does not accept events any more: the caller keeps the event (EventBridge would dead-letter it)."""


@dataclass(frozen=True)
class Attempt:
    """One run of the function for one event."""

    request_id: str
    number: int  # 1 for the first run, 2 for the first retry, ...
    error: str | None  # "ErrorType: message", or None when it succeeded

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Event:
    payload: dict[str, Any]
    request_id: str
    accepted_at: float  # clock() when Lambda accepted it: the start of its age
    runs: int = 0
    error: dict[str, Any] | None = None  # the last run's error response


@dataclass(order=True)
class _Retry:
    due: float  # time.monotonic()
    seq: int
    event: _Event = field(compare=False)


class AsyncInvoker:
    """One function's asynchronous invocation queue, its retries and its on-failure destination.

    ``idle()`` is true when no event is queued, running or waiting for a retry; ``wait_idle`` waits for it.
    ``attempts`` lists every run, oldest first; ``abandoned`` the events still queued when it was stopped.
    """

    def __init__(
        self,
        function_name: str,
        handler: Handler,
        *,
        on_failure: Destination,
        retry_attempts: int = c.NOTIFIER_ASYNC_RETRY_ATTEMPTS,
        max_event_age_seconds: int = c.NOTIFIER_MAX_EVENT_AGE_SECONDS,
        retry_delays: Sequence[float] = AWS_RETRY_DELAYS,
        timeout_seconds: float = 60.0,
        concurrency: int = 1,
        clock: Callable[[], float] = time.time,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        if not 0 <= retry_attempts <= MAX_RETRY_ATTEMPTS:
            raise ValueError(
                f"retry_attempts must be 0 to {MAX_RETRY_ATTEMPTS} (MaximumRetryAttempts), got {retry_attempts}"
            )
        if not MIN_EVENT_AGE_SECONDS <= max_event_age_seconds <= MAX_EVENT_AGE_SECONDS:
            raise ValueError(
                f"max_event_age_seconds must be {MIN_EVENT_AGE_SECONDS} to {MAX_EVENT_AGE_SECONDS} "
                f"(MaximumEventAgeInSeconds), got {max_event_age_seconds}"
            )
        if len(retry_delays) < retry_attempts or any(delay < 0 for delay in retry_delays):
            raise ValueError(f"retry_delays needs {retry_attempts} non-negative delays, got {list(retry_delays)}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.function_name = function_name
        self.function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self._handler = handler
        self._on_failure = on_failure
        self.retry_attempts = retry_attempts
        self.max_event_age_seconds = max_event_age_seconds
        self.retry_delays = tuple(retry_delays)
        self.timeout_seconds = timeout_seconds
        self._region, self._account_id = region, account_id
        self._clock = clock
        self._concurrency = concurrency
        self._changed = threading.Condition()
        self._ready: deque[_Event] = deque()
        self._retries: list[_Retry] = []
        self._seq = itertools.count()
        self._running = 0
        self._accepting = False
        self._workers: list[threading.Thread] = []
        self.attempts: list[Attempt] = []
        self.abandoned: list[dict[str, Any]] = []  # events still queued when the invoker stopped

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> AsyncInvoker:
        with self._changed:
            if self._accepting:
                return self
            self._accepting = True
        self._workers = [
            threading.Thread(target=self._work, name=f"lambda-async-{self.function_name}-{n}", daemon=True)
            for n in range(self._concurrency)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Refuse new events and end the workers after the runs in progress; queued events are abandoned."""
        with self._changed:
            self._accepting = False
            self.abandoned.extend(e.payload for e in self._ready)
            self.abandoned.extend(r.event.payload for r in self._retries)
            self._ready.clear()
            self._retries.clear()
            self._changed.notify_all()
        for worker in self._workers:
            worker.join(timeout=timeout)
        self._workers = []

    # -- the API --------------------------------------------------------------------------------------

    def invoke(self, event: dict[str, Any]) -> str:
        """Accept ``event`` for asynchronous invocation and return its request ID, without running it."""
        accepted = _Event(copy.deepcopy(event), str(uuid.uuid4()), self._clock())
        with self._changed:
            if not self._accepting:
                raise InvokerStopped(f"function {self.function_name} is not accepting events")
            self._ready.append(accepted)
            self._changed.notify_all()
        return accepted.request_id

    def idle(self) -> bool:
        """No event queued, running or waiting for a retry."""
        with self._changed:
            return self._is_idle()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until ``idle()``; False on timeout."""
        with self._changed:
            return self._changed.wait_for(self._is_idle, timeout=timeout)

    def __len__(self) -> int:
        """How many runs there were (retries included)."""
        return len(self.attempts)

    # -- the workers ------------------------------------------------------------------------------------

    def _is_idle(self) -> bool:
        return not self._ready and not self._retries and self._running == 0

    def _next(self) -> _Event | None:
        """The next event to run, waiting for one (or for a retry to fall due); None when stopped."""
        with self._changed:
            while self._accepting:
                now = time.monotonic()
                while self._retries and self._retries[0].due <= now:
                    self._ready.append(heapq.heappop(self._retries).event)
                if self._ready:
                    self._running += 1
                    return self._ready.popleft()
                wait = self._retries[0].due - now if self._retries else None
                self._changed.wait(wait)
            return None

    def _work(self) -> None:
        while (event := self._next()) is not None:
            try:
                self._process(event)
            except Exception:  # the model itself must not die with the function
                logger.exception("async invocation failed", extra={"function": self.function_name})
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

    def _process(self, event: _Event) -> None:
        if self._clock() - event.accepted_at > self.max_event_age_seconds:
            self._fail(event, "EventAgeExceeded")
            return
        event.runs += 1
        event.error = self._run(event)
        self.attempts.append(Attempt(event.request_id, event.runs, _describe(event.error)))
        if event.error is None:
            return
        if event.runs > self.retry_attempts:
            self._fail(event, "RetriesExhausted")
            return
        delay = self.retry_delays[event.runs - 1]
        with self._changed:
            heapq.heappush(self._retries, _Retry(time.monotonic() + delay, next(self._seq), event))
            self._changed.notify_all()

    def _run(self, event: _Event) -> dict[str, Any] | None:
        """Run the function once; its error response (as the Python runtime reports it), or None."""
        context = LambdaContext(
            self.function_name,
            timeout_seconds=self.timeout_seconds,
            region=self._region,
            account_id=self._account_id,
            aws_request_id=event.request_id,
        )
        started = time.monotonic()
        try:
            self._handler(copy.deepcopy(event.payload), context)
        except Exception as exc:
            return {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "requestId": event.request_id,
                "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
            }
        if time.monotonic() - started > self.timeout_seconds:  # Lambda would have stopped it: an error
            timed_out = f"Task timed out after {self.timeout_seconds:.2f} seconds"
            return {
                "errorMessage": f"RequestId: {event.request_id} Error: {timed_out}",
                "errorType": "Sandbox.Timedout",
            }
        return None

    def _fail(self, event: _Event, condition: str) -> None:
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": dt.datetime.fromtimestamp(self._clock(), dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": f"{self.function_arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": event.runs,
            },
            "requestPayload": copy.deepcopy(event.payload),
        }
        if event.error is not None:
            record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
            record["responsePayload"] = event.error
        try:
            self._on_failure(record)
        except Exception:  # Lambda discards an event its destination refuses
            logger.exception("on-failure destination refused a record", extra={"function": self.function_name})


def _describe(error: dict[str, Any] | None) -> str | None:
    return None if error is None else f"{error['errorType']}: {error['errorMessage']}"
