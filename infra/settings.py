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
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from infra.constants import (
    DECIDER_TIMEOUT_SECONDS,
    DECISIONS_QUEUE_VISIBILITY_SECONDS,
    DEFAULT_DECISION_LEASE_SECONDS,
    DEFAULT_SLASH_COMMAND,
    DEFAULT_SPOKE_ROLE_PREFIX,
    DEFAULT_SPOKE_STACK_NAME,
    DEFAULT_STACK_NAME,
    HUB_FUNCTIONS_ACTING_IN_SPOKES,
    LONGEST_REGION_NAME_LENGTH,
    REQUESTER_LOOKUP_CLOUDTRAIL,
    REQUESTER_LOOKUP_OFF,
    ROLE_NAME_PATTERN,
    SLASH_COMMAND_PATTERN,
    SPOKE_ROLE_PREFIX_MAX,
    check_decision_timing,
    hub_event_bus_name,
    hub_role_name,
    spoke_role_name,
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
# One hub, many accounts: AWS Organizations IDs, account IDs, region names and IAM role names.
ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
ROLE_NAME = re.compile(ROLE_NAME_PATTERN)
MEMBER_NAME_MAX = 64
# MEMBER_ACCOUNTS travels in the functions' environment, which Lambda caps at 4 KB in all; the other variables
# take about 1 KB (the decider's, with the queue URL and the table names, the most).
MEMBER_ACCOUNTS_JSON_MAX = 2500
# The hub's named roles (<stack>-<function>-<region>) must fit IAM's 64 characters in every region.
STACK_NAME_MAX = 64 - max(
    len(hub_role_name("", function, "r" * LONGEST_REGION_NAME_LENGTH)) for function in HUB_FUNCTIONS_ACTING_IN_SPOKES
)

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
    "stackName": DEFAULT_STACK_NAME,
    "decisionLeaseSeconds": str(DEFAULT_DECISION_LEASE_SECONDS),
    "policyFile": "policy.yaml",
    "requesterLookup": "true",
    "createTrail": "false",
    "slashCommand": DEFAULT_SLASH_COMMAND,
    "apiGatewayCloudWatchRole": "false",
    "apiAccessLogs": "false",
    "organizationId": "o-a1b2c3d4e5",
    "memberAccounts": '\'[{"id": "210987654321", "name": "analytics", "regions": ["us-west-2"]}]\'',
    "spokeRolePrefix": DEFAULT_SPOKE_ROLE_PREFIX,
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


class MemberAccount(BaseModel):
    """One account the hub serves (the memberAccounts setting), as MEMBER_ACCOUNTS gives it to the functions."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None = None
    # None: the hub's own region (a token at synth, so the settings cannot name it).
    regions: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, mode="json")


def _check_organization_id(value: str | None) -> str | None:
    if value is not None and not ORGANIZATION_ID.fullmatch(value):
        raise ValueError("must be an AWS Organizations ID: o- and 10 to 32 lowercase letters or digits")
    return value


def _check_spoke_role_prefix(value: str) -> str:
    if len(value) > SPOKE_ROLE_PREFIX_MAX or not ROLE_NAME.fullmatch(value):
        raise ValueError(
            f"must be 1 to {SPOKE_ROLE_PREFIX_MAX} letters, digits or +=,.@_- (room for -<region> in IAM's 64 "
            "characters for a role name)"
        )
    return value


def _json_text(value: object) -> object:
    """A JSON value given as text (what ``-c key='[…]'`` passes under the CDK CLI), else the value as is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON ({exc.msg} at character {exc.pos})") from None
    return value


def _member_accounts(value: object) -> tuple[MemberAccount, ...]:
    """memberAccounts: a JSON list of {"id": "123456789012", "name": "…", "regions": ["…"]}, each account once."""
    value = _json_text(value)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError('must be a JSON list such as [{"id": "210987654321", "regions": ["us-west-2"]}]')
    members: list[MemberAccount] = []
    for number, entry in enumerate(value, start=1):
        where = f"entry {number}"
        if not isinstance(entry, dict):
            raise ValueError(f'{where} must be an object such as {{"id": "210987654321"}}')
        unknown = sorted(set(entry) - {"id", "name", "regions"})
        if unknown:
            raise ValueError(f"{where}: unknown key {', '.join(map(repr, unknown))} (keys: id, name, regions)")
        account = entry.get("id")
        if not isinstance(account, str) or not ACCOUNT_ID.fullmatch(account):
            raise ValueError(f"{where}: id must be an AWS account ID of 12 digits, quoted (given {account!r})")
        where = f"account {account}"
        name = entry.get("name")
        if name is not None and (
            not isinstance(name, str) or not 1 <= len(name.strip()) <= MEMBER_NAME_MAX or not name.isprintable()
        ):
            raise ValueError(f"{where}: name must be 1 to {MEMBER_NAME_MAX} printable characters")
        regions = entry.get("regions")
        if regions is not None:
            if not isinstance(regions, list) or not regions:
                raise ValueError(f'{where}: regions must be a non-empty list of region names, such as ["us-west-2"]')
            bad = [region for region in regions if not isinstance(region, str) or not REGION_NAME.fullmatch(region)]
            if bad:
                raise ValueError(f"{where}: not region names: {', '.join(map(repr, bad))} (such as us-west-2)")
            if len(set(regions)) != len(regions):
                raise ValueError(f"{where}: a region is listed twice")
        if any(member.id == account for member in members):
            raise ValueError(f"{where} is listed twice; list it once, with all its regions")
        members.append(
            MemberAccount(id=account, name=name.strip() if name else None, regions=tuple(regions) if regions else None)
        )
    return tuple(members)


IdList = Annotated[tuple[str, ...], BeforeValidator(_split_ids)]
MemberAccountList = Annotated[tuple[MemberAccount, ...], BeforeValidator(_member_accounts)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]
# The settings the hub and its spokes share, checked the same way in both.
OrganizationId = Annotated[str | None, BeforeValidator(_blank_to_none), AfterValidator(_check_organization_id)]
SpokeRolePrefix = Annotated[str, AfterValidator(_check_spoke_role_prefix)]
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
    stack_name: str = Field(default=DEFAULT_STACK_NAME, alias="stackName")
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
    # One hub, many accounts (infra/hub.py): the organisation whose accounts may put events on the hub's bus
    # (else only the listed member accounts may), the member accounts and regions the hub acts in through their
    # spoke roles, and the spoke roles' name prefix (<prefix>-<region>).
    organization_id: OrganizationId = Field(default=None, alias="organizationId")
    spoke_role_prefix: SpokeRolePrefix = Field(default=DEFAULT_SPOKE_ROLE_PREFIX, alias="spokeRolePrefix")
    member_accounts: MemberAccountList = Field(default=(), alias="memberAccounts")

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
        if len(value) > STACK_NAME_MAX:
            longest = hub_role_name(value, HUB_FUNCTIONS_ACTING_IN_SPOKES[0], "ap-southeast-4")
            raise ValueError(
                f"must be at most {STACK_NAME_MAX} characters ({len(value)} given): the notifier's and the decider's "
                f"roles are named <stack>-<function>-<region>, such as {longest}, and IAM allows 64"
            )
        return value

    @field_validator("member_accounts")
    @classmethod
    def _member_role_names(cls, value: tuple[MemberAccount, ...], info: ValidationInfo) -> tuple[MemberAccount, ...]:
        prefix = info.data.get("spoke_role_prefix", DEFAULT_SPOKE_ROLE_PREFIX)
        size = len(json.dumps([member.as_json() for member in value], separators=(",", ":")))
        if size > MEMBER_ACCOUNTS_JSON_MAX:
            raise ValueError(
                f"is {size} characters as compact JSON, more than the {MEMBER_ACCOUNTS_JSON_MAX} the functions' "
                "environment has room for (Lambda allows 4 KB in all): shorten the names, or leave some out"
            )
        for member in value:
            for region in member.regions or ():
                if not ROLE_NAME.fullmatch(spoke_role_name(prefix, region)):
                    raise ValueError(
                        f"account {member.id}: the spoke role name {spoke_role_name(prefix, region)!r} "
                        "(spokeRolePrefix-region) is longer than the 64 characters IAM allows"
                    )
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

    @property
    def member_accounts_json(self) -> str:
        """What MEMBER_ACCOUNTS says: the members as listed (no regions: the hub's own region), compact JSON."""
        return json.dumps([member.as_json() for member in self.member_accounts], separators=(",", ":"))

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


# The hub's approvals bus: arn:<partition>:events:<region>:<account>:event-bus/<name>.
EVENT_BUS_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):events:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2}):(?P<account>\d{12})"
    r":event-bus/(?P<name>[\w.\-/]{1,256})$"
)
SPOKE_KEY = "spoke"
SPOKE_EXAMPLE = json.dumps(
    {"hubEventBusArn": f"arn:aws:events:us-east-1:123456789012:event-bus/{hub_event_bus_name(DEFAULT_STACK_NAME)}"}
)


