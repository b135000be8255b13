"""Check a policy file, and explain which rule a job meets and why: for people and for CI.

    make policy-check [POLICY=file]
    make policy-explain JOB=<DescribeJob JSON> [REQUESTER=<principal ARN>] [TAGS=k=v,...] [POLICY=file]

    PYTHONPATH=lambdas python -m approvals.policy check [FILE]
    PYTHONPATH=lambdas python -m approvals.policy explain [--policy FILE] JOB_JSON [--requester ARN]
        [--account ID --region R] [--tags k=v,...] [--expect RULE]
    PYTHONPATH=lambdas python -m approvals.policy schema > policy.schema.json

JOB_JSON is a DescribeJob response (``{"Job": {...}}``) or the Job itself. The account and region come
from the job's ARN unless given. ``--expect`` makes the exit status 1 when another rule applies, so a
pipeline can pin the rule a sample job must meet.

Exit status: 0 valid (or the expected rule applies); 1 another rule applies than --expect; 2 the policy,
the job or the arguments are invalid (the problems go to stderr, one per line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from approvals import __version__
from approvals.domain.identity import IdentityResolver, sso_email
from approvals.domain.policy import JobFacts, PolicyMatch, evaluate
from approvals.models.events import CreateJobCall
from approvals.models.job import Job, JobRef
from approvals.models.policy import (
    EXAMPLE_POLICY_FILE,
    Policy,
    PolicyError,
    Rule,
    identity_label,
    load_policy_file,
    policy_json_schema,
)
from approvals.models.records import PrincipalType

INVALID = 2
OTHER_RULE = 1


class CliError(Exception):
    """Bad input: each line of the message is printed to stderr, and the exit status is 2."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            print(check(args.file))
            return 0
        if args.command == "schema":
            print(json.dumps(policy_json_schema(), indent=2))
            return 0
        policy = _policy(args.policy)
        facts = _facts(args)
        result = evaluate(policy, facts)
        print(explain(result, policy))
        if args.requester:
            print(requester_line(policy, args.requester))
        if args.expect is not None and args.expect != result.rule.name:
            print(f"expected rule {args.expect!r}, but {result.label} applies", file=sys.stderr)
            return OTHER_RULE
        return 0
    except CliError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return INVALID


def check(file: str) -> str:
    """One line about a valid policy; raises CliError with the problems otherwise."""
    policy = _policy(file)
    counts = {action: sum(rule.action == action for rule in policy.rules) for action in ("deny", "approve")}
    extras = "".join(f", {n} {action}" for action, n in counts.items() if n)
    mapped = len(policy.identities.map)
    return (
        f"{file}: valid, {len(policy.rules)} rule{'s' if len(policy.rules) != 1 else ''}{extras}; "
        f"default {policy.default.name!r}: {_requires_in_short(policy.default)}; "
        f"identities: {mapped} mapping{'s' if mapped != 1 else ''}, "
        f"email lookup {'on' if policy.identities.email_lookup else 'off'}"
    )


def requester_line(policy: Policy, principal_arn: str) -> str:
    """Who the requester is in Slack, as the policy's identities say (the email lookup is not made here)."""
    issuer = None
    parts = principal_arn.split(":", 5)
    kind: PrincipalType = "Unknown"
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/") and parts[5].count("/") >= 2:
        kind = "AssumedRole"
        # The session ARN drops the role's path: a mapping of a role with a path needs a glob (role/*name).
        issuer = f"arn:{parts[1]}:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    call = CreateJobCall(
        job_id="explain",
        account_id="000000000000",
        region="us-east-1",
        event_time=datetime.now(UTC),
        principal_arn=principal_arn,
        principal_type=kind,
        session_issuer_arn=issuer,
    )
    entry = IdentityResolver(policy.identities, lambda _email: None).mapping_for(call)
    if entry is not None:
        index = policy.identities.map.index(entry)
        return f"Requester: {principal_arn} is Slack user {entry.slack_user} ({identity_label(index)})"
    email = sso_email(principal_arn) if policy.identities.email_lookup else None
    if email is not None:
        return f"Requester: {principal_arn} is the Slack user with email {email} (looked up when deployed)"
    return f"Requester: {principal_arn} maps to no Slack user (shown by ARN; nobody counts as the requester)"


def explain(result: PolicyMatch, policy: Policy) -> str:
    """Which rule applies and why, what it requires, and why each earlier rule did not apply."""
    rule = result.rule
    lines = [f"Rule: {result.label} of {len(policy.rules)}" + ("  (default)" if rule is policy.default else "")]
    lines.append("Why:")
    lines += [f"  - {why}" for why in result.why]
    lines.append("Requires:")
    lines += [f"  {label}: {value}" for label, value in requirements(rule)]
    if result.skipped:
        lines.append("Skipped:")
        numbers = {r.name: number for number, r in enumerate(policy.rules, start=1)}
        lines += [f"  #{numbers[name]} {name!r}: {reason}" for name, reason in result.skipped]
    return "\n".join(lines)


