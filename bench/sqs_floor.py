"""Benchmark: the floor under the callback's warm ack in the sandbox, one bare SQS SendMessage to moto.

    PYTHONPATH=lambdas:. .venv/bin/python bench/sqs_floor.py [--sends 1000] [--moto-in-process]

The callback's warm ack is its own work (signature check, parse, about 1 ms) plus one SendMessage. This
times a plain boto3 SQS client sending the same size of message to the same moto server as
bench/callback_ack.py uses (in its own process by default), so the two can be compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

sys.path[:0] = ["lambdas", "."]

from sandbox.aws_local import LocalAws  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--moto-in-process", action="store_true")
    opts = parser.parse_args()
    print(f"$ PYTHONPATH=lambdas:. .venv/bin/python bench/sqs_floor.py --sends {opts.sends}")
    local = LocalAws(separate_process=not opts.moto_in_process).start().provision("xoxb-bench", "bench-secret")
    try:
        sqs = local.client("sqs")
        body = "x" * 3000  # about the size of a queued signed Slack request
        times = []
        for _ in range(opts.sends):
            started = time.perf_counter()
            sqs.send_message(QueueUrl=local.queue_url, MessageBody=body)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"SQS SendMessage to moto: p50 {statistics.median(times):.1f} ms · p99 {p99:.1f} ms over {opts.sends}")
    finally:
        local.stop()


if __name__ == "__main__":
    main()
