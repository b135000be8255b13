"""Soak: many warm acks of the callback, then many decisions by the decider, each part in one process.

    PYTHONPATH=lambdas:. .venv/bin/python bench/soak.py [--acks 10000] [--decisions 2000] [--window 1000]
    PYTHONPATH=lambdas:. .venv/bin/python bench/soak.py --part acks --acks 2000 --profile /tmp/ack.prof

- acks: as bench/callback_ack.py's warm part does: one process, moto and the Slack stand-in on loopback, the
  callback handler called as Lambda would with a freshly signed Approve click each time (secret fetch cached,
  signature check, SQS send). The queue is drained after each window (untimed), so moto's queue does not grow.
- decisions: one ``LocalDeployment``; every job is created, made Suspended and given its approval request first
  (Slack's post limit off for that set-up only: one channel, thousands of posts), and each is clicked once
  (callback, so each queued message is a real signed decision). Then, with Slack's limits on, the decider is
  invoked as Lambda's SQS event source does (batch size 1, the stack's): receive one message, call the
  handler with the SQS event, delete what succeeded; each invocation is timed.

Each part prints RSS at the start, after each window and at the end, p50/p99 per window, and totals.
Targets: warm ack p99 <= 15 ms on loopback; memory flat. ``SOAK_TRACE_MEMORY=1`` also reports the memory the
decisions loop kept, by whether the product's code or the stand-ins allocated it (tracemalloc; slower).
``--profile FILE`` writes a cProfile of the timed part's main thread only (moto's server and the stand-ins
serve in their own threads, so they show up as socket waits in the product's calls).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

sys.path[:0] = ["lambdas", "."]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.2f} · p99 {p99:6.2f} · max {ordered[-1]:7.2f} ms"


class Windows:
    """Timings and RSS, a window at a time."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size
        self.all: list[float] = []
        self.current: list[float] = []
        self.rss_start = rss_mb()
        print(f"{name}: RSS at start {self.rss_start:.1f} MB", flush=True)

    def add(self, ms: float, on_window: Callable[[], None] | None = None) -> None:
        self.all.append(ms)
        self.current.append(ms)
        if len(self.current) == self.size:
            self.close(on_window)

    def close(self, on_window: Callable[[], None] | None = None) -> None:
        if not self.current:
            return
        if on_window is not None:
            on_window()
        done = len(self.all)
        print(
            f"{self.name} {done - len(self.current) + 1:>6}-{done:<6} {summary(self.current)} · RSS {rss_mb():6.1f} MB",
            flush=True,
        )
        self.current = []

    def total(self) -> None:
        self.close()
        print(
            f"{self.name} total {len(self.all)}: {summary(self.all)} · mean {statistics.fmean(self.all):.2f} ms · "
            f"RSS {self.rss_start:.1f} → {rss_mb():.1f} MB",
            flush=True,
        )


def profiled(path: str | None) -> cProfile.Profile | None:
    if not path:
        return None
    profile = cProfile.Profile()
    profile.enable()
    return profile


def finish_profile(profile: cProfile.Profile | None, path: str | None) -> None:
    if profile is not None and path:
        profile.disable()
        profile.dump_stats(path)
        print(f"profile written to {path} (python -m pstats {path})", flush=True)


# --------------------------------------------------------------------------------------------- acks


def run_acks(count: int, window: int, profile_path: str | None) -> None:
    from bench.callback_ack import SECRET, TOKEN, handler_env, signed_event
    from sandbox.aws_local import LocalAws
    from sandbox.slack import SlackStandIn

    # moto in its own process: SQS is another service to the callback, not work on its own thread.
    local = LocalAws(separate_process=True).start().provision(TOKEN, SECRET)
    slack = SlackStandIn(TOKEN, channels=[{"id": "C0APPROVALS", "name": "s3-approvals"}]).start()
    os.environ.update(handler_env(local, slack))
    sqs = local.client("sqs")
    try:
        from approvals.handlers import callback
        from sandbox.apigw import LambdaContext

        context = LambdaContext("callback", timeout_seconds=10)
        callback.handler(signed_event(), context)  # the cold one, not counted
        windows = Windows("ack", window)
        profile = profiled(profile_path)
        for _ in range(count):
            event = signed_event()
            started = time.perf_counter()
            response = callback.handler(event, context)
            elapsed = (time.perf_counter() - started) * 1000
            assert response["statusCode"] == 200, response
            windows.add(elapsed, lambda: drain(sqs, local.queue_url))
        finish_profile(profile, profile_path)
        windows.total()
    finally:
        slack.stop()
        local.stop()


def drain(sqs: Any, queue_url: str) -> None:
    """Receive and delete every message (moto, like SQS, allows one PurgeQueue a minute)."""
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)


# --------------------------------------------------------------------------------------------- decisions


