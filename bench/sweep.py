"""What one lifecycle tick costs: DynamoDB and Slack calls, items read, and time, at N pending requests.

    PYTHONPATH=lambdas:. .venv/bin/python bench/sweep.py [--pending 10 10000] [--due 10]

For each N: N pending requests are written the way the notifier writes them (claim, post, first step due
in 15 minutes), moto in its own process. Then the real ``LifecycleSweep`` (approvals.domain.sweep) runs a
tick with nothing due; then ``--due`` more requests, posted 20 minutes earlier, are added and a tick
reminds them (into a recording chat: no Slack, so the figures are the product's and DynamoDB's), and one
more tick finds nothing left. Every DynamoDB call the sweep makes is
counted (botocore's before-call event), with the items each Query read (``ScannedCount``: what DynamoDB
bills a Query for). The time is on moto, whose index query walks the whole table; DynamoDB's does not,
so the calls and items are the figures that carry over to AWS.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

sys.path[:0] = ["lambdas", "."]


class RecordingChat:
    """Takes the sweep's posts (a reminder each) and counts them; nothing leaves the process."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def post(self, channel: str, text: str, blocks: Any, metadata: Any, thread_ts: str | None = None) -> str:
        self.calls["chat.postMessage"] += 1
        return f"{time.time():.6f}"

    def update(self, channel: str, ts: str, text: str, blocks: Any) -> None:
        self.calls["chat.update"] += 1


class SuspendedJobs:
    """S3 Control's DescribeJob for the reminders' check that each job still waits: every job is Suspended
    (counted; nothing leaves the process)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def describe(self, ref: Any) -> Any:
        from approvals.models.job import Job

        self.calls["s3:DescribeJob"] += 1
        return Job.model_validate(
            {"JobId": ref.job_id, "Status": "Suspended", "ConfirmationRequired": True, "Priority": 10}
        )


def seed(store: Any, count: int, now: datetime, first: int = 0) -> list[Any]:
    from approvals.domain.lifecycle import Lifecycle, deadline, next_step
    from approvals.models.job import JobRef
    from approvals.models.records import ApprovalRequest, RequestState

    refs = []
    for index in range(first, first + count):
        ref = JobRef(account_id="123456789012", region="us-east-1", job_id=f"{index:08d}-0000-4000-8000-000000000000")
        ends = deadline(now, Lifecycle.of(None).expiry)
        request = ApprovalRequest(job=ref, state=RequestState.POSTING, requested_at=now, deadline=ends)
        store.claim_posting(request, now, 300)
        store.mark_posted(ref, "C0APPROVALS", f"{index}.000100", next_step(now, ends, Lifecycle.of(None), 0).at)
        refs.append(ref)
    return refs


def measure(pending: int, due: int) -> None:

    from approvals.adapters.store import DynamoRequestStore
    from approvals.domain.authorisation import Approvers
    from approvals.domain.sweep import LifecycleSweep
    from sandbox.aws_local import LocalAws

    aws = LocalAws(separate_process=True).start().provision("xoxb-bench", "bench-secret", 60)
    try:
        client = aws.client("dynamodb")
        calls: Counter[str] = Counter()
        scanned: list[int] = []

        def count(event_name: str, **_: Any) -> None:
            calls[event_name.rsplit(".", 1)[-1]] += 1

        def read(parsed: dict[str, Any], **_: Any) -> None:
            if "ScannedCount" in parsed:
                scanned.append(int(parsed["ScannedCount"]))

        store = DynamoRequestStore(client, aws.requests_table, aws.audit_table)
        posted = datetime.now(UTC)
        started = time.perf_counter()
        seed(store, pending, posted)
        print(f"{pending:>6} pending requests written in {time.perf_counter() - started:.1f} s")
        client.meta.events.register("before-call.dynamodb", count)
        client.meta.events.register("after-call.dynamodb.Query", lambda parsed, **kw: read(parsed))

        def tick(at: datetime) -> tuple[float, Counter[str], int, Any]:
            chat, jobs = RecordingChat(), SuspendedJobs()
            sweep = LifecycleSweep(
                store=store,
                chat=chat,  # type: ignore[arg-type]
                jobs=jobs,  # type: ignore[arg-type]
                approvers=Approvers(frozenset({"U0ALICE01"}), ()),
                decide=lambda command: None,  # type: ignore[arg-type,return-value]  # no expiry is due
                clock=lambda: at,
                large_job_threshold=100_000,
            )
            calls.clear()
            scanned.clear()
            began = time.perf_counter()
            result = sweep.run()
            elapsed = (time.perf_counter() - began) * 1000
            return elapsed, calls + chat.calls + jobs.calls, sum(scanned), result

        idle = [tick(posted + timedelta(minutes=1)) for _ in range(5)]  # the pending ones' first step: +15 min
        ms, made, items, _ = idle[-1]
        print(
            f"       nothing due: {statistics.median(t[0] for t in idle):7.1f} ms (median of 5) · calls {dict(made)}"
            f" · items read {items}"
        )
        # the rest, posted 20 minutes earlier: their first reminder is due
        seed(store, due, posted - timedelta(minutes=20), first=pending)
        ms, made, items, result = tick(posted + timedelta(minutes=1))
        again, _, _, second = tick(posted + timedelta(minutes=1))
        print(
            f"       {due} due:      {ms:7.1f} ms · calls {dict(made)} · items read {items}"
            f" · outcomes {dict(result.outcomes)}"
        )
        print(f"       the next tick: {again:7.1f} ms · outcomes {dict(second.outcomes) or 'nothing due'}")
    finally:
        aws.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, nargs="+", default=[10, 10_000])
    parser.add_argument("--due", type=int, default=10)
    args = parser.parse_args()
    for pending in args.pending:
        measure(pending, args.due)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
