"""Benchmark: how fast the callback acknowledges a signed Approve click.

    make bench        (or: PYTHONPATH=lambdas:. .venv/bin/python bench/callback_ack.py [--warm 500] [--cold 15])

- cold ack: a fresh interpreter imports the callback handler and answers the first signed Approve
  request (secret fetch, signature check, SQS send to moto on loopback); time from launching the
  interpreter to the response, median of --cold runs;
- baseline: `python -c "import boto3; boto3.client('s3control', region_name='us-east-1')"`, timed as
  a command (launch to exit), interleaved with the cold runs. Two stricter comparisons are printed
  too: both commands launch to exit, and launch to client ready (the same command printing the
  moment its client exists) against launch to answer, neither counting the interpreter's exit; for
  these, each cold run is also divided by the baseline run beside it (steadier on a noisy machine);
- warm ack: --warm more requests in one process, handler called as Lambda would (p50, p99).
Targets (issue 3): cold ack <= 1.5 x baseline; warm p99 < 50 ms.

The children get the functions' environment (local endpoints, Powertools settings and
PYDANTIC_DISABLE_PLUGINS as the stack sets it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlencode

sys.path[:0] = ["lambdas", "."]

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from approvals.models.job import JobRef  # noqa: E402
from approvals.models.slack import ButtonValue  # noqa: E402
from infra.constants import PYDANTIC_WITHOUT_PLUGINS  # noqa: E402
from sandbox.aws_local import LocalAws  # noqa: E402
from sandbox.slack import SlackStandIn  # noqa: E402

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
REF = JobRef(account_id="123456789012", region="us-east-1", job_id="bench-job-0001")


def signed_event(user: str = "U0ALICE01") -> dict[str, Any]:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "alice", "name": "alice", "team_id": "T0BENCH"},
        "team": {"id": "T0BENCH"},
        "channel": {"id": "C0APPROVALS"},
        "message": {"ts": "1700000000.000100"},
        "trigger_id": "1.2.3",
        "actions": [
            {
                "action_id": "approve_job",
                "block_id": "decision",
                "value": ButtonValue.from_ref(REF).encode(),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    return {
        "resource": "/slack/interactions",
        "path": "/slack/interactions",
        "httpMethod": "POST",
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "prod",
            "resourcePath": "/slack/interactions",
            "httpMethod": "POST",
            "path": "/prod/slack/interactions",
            "accountId": "123456789012",
            "apiId": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": base64.b64encode(body.encode()).decode(),
        "isBase64Encoded": True,
    }


# The baseline, exactly as given; timed as a command is, from launch to exit.
BASELINE_COMMAND = "import boto3; boto3.client('s3control', region_name='us-east-1')"
# The same work, saying when the client is ready, so it can also be timed without the exit.
BASELINE_READY = (
    "import boto3, json, time; boto3.client('s3control', region_name='us-east-1'); "
    "print(json.dumps({'acked_at': time.time()}))"
)


def run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """The command's wall time in milliseconds (launch to exit) and its standard output."""
    started = time.time()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    wall_ms = (time.time() - started) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{args[-1][:60]} failed:\n{done.stderr[-2000:]}")
    return wall_ms, done.stdout


def timed_run(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Milliseconds from launching the interpreter to the moment the child says it was done (its
    answer, for the callback); the whole command's wall time, exit included, is ``result["wall_ms"]``."""
    started = time.time()
    wall_ms, stdout = run(args, env)
    lines = stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"{args[-1][:60]} printed nothing")
    result = json.loads(lines[-1])
    result["wall_ms"] = wall_ms
    return (result["acked_at"] - started) * 1000, result


