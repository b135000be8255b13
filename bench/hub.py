"""What the hub does per job, and per reconciliation run, with 1 and with 50 member accounts.

    PYTHONPATH=lambdas:. .venv/bin/python bench/hub.py [--accounts 1 50] [--jobs-per-account 2]

For each N: a hub (HUB_ACCOUNT_ID, AWS_REGION) with N member accounts (MEMBER_ACCOUNTS, one region each), each
with ``--jobs-per-account`` Suspended jobs in the S3 Batch Operations emulator. The real notifier handler then
takes each job's Suspended event as the job events queue hands it over (a new job each time), and one
reconciliation run (the Scheduled Event) finds every job already requested. Every AWS call the notifier makes
is counted (botocore's before-call event, by service and operation), and Slack's (the stand-in's log). STS is
moto's (AssumeRole, which checks no trust policy: the calls are what counts here); DynamoDB and SQS are moto in
its own process; Slack's pace is sped up 100 times (the stand-in's per-channel limit and the posting interval
alike), so the times are mostly the hub's work, not Slack's one-message-a-second pace, which binds first (README:
Many accounts and regions).
Times are on this machine against local stand-ins: the call counts carry over to AWS, the milliseconds do not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

sys.path[:0] = ["lambdas", "."]

HUB, REGION = "123456789012", "us-east-1"
CHANNEL = "C0APPROVALS"
BOT_TOKEN = "xoxb-bench-token"
SLACK_SCALE = 0.01  # one Slack second lasts 10 ms here


def member(index: int) -> str:
    return f"{200000000000 + index:012d}"


def job_event(account: str, job_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS Service Event via CloudTrail",
        "source": "aws.s3",
        "account": account,
        "time": "2026-12-01T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {"accountId": account, "invokedBy": "s3.amazonaws.com"},
            "eventTime": "2026-12-01T00:00:00Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": "JobStatusChanged",
            "awsRegion": REGION,
            "sourceIPAddress": "s3.amazonaws.com",
            "userAgent": "s3.amazonaws.com",
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsServiceEvent",
            "managementEvent": True,
            "recipientAccountId": account,
            "serviceEventDetails": {
                "jobId": job_id,
                "jobArn": f"arn:aws:s3:{REGION}:{account}:job/{job_id}",
                "status": "Suspended",
                "jobEventId": uuid.uuid4().hex,
                "failureCodes": [],
                "statusChangeReason": [],
            },
        },
    }


def queued(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "h",
                "body": json.dumps(event),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{HUB}:job-events",
                "awsRegion": REGION,
            }
        ]
    }


def run(accounts: int, per_account: int) -> dict[str, Any]:
    from sandbox.apigw import LambdaContext
    from sandbox.aws_local import LocalAws
    from sandbox.proxy import LoopbackProxy, s3control_client_env
    from sandbox.s3batch import JobStore, S3ControlEmulator, example_create_job_params
    from sandbox.slack import SlackStandIn

    aws = LocalAws(separate_process=True).start().provision(BOT_TOKEN, "bench-signing-secret", 60)
    jobs = JobStore(region=REGION)
    emulator = S3ControlEmulator(jobs).start()
    proxy = LoopbackProxy(emulator.url).start()
    # Slack's pace, sped up 100 times for the stand-in's per-channel limit and the product's posting interval alike.
    slack = SlackStandIn(BOT_TOKEN, channels=[{"id": CHANNEL, "name": "s3-approvals"}], time_scale=SLACK_SCALE).start()
    members = [member(i) for i in range(accounts)]
    env = {
        **aws.env(),
        **s3control_client_env(proxy.url),
        "AWS_ENDPOINT_URL_STS": aws.url,
        "SLACK_API_URL": slack.api_url,
        "SLACK_CHANNEL_ID": CHANNEL,
        "HUB_ACCOUNT_ID": HUB,
        "MEMBER_ACCOUNTS": json.dumps([{"id": m, "name": f"member-{i}"} for i, m in enumerate(members)]),
        "SLACK_POST_INTERVAL_SECONDS": str(SLACK_SCALE),
        "REQUESTER_LOOKUP": "off",
        "POWERTOOLS_SERVICE_NAME": "s3-batch-approvals",
        "POWERTOOLS_METRICS_NAMESPACE": "S3BatchApprovals",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "CRITICAL"),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    os.environ.update(env)
    from approvals import wiring
    from approvals.adapters import aws as aws_adapter
    from approvals.handlers import notifier

    wiring.reset_cold_start()
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}:{model.name}"] += 1

    aws_adapter.session().events.register("before-call.*.*", count)
    context = LambdaContext("notifier", timeout_seconds=60)
    try:
        created = []
        for account in members:
            for _ in range(per_account):
                job_id = jobs.create_job(account, example_create_job_params(), region=REGION, object_count=100)
                jobs.advance_until(job_id, "Suspended")
                created.append((account, job_id))
        notifier.handler(queued(job_event(created[0][0], created[0][1])), context)  # the cold start: not timed
        calls.clear()
        slack_before = len(slack.calls)
        times = []
        for account, job_id in created[1:]:
            started = time.perf_counter()
            answer = notifier.handler(queued(job_event(account, job_id)), context)
            times.append((time.perf_counter() - started) * 1000)
            assert answer == {"batchItemFailures": []}, answer
        handled = len(created) - 1
        per_job = {name: count / handled for name, count in sorted(calls.items())}
        slack_calls = Counter(call.method for call in slack.calls[slack_before:])
        per_job_slack = {method: count / handled for method, count in sorted(slack_calls.items())}

        calls.clear()
        started = time.perf_counter()
        reconciled = notifier.handler(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": HUB,
                "region": REGION,
                "resources": [],
                "detail": {},
            },
            context,
        )
        reconcile_ms = (time.perf_counter() - started) * 1000
        return {
            "accounts": accounts,
            "jobs": len(created),
            "per_job_calls": per_job,
            "per_job_slack_calls": per_job_slack,
            "per_job_ms_median": statistics.median(times),
            "per_job_ms_p90": statistics.quantiles(times, n=10)[-1] if len(times) >= 10 else max(times),
            "reconcile": reconciled,
            "reconcile_calls": dict(sorted(calls.items())),
            "reconcile_ms": reconcile_ms,
        }
    finally:
        aws_adapter.session().events.unregister("before-call.*.*", count)
        wiring.reset_cold_start()
        slack.stop()
        proxy.stop()
        emulator.stop()
        jobs.close()
        aws.stop()
        for key in env:
            os.environ.pop(key, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--jobs-per-account", type=int, default=2)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child: one N, in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run(args.accounts[0], args.jobs_per_account), indent=2))
        return
    for accounts in args.accounts:  # each N in a process of its own: a fresh interpreter, as a fresh hub
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                "--accounts",
                str(accounts),
                "--jobs-per-account",
                str(args.jobs_per_account),
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