class SpokeSettings(BaseModel):
    """The spoke stack's settings: the ``spoke`` context key, a JSON object (cdk.json, or ``-c spoke='{…}'``).

    Only the hub's bus ARN is required: the hub's account, region and partition are read from it, and the hub's
    role names derive from the hub's stack name (``hubStackName``, else the bus's name, ``<stack>-jobs``) and
    that region unless ``hubRoleNames`` lists them (the hub's SpokeContext output gives them all).
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    hub_event_bus_arn: str = Field(alias="hubEventBusArn")
    hub_stack_name_given: str | None = Field(default=None, alias="hubStackName")
    hub_role_names_given: tuple[str, ...] | None = Field(default=None, alias="hubRoleNames")
    organization_id: OrganizationId = Field(default=None, alias="organizationId")
    spoke_role_prefix: SpokeRolePrefix = Field(default=DEFAULT_SPOKE_ROLE_PREFIX, alias="spokeRolePrefix")
    requester_lookup: bool = Field(default=True, alias="requesterLookup")
    job_tags: bool = Field(default=False, alias="jobTags")
    job_tag_condition: OptionalText = Field(default=None, alias="jobTagCondition")
    stack_name: str = Field(default=DEFAULT_SPOKE_STACK_NAME, alias="stackName")

    @field_validator("hub_event_bus_arn")
    @classmethod
    def _bus_arn(cls, value: str) -> str:
        if not EVENT_BUS_ARN.fullmatch(value):
            raise ValueError(
                "must be the hub's event bus ARN (its ApprovalsEventBusArn output), such as "
                f"arn:aws:events:us-east-1:123456789012:event-bus/{hub_event_bus_name(DEFAULT_STACK_NAME)}"
            )
        return value

    @field_validator("hub_stack_name_given")
    @classmethod
    def _hub_stack_name(cls, value: str | None) -> str | None:
        return None if value is None else InfraSettings._stack_name(value)

    @field_validator("hub_role_names_given")
    @classmethod
    def _hub_role_names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must name at least one role (or leave it out: the names derive from hubStackName)")
        bad = [name for name in value if not ROLE_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"not IAM role names: {', '.join(map(repr, bad))}")
        return value

    @field_validator("job_tag_condition")
    @classmethod
    def _tag_condition(cls, value: str | None) -> str | None:
        return InfraSettings._tag_condition(value)

    @field_validator("stack_name")
    @classmethod
    def _stack_name(cls, value: str) -> str:
        if not STACK_NAME.fullmatch(value):
            raise ValueError("must start with a letter and hold only letters, digits and hyphens")
        return value

    def _bus(self, part: str) -> str:
        found = EVENT_BUS_ARN.fullmatch(self.hub_event_bus_arn)
        assert found is not None  # validated
        return found[part]

    @property
    def hub_partition(self) -> str:
        return self._bus("partition")

    @property
    def hub_region(self) -> str:
        return self._bus("region")

    @property
    def hub_account_id(self) -> str:
        return self._bus("account")

    @property
    def hub_stack_name(self) -> str:
        """``hubStackName``, else read from the bus's name (``<stack>-jobs``), else the default stack name."""
        if self.hub_stack_name_given is not None:
            return self.hub_stack_name_given
        bus = self._bus("name")
        suffix = hub_event_bus_name("")
        return bus[: -len(suffix)] if bus.endswith(suffix) and len(bus) > len(suffix) else DEFAULT_STACK_NAME

    @property
    def hub_role_names(self) -> tuple[str, ...]:
        if self.hub_role_names_given is not None:
            return self.hub_role_names_given
        return tuple(
            hub_role_name(self.hub_stack_name, function, self.hub_region) for function in HUB_FUNCTIONS_ACTING_IN_SPOKES
        )

    @property
    def hub_role_arns(self) -> list[str]:
        return [f"arn:{self.hub_partition}:iam::{self.hub_account_id}:role/{name}" for name in self.hub_role_names]

    @property
    def job_tag(self) -> tuple[str, str] | None:
        if self.job_tag_condition is None:
            return None
        key, _, value = self.job_tag_condition.partition("=")
        return key, value

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> SpokeSettings | None:
        """The spoke's settings from the ``spoke`` context key (a JSON object, or its text), or None without one."""
        raw = get(SPOKE_KEY)
        if raw is None or raw == "" or raw == {}:
            return None
        how = f"set it in cdk.json or pass -c {SPOKE_KEY}='{SPOKE_EXAMPLE}'"
        try:
            value = _json_text(raw)
        except ValueError as exc:
            raise InfraSettingsError(f"context setting '{SPOKE_KEY}' {exc}; {how}") from None
        if not isinstance(value, dict):
            raise InfraSettingsError(f"context setting '{SPOKE_KEY}' must be a JSON object; {how}")
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                key = ".".join(str(part) for part in error["loc"]) or "?"
                if error["type"] == "missing":
                    problems.append(f"context setting '{SPOKE_KEY}': {key} is missing; {how}")
                elif error["type"] == "extra_forbidden":
                    known = ", ".join(str(f.alias) for f in cls.model_fields.values())
                    problems.append(f"context setting '{SPOKE_KEY}': unknown key {key!r} (keys: {known})")
                else:
                    message = str(error["msg"]).removeprefix("Value error, ")
                    given = value.get(str(error["loc"][0])) if error["loc"] else value
                    problems.append(f"context setting '{SPOKE_KEY}': {key} is invalid ({given!r}): {message}")
            raise InfraSettingsError("\n".join(problems)) from None