def _quartiles(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 4]:.2f}-{ordered[3 * len(ordered) // 4]:.2f}"


def handler_env(local: LocalAws, slack: SlackStandIn) -> dict[str, str]:
    """The callback's settings against the local stand-ins, as the stack sets them (PYDANTIC_DISABLE_PLUGINS
    included); the other benches start their handlers with the same."""
    return {
        **local.env(),
        "SLACK_API_URL": slack.api_url,
        "SLACK_CHANNEL_ID": "C0APPROVALS",
        "APPROVER_USER_IDS": "U0ALICE01",
        "SLACK_TEAM_ID": "T0BENCH",
        "POWERTOOLS_SERVICE_NAME": "s3-batch-approvals",
        "POWERTOOLS_METRICS_NAMESPACE": "S3BatchApprovals",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **PYDANTIC_WITHOUT_PLUGINS,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=500)
    parser.add_argument("--cold", type=int, default=15)
    parser.add_argument(
        "--moto-in-process", action="store_true", help="serve moto from this process (its work then shares the GIL)"
    )
    opts = parser.parse_args()

    # moto in its own process by default: SQS is another service to the callback, not work on its own thread.
    local = LocalAws(separate_process=not opts.moto_in_process).start().provision(TOKEN, SECRET)
    slack = SlackStandIn(TOKEN, channels=[{"id": "C0APPROVALS", "name": "s3-approvals"}]).start()
    env = {**os.environ, **handler_env(local, slack), "PYTHONPATH": "lambdas:."}
    try:
        command, ready, cold, cold_wall, inner = [], [], [], [], []
        for _ in range(opts.cold):  # interleaved, so each sees the same machine noise
            command.append(run([sys.executable, "-c", BASELINE_COMMAND], env)[0])
            ready.append(timed_run([sys.executable, "-c", BASELINE_READY], env)[0])
            env["BENCH_EVENT"] = json.dumps(signed_event())
            ms, result = timed_run([sys.executable, "bench/_cold_ack_child.py"], env)
            cold.append(ms)
            cold_wall.append(result["wall_ms"])
            inner.append(result)

        os.environ.update({k: v for k, v in env.items() if k != "BENCH_EVENT"})
        from approvals.handlers import callback
        from sandbox.apigw import LambdaContext

        context = LambdaContext("callback", timeout_seconds=10)
        callback.handler(signed_event(), context)  # the cold one, not counted
        warm = []
        for _ in range(opts.warm):
            event = signed_event()
            started = time.perf_counter()
            response = callback.handler(event, context)
            warm.append((time.perf_counter() - started) * 1000)
            assert response["statusCode"] == 200, response
    finally:
        slack.stop()
        local.stop()

    warm.sort()
    p50 = statistics.median(warm)
    p99 = warm[min(len(warm) - 1, int(len(warm) * 0.99))]
    median = statistics.median
    base_cmd, base_ready, ack, ack_wall = median(command), median(ready), median(cold), median(cold_wall)
    n = opts.cold
    print(f"python {sys.version.split()[0]} · {os.cpu_count()} cores · medians of {n} interleaved runs")
    print(f'baseline  python -c "{BASELINE_COMMAND}"')
    print(f"          the command, launch to exit          : {base_cmd:7.1f} ms")
    print(f"          launch to client ready (no exit)     : {base_ready:7.1f} ms")
    print("cold ack  fresh interpreter: import the callback, answer the first signed Approve click")
    print(f"          launch to answer                     : {ack:7.1f} ms")
    print(f"          launch to exit                       : {ack_wall:7.1f} ms")
    print(
        f"          of which import {median(i['import_ms'] for i in inner):.1f} ms, first request "
        f"{median(i['first_request_ms'] for i in inner):.1f} ms (in-process)"
    )
    print(f"ratio     cold ack / the baseline command      : {ack / base_cmd:.2f}  (target <= 1.5)")
    print(
        f"          launch to exit, both                 : {ack_wall / base_cmd:.2f}  "
        f"(run by run: median {median(a / b for a, b in zip(cold_wall, command, strict=True)):.2f}, "
        f"quartiles {_quartiles([a / b for a, b in zip(cold_wall, command, strict=True)])})"
    )
    print(
        f"          answer / client ready, neither exit  : {ack / base_ready:.2f}  "
        f"(run by run: median {median(a / b for a, b in zip(cold, ready, strict=True)):.2f}, "
        f"quartiles {_quartiles([a / b for a, b in zip(cold, ready, strict=True)])})"
    )
    print(f"warm ack  p50 {p50:.1f} ms · p99 {p99:.1f} ms over {opts.warm} requests  (target p99 < 50 ms)")


if __name__ == "__main__":
    main()
