"""Benchmark: a burst of jobs suspended at once, posted at Slack's pace, none lost.

    PYTHONPATH=lambdas:. .venv/bin/python bench/burst.py [--jobs 200] [--scale 1]

Through the whole sandbox (``LocalDeployment``): --jobs jobs needing confirmation are created (boto3
CreateJob to the S3 Batch Operations emulator) and then all moved to Suspended within a moment. Their
events go, as in the stack, through the job events queue to at most 5 notifiers at once, each post
taking the channel's turn (approvals/adapters/pacing.py). The Slack stand-in enforces chat.postMessage's
per-channel limit (1 a second, a short burst, HTTP 429 with Retry-After beyond) on a time scale: the
default, --scale 1, is Slack's own pace (200 jobs take over 3 minutes); with --scale 0.1 one Slack second
lasts 0.1 s, for the stand-in's limit and the product's posting interval alike. At small scales the
sandbox itself (every stand-in and handler in one process, moto's DynamoDB serialised) bounds the drain,
not Slack's pace.

Reports the drain time (the last job suspended to the last request posted), in real and in Slack seconds,
against what Slack's limit allows for one channel (one message per Slack second), the 429s met, and
where every job's event ended: posted once, or in a dead-letter queue. Target: drain <= 1.2x what the
limit allows, every job posted exactly once, nothing dead-lettered, no 429.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import time

sys.path[:0] = ["lambdas", "."]

from sandbox.demo import quiet_terminal  # noqa: E402
from sandbox.local import CHANNEL, LocalDeployment, requests_posted  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--scale", type=float, default=1.0, help="real seconds per Slack second")
    parser.add_argument("--timeout", type=float, default=0, help="give up after this many seconds (0: 3x the ideal)")
    args = parser.parse_args()
    print(f"$ PYTHONPATH=lambdas:. .venv/bin/python bench/burst.py --jobs {args.jobs} --scale {args.scale}")

    quiet_terminal()
    with LocalDeployment(slack_time_scale=args.scale) as d:
        job_ids = [d.create_job(description=f"burst job {n}") for n in range(args.jobs)]
        d.settle(timeout=120)  # the CreateJob calls' events (who created each job), before the burst
        created_posts = len(d.slack.calls_to("chat.postMessage"))

        started = time.perf_counter()
        for job_id in job_ids:
            d.jobs.advance_until(job_id, "Suspended")
        suspended = time.perf_counter()

        ideal = args.jobs * args.scale
        deadline = suspended + (args.timeout or max(60.0, 3 * ideal))
        while time.perf_counter() < deadline:
            if len(requests_posted(d.slack)) >= args.jobs:
                break
            time.sleep(0.05)
        drained = time.perf_counter()
        d.settle(timeout=60)

        posted = requests_posted(d.slack)
        rate_limited = d.slack.rate_limited(CHANNEL)
        dead = d.notifier_failures
        undelivered = list(d.event_dlq)
        times = d.slack.post_times(CHANNEL)
        waited = d.slack.calls_to("chat.postMessage")[created_posts:]

    drain = drained - suspended
    print(f"jobs suspended: {args.jobs} in {suspended - started:.2f} s")
    twice = sum(1 for n in posted.values() if n > 1)
    print(f"requests posted: {len(posted)} of {args.jobs}; posted more than once: {twice}")
    print(
        f"drain: {drain:.2f} s = {drain / args.scale:.1f} Slack s; the limit allows {args.jobs} in about "
        f"{args.jobs} Slack s ({ideal:.2f} s): ratio {drain / ideal:.2f} (target <= 1.2)"
    )
    if len(times) > 1:
        gaps = [b - a for a, b in itertools.pairwise(times)]
        print(
            f"posts let through: {len(times)}; gap between posts min {min(gaps) / args.scale:.2f} / "
            f"median {sorted(gaps)[len(gaps) // 2] / args.scale:.2f} Slack s"
        )
    print(f"HTTP 429 met: {rate_limited} (chat.postMessage calls during the burst: {len(waited)})")
    print(f"dead-lettered: {len(dead)} in the job events DLQ, {len(undelivered)} undelivered by the rules")
    print(f"max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    ok = len(posted) == args.jobs and all(n == 1 for n in posted.values()) and not dead and not undelivered
    print("ok" if ok else "NOT OK")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
