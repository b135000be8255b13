"""Benchmark: what the approval policy (four eyes, quorum, requester lookup) adds to each function's cold start.

    git worktree add /tmp/before <commit before the policy>      # once
    PYTHONPATH=lambdas:. .venv/bin/python bench/policy_coldstart.py --before /tmp/before [--runs 15]

For each handler, fresh interpreters alternate between this tree and ``--before``: each times
``import approvals.handlers.<name>`` from launch of the import to its end (median of --runs). Then, in
this tree, the first use of the bundled policy: ``load_policy`` of the example policy as the synth bundles
it (JSON), after the handler's imports, as the notifier and the callback pay it on their first event.
Both trees run with this interpreter and this .venv, so only the code differs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODULES = ("notifier", "callback", "decider", "audit_writer")
TIMER = "import time; t = time.perf_counter(); {stmt}; print((time.perf_counter() - t) * 1000)"
LOAD = (
    "import approvals.handlers.{name}, pathlib, time\n"
    "from approvals.models.policy import load_policy\n"
    "text = pathlib.Path({json!r}).read_text()\n"
    "t = time.perf_counter(); load_policy(text); print((time.perf_counter() - t) * 1000)"
)


def _ms(tree: Path, code: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree / "lambdas"), "PYDANTIC_DISABLE_PLUGINS": "__all__"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=tree)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code before the policy")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(here / "lambdas"))
    from approvals.models.policy import dump_policy, load_policy_file

    bundled = Path(tempfile.mkdtemp()) / "policy.json"
    bundled.write_text(dump_policy(load_policy_file(here / "policy.example.yaml")))
    print(f"python {sys.version.split()[0]} · median of {args.runs} fresh interpreters each, alternating trees")
    print(f"  {'handler':<14} {'before':>9} {'now':>9} {'added':>9}   first policy load (JSON)")
    for name in MODULES:
        stmt = TIMER.format(stmt=f"import approvals.handlers.{name}")
        before: list[float] = []
        now: list[float] = []
        for _ in range(args.runs):
            before.append(_ms(args.before, stmt))
            now.append(_ms(here, stmt))
        load = statistics.median(_ms(here, LOAD.format(name=name, json=str(bundled))) for _ in range(args.runs))
        b, n = statistics.median(before), statistics.median(now)
        print(f"  {name:<14} {b:7.1f} ms {n:7.1f} ms {n - b:+7.1f} ms   {load:6.2f} ms")


if __name__ == "__main__":
    main()
