"""Benchmark: the cost of one policy evaluation (``approvals.domain.policy.evaluate``) per decision.

    PYTHONPATH=lambdas:. .venv/bin/python bench/policy_eval.py [--policy FILE] [--jobs 5000] [--rounds 5]

Builds --jobs job facts from the DescribeJob samples under tests/events/ (varying account, region, object
count, tags and requester, so every rule of the example policy is met by some), then times evaluate() on
each, --rounds times. Prints the median and 90th percentile, and how often each rule applied.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from approvals.domain.policy import JobFacts, evaluate
from approvals.models.job import Job, JobRef
from approvals.models.policy import EXAMPLE_POLICY_FILE, load_policy_file

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"
ACCOUNTS = ("111122223333", "444455556666", "123456789012")
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")
REQUESTERS = (
    None,
    "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com",
    "arn:aws:iam::111122223333:user/ci-pipeline",
)


def sample_facts(count: int, seed: int = 7) -> list[JobFacts]:
    rng = random.Random(seed)
    bases = []
    for path in sorted(EVENTS.glob("describe_job_*.json")):
        job = Job.model_validate(json.loads(path.read_text())["Job"])
        ref = JobRef(account_id="111122223333", region="eu-west-1", job_id=job.job_id)
        bases.append(JobFacts.of(job, ref))
    facts = []
    for _ in range(count):
        base = rng.choice(bases)
        facts.append(
            replace(
                base,
                account=rng.choice(ACCOUNTS),
                region=rng.choice(REGIONS),
                object_count=rng.choice((None, 10, 50_000, 2_500_000)),
                tags={"environment": rng.choice(("prod", "dev"))} if rng.random() < 0.5 else {},
                requester=rng.choice(REQUESTERS),
            )
        )
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=str(ROOT / EXAMPLE_POLICY_FILE))
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    policy = load_policy_file(args.policy)
    facts = sample_facts(args.jobs)
    samples = []
    rules: Counter[str] = Counter()
    clock = time.perf_counter_ns
    for _ in range(args.rounds):
        for item in facts:
            start = clock()
            result = evaluate(policy, item)
            samples.append((clock() - start) / 1000)
            rules[result.rule.name] += 1
    samples.sort()
    p90 = samples[int(len(samples) * 0.9)]
    print(f"policy {Path(args.policy).name}: {len(policy.rules)} rules; {args.jobs} jobs x {args.rounds} rounds")
    print(f"evaluate(): median {statistics.median(samples):.1f} µs, p90 {p90:.1f} µs per job")
    print("rules applied: " + ", ".join(f"{name} {n * 100 / len(samples):.0f}%" for name, n in rules.most_common()))


if __name__ == "__main__":
    main()
