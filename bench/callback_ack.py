"""Benchmark: how fast the callback acknowledges a signed Approve click.

    make bench        (or: PYTHONPATH=lambdas:. .venv/bin/python bench/callback_ack.py [--warm 500] [--cold 5])

- cold ack: a fresh interpreter imports the callback handler and answers the first signed Approve
  request (secret fetch, signature check, SQS send to moto on loopback); time from launching the
  interpreter to the response, median of --cold runs;
- baseline: `python -c "import boto3; boto3.client('s3control', region_name='us-east-1')"`, measured
  the same way (launch to client created), interleaved with the cold runs;
- warm ack: --warm more requests in one process, handler called as Lambda would (p50, p99).
Targets (issue 3): cold ack <= 1.5 x baseline; warm p99 < 50 ms.
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


BASELINE = (
    "import boto3, json, time; boto3.client('s3control', region_name='us-east-1'); "
    "print(json.dumps({'acked_at': time.time()}))"
)


def timed_run(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Milliseconds from launching the interpreter to the moment the child says it was done.

    The child's own exit (interpreter teardown) is not part of an ack, so it is not counted; the
    whole command's wall time, teardown included, is returned as ``result["wall_ms"]``.
    """
    started = time.time()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    wall_ms = (time.time() - started) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{args[-1]} failed:\n{done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"{args[-1][:60]} printed nothing; stderr:\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["wall_ms"] = wall_ms
    return (result["acked_at"] - started) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=500)
    parser.add_argument("--cold", type=int, default=5)
    opts = parser.parse_args()

    local = LocalAws().start().provision(TOKEN, SECRET)
    slack = SlackStandIn(TOKEN, channels=[{"id": "C0APPROVALS", "name": "s3-approvals"}]).start()
    env = {
        **os.environ,
        **local.env(),
        "SLACK_API_URL": slack.api_url,
        "SLACK_CHANNEL_ID": "C0APPROVALS",
        "APPROVER_USER_IDS": "U0ALICE01",
        "POWERTOOLS_SERVICE_NAME": "s3-batch-approvals",
        "POWERTOOLS_METRICS_NAMESPACE": "S3BatchApprovals",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "PYTHONPATH": "lambdas:.",
    }
    try:
        baseline, baseline_wall, cold, inner = [], [], [], []
        for _ in range(opts.cold):  # interleaved, so both see the same machine noise
            ms, result = timed_run([sys.executable, "-c", BASELINE], env)
            baseline.append(ms)
            baseline_wall.append(result["wall_ms"])
            env["BENCH_EVENT"] = json.dumps(signed_event())
            ms, result = timed_run([sys.executable, "bench/_cold_ack_child.py"], env)
            cold.append(ms)
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
    base, cold_ack = statistics.median(baseline), statistics.median(cold)
    print(f"python {sys.version.split()[0]} · {os.cpu_count()} cores")
    print(f"baseline  import boto3 + s3control client : {base:7.1f} ms (median of {opts.cold}, launch to done)")
    print(
        f"cold ack  import + first Approve request  : {cold_ack:7.1f} ms (median of {opts.cold}, launch to done)"
        f"  ratio {cold_ack / base:.2f}  (target <= 1.5)"
    )
    wall = statistics.median(baseline_wall)
    print(
        f"          against the baseline command's whole wall time ({wall:.1f} ms, teardown included): "
        f"ratio {cold_ack / wall:.2f}"
    )
    print(
        f"          of which import {statistics.median(i['import_ms'] for i in inner):.1f} ms, first request "
        f"{statistics.median(i['first_request_ms'] for i in inner):.1f} ms (in-process)"
    )
    print(f"warm ack  p50 {p50:.1f} ms · p99 {p99:.1f} ms over {opts.warm} requests  (target p99 < 50 ms)")


if __name__ == "__main__":
    main()
