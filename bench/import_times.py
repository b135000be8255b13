"""Benchmark: cold-start import time of each Lambda handler module, in fresh interpreters.

    make bench   (or: PYTHONPATH=lambdas:. .venv/bin/python bench/import_times.py [--runs 5])

Each run starts a new interpreter that times `import approvals.handlers.<name>`; the median of
--runs is printed beside the same measure for `import boto3` plus one s3control client.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

MODULES = ("notifier", "callback", "decider", "audit_writer")
TIMER = "import time; t = time.perf_counter(); {stmt}; print((time.perf_counter() - t) * 1000)"


def median_ms(stmt: str, runs: int) -> float:
    env = {**os.environ, "PYTHONPATH": "lambdas"}
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", TIMER.format(stmt=stmt)], env=env, capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    baseline = median_ms("import boto3; boto3.client('s3control', region_name='us-east-1')", runs)
    print(f"python {sys.version.split()[0]} · median of {runs} fresh interpreters")
    print(f"  {'boto3 + s3control client (baseline)':<40} {baseline:7.1f} ms")
    for name in MODULES:
        ms = median_ms(f"import approvals.handlers.{name}", runs)
        print(f"  {'import approvals.handlers.' + name:<40} {ms:7.1f} ms  ({ms / baseline:.2f} x baseline)")


if __name__ == "__main__":
    main()