def run_decisions(count: int, window: int, profile_path: str | None) -> None:
    from sandbox.demo import quiet_terminal
    from sandbox.local import ALICE, REGION, LocalDeployment, sqs_record

    quiet_terminal()
    with LocalDeployment() as d:
        d.pump.stop()  # this loop is the decisions queue's event source from here on
        from approvals.handlers import decider
        from sandbox.apigw import LambdaContext

        sqs = d.aws.client("sqs")
        arn = sqs.get_queue_attributes(QueueUrl=d.aws.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

        started = time.perf_counter()
        d.slack.rate_limits = False  # set-up only: thousands of requests in one channel
        jobs = []
        for n in range(count):
            job = d.create_job(description=f"Soak job {n}")
            d.jobs.advance_until(job, "Suspended")
            jobs.append(job)
            if n % 200 == 199:
                d.settle(timeout=600)
        d.settle(timeout=600)
        for message in request_messages(d, jobs).values():
            payload = d.slack.block_actions_payload(message.channel, message.ts, "approve_job", user=ALICE.id)
            click = d.post_payload(payload)
            assert click.status == 200, click
        d.slack.rate_limits = True
        print(f"set-up: {count} jobs Suspended, requested and clicked in {time.perf_counter() - started:.0f} s")

        windows = Windows("decision", window)
        traced = os.environ.get("SOAK_TRACE_MEMORY") == "1"
        if traced:  # where the memory a run keeps was allocated: the product's code, or the stand-ins'
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
        profile = profiled(profile_path)
        handled = failed = 0
        idle_polls = 0
        while handled < count and idle_polls < 50:
            got = sqs.receive_message(
                QueueUrl=d.aws.queue_url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                idle_polls += 1
                time.sleep(0.1)
                continue
            idle_polls = 0
            message = got[0]
            event = {"Records": [sqs_record(message, arn, REGION)]}
            context = LambdaContext("decider", timeout_seconds=d.aws.timing.function_timeout)
            begun = time.perf_counter()
            response = decider.handler(event, context) or {}
            elapsed = (time.perf_counter() - begun) * 1000
            if response.get("batchItemFailures"):
                failed += 1
                continue
            sqs.delete_message(QueueUrl=d.aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
            handled += 1
            windows.add(elapsed)
        finish_profile(profile, profile_path)
        windows.total()
        if traced:
            report_memory_growth(before, tracemalloc.take_snapshot(), handled)
        d.settle(timeout=600)
        ready = sum(1 for job in jobs if d.jobs.job_status(job) == "Ready")
        once = sum(1 for job in jobs if len(d.jobs.status_updates(job)) == 1)
        print(
            f"decisions: {handled} handled, {failed} batch item failures · {ready}/{count} jobs Ready · "
            f"{once}/{count} with exactly one UpdateJobStatus · Slack 429s {d.slack.rate_limited()}"
        )


def report_memory_growth(before: Any, after: Any, handled: int) -> None:
    """Memory still held after the loop that was allocated during it, by where it was allocated."""
    groups: dict[str, int] = {}
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename
        if "/lambdas/approvals/" in name:
            group = "product code (lambdas/approvals)"
        elif "/sandbox/" in name or "/moto/" in name or "werkzeug" in name:
            group = "stand-ins (sandbox/, moto, werkzeug)"
        else:
            group = "libraries and the standard library"
        groups[group] = groups.get(group, 0) + stat.size_diff
    for group, size in sorted(groups.items(), key=lambda item: -item[1]):
        print(
            f"  memory kept, allocated by {group}: {size / 1024:+.0f} KiB ({size / max(1, handled):+.0f} B a decision)"
        )


def request_messages(d: Any, jobs: list[str]) -> dict[str, Any]:
    """Each job's approval request, found in one pass over the channel (``request_message`` scans it per job)."""
    from sandbox.local import CHANNEL

    wanted = set(jobs)
    found: dict[str, Any] = {}
    for message in d.slack.messages(CHANNEL):
        for job in JOB_ID.findall(json.dumps(message.blocks)):
            if job in wanted and job not in found:
                found[job] = message
    missing = wanted - set(found)
    if missing:
        raise LookupError(f"{len(missing)} jobs have no approval request, e.g. {sorted(missing)[:3]}")
    return found


JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["both", "acks", "decisions"], default="both")
    parser.add_argument("--acks", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--window", type=int, default=1_000)
    parser.add_argument("--profile", help="write a cProfile of the timed loop (one part only)")
    opts = parser.parse_args()
    print(f"python {sys.version.split()[0]} · {os.cpu_count()} cores", flush=True)
    if opts.part == "acks":
        run_acks(opts.acks, opts.window, opts.profile)
    elif opts.part == "decisions":
        run_decisions(opts.decisions, opts.window, opts.profile)
    else:  # each part in a fresh process of its own
        for part in ("acks", "decisions"):
            args = [sys.executable, __file__, "--part", part, "--window", str(opts.window)]
            args += ["--acks", str(opts.acks), "--decisions", str(opts.decisions)]
            done = subprocess.run(args, check=False)
            if done.returncode != 0:
                return done.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
