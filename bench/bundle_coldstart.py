"""Benchmark: cold starts from the Lambda bundle, as Lambda runs it.

    PYTHONPATH=lambdas:. .venv/bin/python bench/bundle_coldstart.py [--python 3.13] [--rounds 15]

Builds the bundle with ``infra.bundling.bundle()`` for this machine's architecture and the runtime's
Python, copies it to a temporary "task root", resets every mtime to 1980-01-01 (as the asset zip leaves
them) and makes it read-only, then runs interleaved rounds, each a fresh interpreter of the runtime's
version with -B (nothing may be written, as in /var/task):

- floor: ``python3.X -B -c "import boto3; boto3.client('s3control', region_name='us-east-1')"`` with
  boto3 compiled in the interpreter's site-packages (a temporary venv with the bundle's pins), launch
  to exit;
- ack: ``python3.X -B -I`` with the bundle first on ``sys.path`` imports the callback and answers one
  signed Approve click (secret fetch, signature check, SQS send to moto on loopback), launch to exit
  and launch to answer (bench/_cold_ack_child.py, as bench/callback_ack.py runs it);
- ack without bytecode: the same bundle built with ``bytecode=None`` (the lever);
- ack, runtime boto3: the bundle without boto3, botocore and their dependencies, which then come from
  the venv's compiled site-packages (a proxy for the Lambda runtime's copy);
- the other handlers' cold import from the bundle (import only).

Prints median, p90, the ratio of medians to the floor and the median of per-round ratios (steadier on
a noisy machine), the bundles' sizes and what each function's imports load from the bundle.
Target: cold ack <= 1.3 x floor.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import shlex
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = ["lambdas", "."]

from bench.callback_ack import BASELINE_COMMAND, SECRET, TOKEN, handler_env, run, signed_event, timed_run  # noqa: E402
from infra.bundling import bundle, bytecode_interpreter, missing_interpreter_warning  # noqa: E402
from infra.policy import DEFAULT_POLICY_FILE, dump_policy, read_policy  # noqa: E402
from sandbox.aws_local import LocalAws  # noqa: E402
from sandbox.slack import SlackStandIn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "bench" / "_bundle_child.py"
ACK_CHILD = ROOT / "bench" / "_cold_ack_child.py"
MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine().lower()]
ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can hold
# What the Lambda Python runtime provides besides the standard library: boto3, botocore and their
# dependencies (top-level names in the bundle, and the distributions they come from).
RUNTIME_SDK = {
    "boto3": "boto3",
    "botocore": "botocore",
    "s3transfer": "s3transfer",
    "jmespath": "jmespath",
    "dateutil": "python_dateutil",
    "six.py": "six",
    "urllib3": "urllib3",
}
OTHER_HANDLERS = ("notifier", "decider", "audit_writer")


def size_of(root: Path) -> tuple[int, int, int]:
    """Files, bytes and zipped bytes (deflate, as the asset zip) of a directory."""
    files = [path for path in root.rglob("*") if path.is_file()]
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "asset.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in files:
                zipped.write(path, path.relative_to(root))
        zipped_bytes = archive.stat().st_size
    return len(files), sum(path.stat().st_size for path in files), zipped_bytes


def as_lambda_task_root(source: Path, target: Path) -> Path:
    """A copy of ``source`` with every mtime at 1980-01-01 and no write permission, like /var/task."""
    shutil.copytree(source, target)
    for path in sorted(target.rglob("*"), reverse=True):
        os.utime(path, (ZIP_EPOCH, ZIP_EPOCH), follow_symlinks=False)
    os.utime(target, (ZIP_EPOCH, ZIP_EPOCH))
    for path in [target, *target.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return target


def writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def without_runtime_sdk(source: Path, target: Path) -> Path:
    """The bundle minus what the runtime provides (RUNTIME_SDK)."""
    shutil.copytree(source, target)
    for top, distribution in RUNTIME_SDK.items():
        path = target / top
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        for info in target.glob(f"{distribution}-*.dist-info"):
            shutil.rmtree(info)
    return target


def installed_pins(bundle_dir: Path) -> list[str]:
    """``name==version`` of the runtime SDK distributions in the bundle, from their .dist-info names."""
    pins = []
    for distribution in RUNTIME_SDK.values():
        [info] = bundle_dir.glob(f"{distribution}-*.dist-info")
        pins.append(f"{distribution}=={info.name.removesuffix('.dist-info').split('-', 1)[1]}")
    return pins


def floor_venv(interpreter: str, where: Path, pins: list[str]) -> str:
    """A venv of ``interpreter`` with boto3 installed (and compiled) in its site-packages, as the runtime has it."""
    subprocess.run([interpreter, "-m", "venv", str(where)], check=True)
    python = str(where / "bin" / "python")
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"could not install {' '.join(pins)} for the floor:\n{done.stdout}{done.stderr}")
    return python


def children_env(local: LocalAws, slack: SlackStandIn) -> dict[str, str]:
    """The functions' settings against the stand-ins (bench/callback_ack.py's), and PATH, nothing else."""
    return {"PATH": os.environ.get("PATH", ""), **handler_env(local, slack)}


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default="3.13", help="the runtime's Python version (default 3.13)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-source", action="store_true", help="skip the bundle without bytecode")
    parser.add_argument("--no-runtime-sdk", action="store_true", help="skip the bundle using the runtime's boto3")
    opts = parser.parse_args()

    print("$ " + shlex.join(["PYTHONPATH=" + os.environ.get("PYTHONPATH", ""), *sys.orig_argv]))
    interpreter = bytecode_interpreter(opts.python)
    if interpreter is None:
        raise SystemExit(missing_interpreter_warning(opts.python))
    policy_json = dump_policy(read_policy(ROOT, DEFAULT_POLICY_FILE))

    scratch = Path(tempfile.mkdtemp(prefix="bundle-coldstart-"))
    task_roots: list[Path] = []
    try:
        builds = {"compiled": bundle(scratch / "compiled", opts.python, MACHINE, policy_json=policy_json)}
        if not opts.no_source:
            builds["no bytecode"] = bundle(
                scratch / "source", opts.python, MACHINE, policy_json=policy_json, bytecode=None
            )
        if not opts.no_runtime_sdk:
            builds["runtime boto3"] = without_runtime_sdk(builds["compiled"], scratch / "runtime-sdk")
        python = floor_venv(interpreter, scratch / "floor-venv", installed_pins(builds["compiled"]))
        version = subprocess.run(
            [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
        ).stdout.strip()
        roots = {
            name: as_lambda_task_root(path, scratch / "task" / name.replace(" ", "-")) for name, path in builds.items()
        }
        task_roots = list(roots.values())

        print(f"python {version} ({python} -B) · {MACHINE} · {os.cpu_count()} cores · {opts.rounds} interleaved rounds")
        print(f"bytecode compiled by {interpreter}; task roots read-only, mtimes 1980-01-01")
        print("bundle sizes          files      bytes     zipped")
        for name, path in builds.items():
            files, size, zipped = size_of(path)
            print(f"  {name:<16} {files:8d} {size / 1e6:8.1f} MB {zipped / 1e6:6.1f} MB")

        local = LocalAws().start().provision(TOKEN, SECRET)
        slack = SlackStandIn(TOKEN, channels=[{"id": "C0APPROVALS", "name": "s3-approvals"}]).start()
        env = children_env(local, slack)
        try:
            usage = {}
            for name in ("callback", *OTHER_HANDLERS):
                what = ["ack", str(ACK_CHILD)] if name == "callback" else [f"approvals.handlers.{name}"]
                env["BENCH_EVENT"] = json.dumps(signed_event())
                _, out = run(
                    [python, "-B", "-I", str(CHILD), str(roots["compiled"]), *what], {**env, "BENCH_USAGE": "1"}
                )
                usage[name] = json.loads(out.strip().splitlines()[-1])

            samples: dict[str, list[float]] = {}
            answer: dict[str, list[float]] = {}

            def record(label: str, measure: Callable[[], tuple[float, float]]) -> None:
                wall, answered = measure()
                samples.setdefault(label, []).append(wall)
                answer.setdefault(label, []).append(answered)

            def ack(root: Path) -> tuple[float, float]:
                env["BENCH_EVENT"] = json.dumps(signed_event())
                answered, result = timed_run([python, "-B", "-I", str(CHILD), str(root), "ack", str(ACK_CHILD)], env)
                return result["wall_ms"], answered

            def cold_import(module: str) -> tuple[float, float]:
                answered, result = timed_run([python, "-B", "-I", str(CHILD), str(roots["compiled"]), module], env)
                return result["wall_ms"], answered

            for _ in range(opts.rounds):
                record("floor", lambda: (run([python, "-B", "-c", BASELINE_COMMAND], env)[0], math.nan))
                for name, root in roots.items():
                    record(f"ack, {name}", functools.partial(ack, root))
                for handler in OTHER_HANDLERS:
                    record(f"import {handler}", functools.partial(cold_import, f"approvals.handlers.{handler}"))
        finally:
            slack.stop()
            local.stop()

        median = statistics.median
        floor = samples["floor"]
        print(f'floor: {python} -B -c "{BASELINE_COMMAND}" (launch to exit)')
        print(f"{'':28}{'median':>9}{'p90':>9}   x floor (medians)   x floor (per-round median)")
        for label, values in samples.items():
            ratios = [value / base for value, base in zip(values, floor, strict=True)]
            print(
                f"  {label + ' (exit)':<26}{median(values):7.1f}ms{p90(values):7.1f}ms"
                f"   {median(values) / median(floor):6.2f}              {median(ratios):6.2f}"
            )
            if label.startswith("ack"):
                answered = answer[label]
                ratios = [value / base for value, base in zip(answered, floor, strict=True)]
                print(
                    f"  {label + ' (answer)':<26}{median(answered):7.1f}ms{p90(answered):7.1f}ms"
                    f"   {median(answered) / median(floor):6.2f}              {median(ratios):6.2f}"
                )
        print("target: cold ack <= 1.3 x floor")
        print("what each function's cold path loads from the bundle (compiled):")
        for name, used in usage.items():
            top_levels = ", ".join(used["top_levels"])
            print(f"  {name:<13} {used['modules']:5d} modules  {used['bytes'] / 1e6:5.1f} MB  {top_levels}")
    finally:
        for root in task_roots:
            writable(root)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
