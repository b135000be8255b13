"""Deployment settings: read from CDK context (cdk.json or ``-c key=value``) and validated once.

A missing or malformed setting raises ``InfraSettingsError`` whose message names the context key and
says how to set it, so ``cdk synth`` stops before building anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from infra.constants import (
    DECIDER_TIMEOUT_SECONDS,
    DECISIONS_QUEUE_VISIBILITY_SECONDS,
    DEFAULT_DECISION_LEASE_SECONDS,
    DEFAULT_SLASH_COMMAND,
    REQUESTER_LOOKUP_CLOUDTRAIL,
    REQUESTER_LOOKUP_OFF,
    SLASH_COMMAND_PATTERN,
    check_decision_timing,
)
from infra.policy import DEFAULT_POLICY_FILE, Policy, PolicyFileError, dump_policy, read_policy

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = ROOT / "cdk.json"

SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
SLACK_TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,}$")  # a workspace (T…) or an Enterprise Grid org (E…)
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
SLACK_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
# key=value; AWS tag characters, except that the key may not contain "=" here.
TAG_CONDITION = re.compile(r"^[\w.:/+\-@ ]{1,128}=[\w.:/=+\-@ ]{0,256}$")
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SLASH_COMMAND = re.compile(SLASH_COMMAND_PATTERN)

# CloudWatch Logs accepts only these retention periods (days).
RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

# The newest Lambda Python runtime this aws-cdk-lib offers ("3.14" with 2.275).
LATEST_PYTHON_RUNTIME = max(
    (name.removeprefix("PYTHON_").replace("_", ".") for name in dir(lambda_.Runtime) if name.startswith("PYTHON_3_")),
    key=lambda version: tuple(int(part) for part in version.split(".")),
)

DEFAULT_PYTHON_RUNTIME = "3.13"
# The functions, by the names the snapStart setting takes.
SNAPSTART_FUNCTIONS = ("notifier", "callback", "decider", "auditWriter")


def _snap_start_names(value: object) -> object:
    """``all`` means every function; otherwise a comma-separated (or JSON) list of function names."""
    value = _split_ids(value)
    if isinstance(value, tuple) and value == ("all",):
        return SNAPSTART_FUNCTIONS
    if isinstance(value, tuple) and value in (("none",), ("off",)):
        return ()
    return value


# Context key -> an example value, used in error messages.
EXAMPLES: dict[str, str] = {
    "slackChannelId": "C0123456789",
    "slackTeamId": "T0123456789",
    "slackSecretName": "s3-batch-approvals/slack",
    "logRetentionDays": "30",
    "auditLogRetentionDays": "400",
    "auditLogKmsEncryption": "true",
    "lambdaArchitecture": "arm64",
    "pythonRuntime": "3.13",
    "snapStart": "callback,decider",
    "approverUserIds": "U0123ABCD,U0456EFGH",
    "approverGroupIds": "S0123ABCD",
    "largeJobThreshold": "1000000",
    "apiThrottleRateLimit": "10",
    "apiThrottleBurstLimit": "20",
    "jobTagCondition": "approval-team=storage",
    "alarmEmail": "oncall@example.com",
    "stackName": "S3BatchApprovals",
    "decisionLeaseSeconds": str(DEFAULT_DECISION_LEASE_SECONDS),
    "policyFile": "policy.yaml",
    "requesterLookup": "true",
    "createTrail": "false",
    "slashCommand": DEFAULT_SLASH_COMMAND,
    "apiGatewayCloudWatchRole": "false",
    "apiAccessLogs": "false",
}


# What cdk.json ships for the two Slack IDs a deployment must set (InfraSettings.placeholders).
PLACEHOLDER_CHANNEL_ID = "C0000000000"
PLACEHOLDER_TEAM_ID = "T0000000000"


def context_overrides(argv: list[str]) -> dict[str, Any]:
    """``-c key=value`` / ``--context key=value`` pairs from a command line, as the CDK CLI takes them.

    Values are strings, except JSON lists such as ``-c aws:cdk:bundling-stacks=[]`` (skip bundling). Raises
    SystemExit for anything else.
    """
    values: dict[str, Any] = {}
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--context"):
            key, sep, value = next(args, "").partition("=")
            if not sep or not key:
                raise SystemExit(f"error: {arg} expects key=value")
            values[key] = json.loads(value) if value.startswith("[") else value
        else:
            raise SystemExit(f"error: unexpected argument {arg!r} (usage: [-c key=value]...)")
    return values


class InfraSettingsError(ValueError):
    """A context setting is missing or malformed; the message names the context key."""


def _split_ids(value: object) -> object:
    """Accept "A,B" (what ``-c`` gives), a JSON list (what cdk.json may hold) or nothing."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


