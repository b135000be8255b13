"""Benchmark: click to UpdateJobStatus under load, end to end through the sandbox (``LocalDeployment``).

    PYTHONPATH=lambdas:. .venv/bin/python bench/load.py [--jobs 100] [--setup-slack-limit off] [--click-slack-limit on]

1. creates --jobs jobs that need confirmation (real boto3 CreateJob to the S3 Batch Operations emulator), moves
   each to Suspended and waits until the notifier has posted every approval request;
2. approves --warmup jobs one by one (the decider's first invocation is its cold start; not counted), then
   sends one signed Approve click per job from an allowed approver, all at once (one thread per click,
   released together), each through API Gateway's front to the callback, the queue and the decider;
3. waits until everything settles and checks that each job got exactly one UpdateJobStatus, and that it is
   Ready.

Per job it measures, from sending the click (``time.perf_counter()`` in the clicking thread):
- ack: the callback's HTTP answer;
- total: the emulator receiving UpdateJobStatus (``JobStore.status_updates()``);
- queue: the local queue's delivery delay, from SQS's SentTimestamp (ms) to the queue pump handing the
  message to the decider (the sandbox's ``QueuePump`` polls every 50 ms when idle, and runs at most the
  decider's maximum concurrency at once, so messages also wait for a free slot);
- decision: total minus queue, i.e. what the target counts (callback + send, then decider until UpdateJobStatus).
Target: decision p99 <= 100 ms.

Slack's chat.postMessage limit (1 a second per channel, a short burst) is on in the stand-in by default. Posting
100 approval requests into one channel takes Slack 97 s or more, so the set-up turns it off by default
(--setup-slack-limit on keeps it); the click phase keeps it on (--click-slack-limit off turns it off). The
decider's UpdateJobStatus does not wait on chat.postMessage; the notifier's thread replies after it do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from typing import Any

sys.path[:0] = ["lambdas", "."]

from bench.soak import request_messages  # noqa: E402
from sandbox.demo import quiet_terminal  # noqa: E402
from sandbox.local import ALICE, LocalDeployment, QueuePump  # noqa: E402


class TimedDecider:
    """The decider handler, recording when the queue pump handed each message to it."""

    def __init__(self, handler: Any, job_ids: list[str]) -> None:
        self._handler = handler
        self._job_ids = job_ids
        self._lock = threading.Lock()
        self.received: dict[str, list[tuple[float, float]]] = {}  # job id → [(sent, handed over)], perf clock

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        handed = time.perf_counter()
        offset = time.time() - handed  # wall clock minus perf clock, now
        for record in event.get("Records", []):
            sent_ms = int(record.get("attributes", {}).get("SentTimestamp", "0"))
            job = next((j for j in self._job_ids if j in record["body"]), None)
            if job is not None and sent_ms:
                with self._lock:
                    self.received.setdefault(job, []).append((sent_ms / 1000 - offset, handed))
        return self._handler(event, context)


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "n/a"
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):7.1f} · p99 {p99:7.1f} · max {ordered[-1]:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--setup-slack-limit", choices=["on", "off"], default="off")
    parser.add_argument("--click-slack-limit", choices=["on", "off"], default="on")
    parser.add_argument(
        "--slack-time-scale", type=float, default=0.02, help="real seconds one Slack second lasts (stand-in and pacing)"
    )
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--warmup", type=int, default=1, help="jobs approved one by one before the load (not counted)")
    opts = parser.parse_args()
    quiet_terminal()
    print(f"python {sys.version.split()[0]} · {os.cpu_count()} cores", flush=True)

    with LocalDeployment(slack_time_scale=opts.slack_time_scale) as d:
        d.slack.rate_limits = opts.setup_slack_limit == "on"

        # 1. the jobs, Suspended, each with its approval request in Slack
        started = time.perf_counter()
        warmup = [d.create_job(description=f"Warm-up job {n}") for n in range(opts.warmup)]
        jobs = [d.create_job(description=f"Load job {n}") for n in range(opts.jobs)]
        d.settle(timeout=opts.settle_timeout)
        for job in warmup + jobs:
            d.jobs.advance_until(job, "Suspended")
        d.settle(timeout=opts.settle_timeout)
        payloads = {
            job: d.slack.block_actions_payload(message.channel, message.ts, "approve_job", user=ALICE.id)
            for job, message in request_messages(d, jobs).items()
        }
        for job in warmup:  # the decider's first invocation builds its clients (its cold start)
            d.click(job, "approve_job", ALICE)
            d.settle(timeout=opts.settle_timeout)
        setup_seconds = time.perf_counter() - started
        setup_429 = d.slack.rate_limited()

        # the queue pump, with the decider timed (same queue, handler and concurrency as the deployment's)
        from approvals.handlers import decider

        d.pump.stop()
        timed = TimedDecider(decider.handler, jobs)
        sqs = d.aws.client("sqs")
        arn = sqs.get_queue_attributes(QueueUrl=d.aws.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        d.pump = QueuePump(
            sqs,
            d.aws.queue_url,
            arn,
            timed,
            timeout_seconds=d.aws.timing.function_timeout,
            concurrency=d.decider_concurrency,
        ).start()
        d.slack.rate_limits = opts.click_slack_limit == "on"

        # 2. one click per job, all released at once
        sent: dict[str, float] = {}
        acks: dict[str, Any] = {}
        gate = threading.Barrier(len(jobs))

        def click(job: str) -> None:
            gate.wait()
            sent[job] = time.perf_counter()
            acks[job] = d.post_payload(payloads[job])

        threads = [threading.Thread(target=click, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        d.settle(timeout=opts.settle_timeout)

        # 3. exactly one UpdateJobStatus per job, Ready
        problems = []
        total, queue, decision, ack = [], [], [], []
        for job in jobs:
            updates = d.jobs.status_updates(job)
            if acks[job].status != 200:
                problems.append(f"{job}: callback answered {acks[job].status}")
            if len(updates) != 1 or updates[0].status != "Ready":
                problems.append(f"{job}: UpdateJobStatus calls {updates}")
            if d.jobs.job_status(job) != "Ready":
                problems.append(f"{job}: status {d.jobs.job_status(job)}")
            if not updates:
                continue
            ack.append(acks[job].seconds * 1000)
            whole = (updates[0].arrived - sent[job]) * 1000
            total.append(whole)
            deliveries = timed.received.get(job, [])
            if deliveries:
                queued_at, handed = deliveries[0]
                waited = max(0.0, handed - queued_at) * 1000
                queue.append(waited)
                decision.append(whole - waited)
        failures = list(d.pump.failures)
        notifier_failures = len(d.notifier_failures)
        for record in d.notifier_failures[:3]:
            detail = record.get("requestPayload", {}).get("detail", {})
            print("  notifier gave up:", detail.get("eventName"), json.dumps(record.get("responsePayload"))[:400])
        click_429 = d.slack.rate_limited() - setup_429

    print(f"{len(jobs)} jobs, {len(jobs)} concurrent clicks", flush=True)
    print(
        f"set-up      {setup_seconds:6.1f} s (create, Suspended, requests posted; Slack limit "
        f"{opts.setup_slack_limit}, {setup_429} x 429)"
    )
    print(f"ack         {percentiles(ack)}   (callback's HTTP answer)")
    print(f"total       {percentiles(total)}   (click sent → UpdateJobStatus at the emulator)")
    print(f"queue       {percentiles(queue)}   (SentTimestamp → pump hands it to the decider; ms resolution)")
    print(f"decision    {percentiles(decision)}   (total - queue; target p99 <= 100 ms)")
    print(
        f"checks      {len(jobs) - len({p.split(':')[0] for p in problems})}/{len(jobs)} jobs with exactly one "
        f"UpdateJobStatus, Ready · decider failures {len(failures)} · notifier gave up on {notifier_failures} "
        f"events · click phase {click_429} x 429 (Slack limit {opts.click_slack_limit})"
    )
    for problem in problems[:10]:
        print("  problem:", problem)
    for failure in failures[:5]:
        print("  decider failure:", failure)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