def requirements(rule: Rule) -> list[tuple[str, str]]:
    """What a rule requires, in words."""
    out: list[tuple[str, str]] = [("action", rule.action)]
    if rule.reason:
        out.append(("reason", rule.reason))
    if rule.action != "require_approval":
        return out
    if rule.approvers is None:
        approvers = "the deployment's approvers (approverUserIds, approverGroupIds)"
    else:
        parts = []
        if rule.approvers.users:
            parts.append("users " + ", ".join(rule.approvers.users))
        if rule.approvers.groups:
            parts.append("members of " + ", ".join(rule.approvers.groups))
        approvers = "; ".join(parts)
    wait = rule.requester_wait
    out += [
        ("approvers", approvers),
        ("quorum", f"{rule.quorum} distinct approver{'s' if rule.quorum != 1 else ''}"),
        ("self-approval", "allowed" if rule.allow_self_approval else "not allowed (the requester may only cancel)"),
        ("channel", rule.channel or "the deployment's channel (slackChannelId)"),
        (
            "requester unknown",
            f"hold approval up to {wait.timeout_minutes} minutes, then "
            + ("allow it (warned and audited)" if wait.then == "allow" else "keep holding"),
        ),
    ]
    return out


def _requires_in_short(rule: Rule) -> str:
    if rule.action == "deny":
        return "deny"
    if rule.action == "approve":
        return "approve by policy"
    return f"{rule.quorum} approval{'s' if rule.quorum != 1 else ''}" + (
        ", self-approval allowed" if rule.allow_self_approval else ""
    )


# -- input ---------------------------------------------------------------------------------------


def _policy(file: str) -> Policy:
    try:
        return load_policy_file(file)
    except OSError as exc:
        raise CliError(f"{file}: cannot read the policy: {exc.strerror or exc}") from None
    except PolicyError as exc:
        raise CliError("\n".join(f"{file}: {problem}" for problem in exc.problems)) from None


def _facts(args: argparse.Namespace) -> JobFacts:
    try:
        data: Any = json.loads(Path(args.job).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{args.job}: cannot read the job: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{args.job}: not JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("Job"), dict):
        data = data["Job"]
    try:
        job = Job.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'Job'}: {e['msg']}" for e in exc.errors()]
        raise CliError("\n".join(f"{args.job}: not a DescribeJob response: {p}" for p in problems)) from None
    account, region = _account_region(job, args.account, args.region)
    try:
        ref = JobRef(account_id=account, region=region, job_id=job.job_id)
    except ValidationError as exc:
        raise CliError("\n".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    return JobFacts.of(job, ref, tags=_tags(args.tags), requester=args.requester)


def _account_region(job: Job, account: str | None, region: str | None) -> tuple[str, str]:
    """From --account/--region, else from the JobArn (arn:aws:s3:REGION:ACCOUNT:job/ID)."""
    parts = (job.job_arn or "").split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "s3":
        region = region or parts[3]
        account = account or parts[4]
    if not account or not region:
        raise CliError("the job has no JobArn to read its account and region from: pass --account and --region")
    return account, region


def _tags(text: str | None) -> dict[str, str]:
    tags = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--tags: {item!r} is not key=value")
        tags[key.strip()] = value.strip()
    return tags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m approvals.policy", description="Check an approval policy, or explain it for a job."
    )
    parser.add_argument("--version", action="version", version=f"s3-batch-approvals {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="validate a policy file")
    check_cmd.add_argument("file", nargs="?", default=EXAMPLE_POLICY_FILE, help=f"default {EXAMPLE_POLICY_FILE}")
    explain_cmd = commands.add_parser("explain", help="which rule a job meets, and why")
    explain_cmd.add_argument("--policy", default=EXAMPLE_POLICY_FILE, help=f"default {EXAMPLE_POLICY_FILE}")
    explain_cmd.add_argument("job", help='a DescribeJob response file ({"Job": {...}}) or the Job itself')
    explain_cmd.add_argument("--requester", help="the ARN of the principal that created the job")
    explain_cmd.add_argument("--account", help="the job's account (default: from its JobArn)")
    explain_cmd.add_argument("--region", help="the job's region (default: from its JobArn)")
    explain_cmd.add_argument("--tags", help="the job's tags, as key=value,key=value")
    explain_cmd.add_argument("--expect", metavar="RULE", help="exit 1 unless this rule applies")
    commands.add_parser("schema", help="print the policy file's JSON Schema")
    return parser


if __name__ == "__main__":
    sys.exit(main())
