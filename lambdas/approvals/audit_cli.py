"""Who approved job X, and why? The full history of a job from the durable audit records.

    make audit JOB=<job id>                      a deployed stack, with your AWS credentials
    make audit JOB=<job id> SANDBOX=1            the local sandbox started by `make sandbox`
    PYTHONPATH=lambdas python -m approvals.audit_cli JOB [--account ID] [--region R]
                                                 [--table NAME | --stack NAME] [--sandbox] [--json]

For a deployed stack the audit table comes from --table, or from the stack's AuditTableName output
(--stack, default S3BatchApprovals); the account from --account or STS; the region from --region
or your AWS configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from approvals import __version__
from approvals.adapters.store import AuditReader
from approvals.models.job import JobRef
from approvals.models.records import AuditRecord

SANDBOX_STATE = Path(".sandbox/state.json")
SANDBOX_ACCOUNT, SANDBOX_REGION = "123456789012", "us-east-1"
MOTO_CREDENTIALS = dict.fromkeys(("aws_access_key_id", "aws_secret_access_key"), "testing")  # moto accepts any


def _table_from_stack(session: boto3.session.Session, stack: str) -> str:
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    for output in described.get("Outputs", []):
        if output["OutputKey"] == "AuditTableName":
            return str(output["OutputValue"])
    raise SystemExit(f"stack {stack} has no AuditTableName output; pass --table")


def format_record(record: AuditRecord) -> str:
    who = f"{record.actor_name} ({record.actor_id})" if record.actor_id else "-"
    change = f"{record.status_before or '-'} -> {record.status_after or '-'}"
    line = f"{record.time:%Y-%m-%d %H:%M:%S}Z  {record.event_type.value:<19} {who:<28} {change:<24}"
    if record.action:
        line += f" action={record.action}"
    if record.reason:
        line += f" reason={record.reason!r}"
    if record.status_update_reason:
        line += f"\n{'':>22}StatusUpdateReason: {record.status_update_reason}"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m approvals.audit_cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"s3-batch-approvals {__version__}")
    parser.add_argument("job_id")
    parser.add_argument("--account")
    parser.add_argument("--region")
    parser.add_argument("--table")
    parser.add_argument("--stack", default="S3BatchApprovals")
    parser.add_argument("--sandbox", action="store_true", help="read the running local sandbox")
    parser.add_argument("--json", action="store_true", help="one JSON record per line")
    args = parser.parse_args(argv)

    client_kwargs: dict[str, Any] = {}
    if args.sandbox:
        if not SANDBOX_STATE.exists():
            raise SystemExit("no sandbox is running: start one with `make sandbox`")
        state = json.loads(SANDBOX_STATE.read_text())
        session = boto3.session.Session(region_name=SANDBOX_REGION, **MOTO_CREDENTIALS)
        client_kwargs["endpoint_url"] = state["moto"]
        table, account, region = state["audit_table"], SANDBOX_ACCOUNT, SANDBOX_REGION
    else:
        session = boto3.session.Session(region_name=args.region or os.environ.get("AWS_REGION"))
        region = session.region_name
        if not region:
            raise SystemExit("no region: pass --region (make audit REGION=…) or set AWS_REGION")
    try:
        if not args.sandbox:
            table = args.table or _table_from_stack(session, args.stack)
            account = args.account or session.client("sts").get_caller_identity()["Account"]
        ref = JobRef(account_id=account, region=region, job_id=args.job_id)
        records = AuditReader(session.client("dynamodb", **client_kwargs), table).history(ref)
    except ValidationError as exc:
        raise SystemExit(f"invalid job reference: {exc.errors()[0]['msg']}") from None
    except (BotoCoreError, ClientError) as exc:
        raise SystemExit(f"could not read the audit records: {exc}") from None
    if not records:
        print(f"no audit records for job {ref.job_id} in account {account}, region {region}", file=sys.stderr)
        return 1
    for record in records:
        print(json.dumps(record.to_log()) if args.json else format_record(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