IdList = Annotated[tuple[str, ...], BeforeValidator(_split_ids)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]
SnapStartList = Annotated[tuple[str, ...], BeforeValidator(lambda value: _snap_start_names(value))]


class InfraSettings(BaseModel):
    """Everything that varies between deployments. Field aliases are the context keys."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    slack_channel_id: str = Field(alias="slackChannelId")
    # The Slack workspaces (or Enterprise Grid orgs) whose signed requests the functions act on.
    slack_team_ids: IdList = Field(alias="slackTeamId")
    slack_secret_name: str = Field(default="s3-batch-approvals/slack", min_length=1, alias="slackSecretName")
    log_retention_days: int = Field(default=30, alias="logRetentionDays")
    audit_log_retention_days: int = Field(default=400, alias="auditLogRetentionDays")
    audit_log_kms_encryption: bool = Field(default=False, alias="auditLogKmsEncryption")
    lambda_architecture: Literal["arm64", "x86_64"] = Field(default="arm64", alias="lambdaArchitecture")
    # 3.13, not the newest: the bundle ships bytecode compiled by an interpreter of the runtime's own minor
    # version (infra/bundling.py), and the README's setup provides 3.12 and 3.13.
    python_runtime: str = Field(default=DEFAULT_PYTHON_RUNTIME, alias="pythonRuntime")
    # Functions published with Lambda SnapStart (names in SNAPSTART_FUNCTIONS, or "all"); none by default.
    snap_start: SnapStartList = Field(default=(), alias="snapStart")
    approver_user_ids: IdList = Field(default=(), alias="approverUserIds")
    approver_group_ids: IdList = Field(default=(), alias="approverGroupIds")
    large_job_threshold: int = Field(default=1_000_000, ge=1, alias="largeJobThreshold")
    api_throttle_rate_limit: float = Field(default=10, gt=0, alias="apiThrottleRateLimit")
    api_throttle_burst_limit: int = Field(default=20, ge=1, alias="apiThrottleBurstLimit")
    job_tag_condition: OptionalText = Field(default=None, alias="jobTagCondition")
    alarm_email: OptionalText = Field(default=None, alias="alarmEmail")
    stack_name: str = Field(default="S3BatchApprovals", alias="stackName")
    # How long a decision claim is held (the decider and the notifier's reconciliation read it).
    decision_lease_seconds: int = Field(default=DEFAULT_DECISION_LEASE_SECONDS, ge=10, alias="decisionLeaseSeconds")
    # The approval policy (YAML), relative to the repo root; validated when read, bundled as JSON.
    policy_file: str = Field(default=DEFAULT_POLICY_FILE, min_length=1, alias="policyFile")
    # Who created a job: the notifier may look the CreateJob call up in CloudTrail's event history when its
    # event has not arrived (no trail needed; cloudtrail:LookupEvents is granted only when on).
    requester_lookup: bool = Field(default=True, alias="requesterLookup")
    # Create a single-region trail of write management events, so that EventBridge receives CreateJob calls.
    # Off by default: most organisations already have an (organisation) trail, which serves as well.
    create_trail: bool = Field(default=False, alias="createTrail")
    # The approver's queue in Slack: the slash command's name (the manifest and the functions use it).
    slash_command: str = Field(default=DEFAULT_SLASH_COMMAND, alias="slashCommand")
    # API Gateway writes access logs only with the region's account-level CloudWatch role set. Creating that
    # role (AWS::ApiGateway::Account) replaces the region's setting for every API in the account, so it is
    # opt-in; access logs are on with it, or on their own where the region has the role already.
    api_gateway_cloudwatch_role: bool = Field(default=False, alias="apiGatewayCloudWatchRole")
    api_access_logs: bool = Field(default=False, alias="apiAccessLogs")

    @property
    def access_logs(self) -> bool:
        """Whether the API's stage writes access logs (the account-level role is created, or said to exist)."""
        return self.api_access_logs or self.api_gateway_cloudwatch_role

    @field_validator("slack_channel_id")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not SLACK_CHANNEL_ID.fullmatch(value):
            raise ValueError("must be a Slack channel ID such as C0123456789")
        return value

    @field_validator("slack_team_ids")
    @classmethod
    def _teams(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must name at least one Slack workspace (T…) or Enterprise Grid org (E…) ID")
        bad = [item for item in value if not SLACK_TEAM_ID.fullmatch(item)]
        if bad:
            raise ValueError(f"not Slack workspace (T…) or Enterprise Grid org (E…) IDs: {', '.join(bad)}")
        return value

    @field_validator("decision_lease_seconds")
    @classmethod
    def _lease(cls, value: int) -> int:
        # The queue's visibility timeout and the decider's timeout are fixed (infra.constants); the lease
        # must fit between them, or a redelivered click would find its claim still held.
        check_decision_timing(
            visibility_timeout=DECISIONS_QUEUE_VISIBILITY_SECONDS, lease=value, function_timeout=DECIDER_TIMEOUT_SECONDS
        )
        return value

    @field_validator("log_retention_days", "audit_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in RETENTION_DAYS:
            allowed = ", ".join(str(days) for days in RETENTION_DAYS)
            raise ValueError(f"{value} is not a CloudWatch Logs retention period; use one of {allowed}")
        return value

    @field_validator("python_runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        match = re.fullmatch(r"3\.(\d+)", value)
        if not match or int(match.group(1)) < 12 or not hasattr(lambda_.Runtime, f"PYTHON_3_{match[1]}"):
            raise ValueError(f"{value!r} is not a Lambda Python runtime this CDK offers (3.12 or later)")
        return value

    @field_validator("snap_start")
    @classmethod
    def _snap_start(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [item for item in value if item not in SNAPSTART_FUNCTIONS]
        if bad:
            raise ValueError(
                f"not function names: {', '.join(bad)}; use some of {', '.join(SNAPSTART_FUNCTIONS)}, all or none"
            )
        return value

    @field_validator("approver_user_ids")
    @classmethod
    def _users(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [item for item in value if not SLACK_USER_ID.fullmatch(item)]
        if bad:
            raise ValueError(f"not Slack user IDs: {', '.join(bad)}")
        return value

    @field_validator("approver_group_ids")
    @classmethod
    def _groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [item for item in value if not SLACK_GROUP_ID.fullmatch(item)]
        if bad:
            raise ValueError(f"not Slack user group IDs: {', '.join(bad)}")
        return value

    @field_validator("job_tag_condition")
    @classmethod
    def _tag_condition(cls, value: str | None) -> str | None:
        if value is not None and not TAG_CONDITION.fullmatch(value):
            raise ValueError("must look like key=value, for example approval-team=storage")
        return value

    @field_validator("alarm_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.fullmatch(value):
            raise ValueError("must be an email address")
        return value

    @field_validator("slash_command")
    @classmethod
    def _slash_command(cls, value: str) -> str:
        if not SLASH_COMMAND.fullmatch(value):
            raise ValueError("must be a slash and up to 31 lowercase letters, digits, - or _, like /s3-approvals")
        return value

    @field_validator("stack_name")
    @classmethod
    def _stack_name(cls, value: str) -> str:
        if not STACK_NAME.fullmatch(value):
            raise ValueError("must start with a letter and hold only letters, digits and hyphens")
        return value

    # Derived values the constructs use.

    @property
    def log_retention(self) -> logs.RetentionDays:
        return RETENTION_DAYS[self.log_retention_days]

    @property
    def audit_log_retention(self) -> logs.RetentionDays:
        return RETENTION_DAYS[self.audit_log_retention_days]

    @property
    def runtime(self) -> lambda_.Runtime:
        runtime: lambda_.Runtime = getattr(lambda_.Runtime, "PYTHON_" + self.python_runtime.replace(".", "_"))
        return runtime

    @property
    def architecture(self) -> lambda_.Architecture:
        return lambda_.Architecture.ARM_64 if self.lambda_architecture == "arm64" else lambda_.Architecture.X86_64

    @property
    def pip_platform_arch(self) -> str:
        """The manylinux machine name pip wants for this architecture."""
        return "aarch64" if self.lambda_architecture == "arm64" else "x86_64"

    @property
    def requester_lookup_mode(self) -> str:
        """What the notifier's REQUESTER_LOOKUP says: look requesters up in CloudTrail's history, or not."""
        return REQUESTER_LOOKUP_CLOUDTRAIL if self.requester_lookup else REQUESTER_LOOKUP_OFF

    @property
    def job_tag(self) -> tuple[str, str] | None:
        if self.job_tag_condition is None:
            return None
        key, _, value = self.job_tag_condition.partition("=")
        return key, value

    @cached_property
    def policy(self) -> Policy:
        """The policy file, validated with the functions' model; InfraSettingsError names the rule and field."""
        try:
            return read_policy(ROOT, self.policy_file)
        except PolicyFileError as exc:
            raise InfraSettingsError(
                "\n".join(f"context setting 'policyFile' ({self.policy_file}): {problem}" for problem in exc.problems)
            ) from None

    def placeholders(self) -> list[str]:
        """What would make this deployment one nobody can use, each with how to fix it: the placeholder
        channel or workspace cdk.json ships, or nobody who could approve a job. Synth warns of each; ``make
        deploy`` refuses while there is any (infra/deploy_guard.py)."""
        found = []
        if self.slack_channel_id == PLACEHOLDER_CHANNEL_ID:
            found.append(
                f"slackChannelId is the placeholder {PLACEHOLDER_CHANNEL_ID}: set the ID of the channel for approval "
                "requests (in Slack: the channel's details, at the bottom), in cdk.json or with -c slackChannelId=C…"
            )
        if PLACEHOLDER_TEAM_ID in self.slack_team_ids:
            found.append(
                f"slackTeamId is the placeholder {PLACEHOLDER_TEAM_ID}: set your Slack workspace's ID (T…, in the "
                "workspace's about page or any Slack URL), in cdk.json or with -c slackTeamId=T…"
            )
        unnamed = [r.name for r in self.policy.rules if r.action == "require_approval" and r.approvers is None]
        if unnamed and not self.approver_user_ids and not self.approver_group_ids:
            found.append(
                "nobody could approve a job: approverUserIds and approverGroupIds are empty, and policy rule"
                f"{'s' if len(unnamed) > 1 else ''} {', '.join(unnamed)} name{'' if len(unnamed) > 1 else 's'} no "
                "approvers; set approverUserIds (U…) or approverGroupIds (S…) in cdk.json or with -c, or name "
                "approvers on every such rule of the policy file"
            )
        return found

    @cached_property
    def policy_json(self) -> str:
        """The validated policy as the bundle holds it (approvals/policy.json)."""
        return dump_policy(self.policy)

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> InfraSettings:
        """Build the settings from a context lookup such as ``app.node.try_get_context``."""
        # An empty value means "not set", as if the key were absent.
        values = {key: value for key in EXAMPLES if (value := get(key)) is not None and value != ""}
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            raise InfraSettingsError(_describe(exc, values)) from None
        # Read and validated now, so that a bad policy stops the synth before anything is built.
        settings.policy  # noqa: B018
        return settings


def _describe(exc: ValidationError, values: Mapping[str, Any]) -> str:
    problems = []
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else "?"
        how = f"set it in cdk.json or pass -c {key}={EXAMPLES.get(key, '...')}"
        if error["type"] == "missing":
            problems.append(f"context setting '{key}' is missing: {how}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"context setting '{key}' is invalid ({values.get(key)!r}): {message}; {how}")
    return "\n".join(problems)


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The ``context`` block of cdk.json: the defaults ``python app.py`` and the tests start from.

    The CDK CLI reads cdk.json itself and its values (and ``-c``) take precedence over these.
    """
    return dict(json.loads(path.read_text(encoding="utf-8")).get("context", {}))
