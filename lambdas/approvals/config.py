"""Settings for the Lambda functions: read from the environment once per cold start and validated.

Every variable a handler reads is declared here; the README's "local run contract" lists the same
names. A missing or malformed setting raises ``SettingsError`` naming the variable.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache, cached_property
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from approvals.models.job import ACCOUNT_ID, REGION
from approvals.names import (
    DEFAULT_SLASH_COMMAND,
    DEFAULT_SPOKE_ROLE_PREFIX,
    ROLE_NAME_PATTERN,
    SLASH_COMMAND_PATTERN,
    SPOKE_ROLE_PREFIX_MAX,
)

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
SLACK_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
SLACK_TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,}$")  # a workspace (T…) or an Enterprise Grid org (E…)
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
SLACK_HOOKS_PREFIX = "https://hooks.slack.com/"  # where Slack's response_url values point
SLASH_COMMAND = re.compile(SLASH_COMMAND_PATTERN)


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names the environment variable."""


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _ids(value: object, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """A comma-separated list (or a sequence) of IDs, each matched whole against ``pattern``."""
    ids = tuple(_split(value)) if isinstance(value, str) or value is None else tuple(value)  # type: ignore[call-overload, arg-type]
    bad = [i for i in ids if not pattern.fullmatch(i)]
    if bad:
        raise ValueError(f"not {what}: {', '.join(bad)}")
    return ids


class MemberAccount(BaseModel):
    """An account the hub serves: its ID, the name people know it by, and the regions its jobs run in (none
    listed: the hub's own region). The hub acts there through the spoke role of each region."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str | None = Field(default=None, min_length=1, max_length=64)
    regions: tuple[str, ...] | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ACCOUNT_ID.fullmatch(value):
            raise ValueError("an account ID is 12 digits, as a string")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or value != value.strip()):
            raise ValueError("a name is printable text without leading or trailing spaces")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("an empty list: leave regions out for the hub's own region")
        bad = [region for region in value if not REGION.fullmatch(region)]
        if bad:
            raise ValueError(f"not region names: {', '.join(bad)}")
        if len(set(value)) != len(value):
            raise ValueError("a region is listed twice")
        return value


def _members(value: object) -> object:
    """MEMBER_ACCOUNTS is JSON text (a list of objects); empty or unset means no members."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from None
    return value


class Settings(BaseModel):
    """What the functions need to know about their deployment."""

    model_config = ConfigDict(frozen=True)

    slack_secret_name: str = Field(min_length=1, alias="SLACK_SECRET_NAME")
    slack_channel_id: str = Field(alias="SLACK_CHANNEL_ID")
    requests_table_name: str = Field(min_length=1, alias="REQUESTS_TABLE_NAME")
    idempotency_table_name: str = Field(min_length=1, alias="IDEMPOTENCY_TABLE_NAME")
    audit_table_name: str = Field(min_length=1, alias="AUDIT_TABLE_NAME")
    slack_api_url: str = Field(default=DEFAULT_SLACK_API_URL, alias="SLACK_API_URL")
    decisions_queue_url: str | None = Field(default=None, alias="DECISIONS_QUEUE_URL")
    approver_user_ids: tuple[str, ...] = Field(default=(), alias="APPROVER_USER_IDS")
    approver_group_ids: tuple[str, ...] = Field(default=(), alias="APPROVER_GROUP_IDS")
    slack_team_ids: tuple[str, ...] = Field(default=(), alias="SLACK_TEAM_ID")
    large_job_threshold: int = Field(default=1_000_000, ge=1, alias="LARGE_JOB_THRESHOLD")
    secret_max_age_seconds: int = Field(default=300, ge=0, alias="SECRET_MAX_AGE_SECONDS")
    group_cache_seconds: int = Field(default=300, ge=0, alias="APPROVER_GROUP_CACHE_SECONDS")
    request_ttl_days: int = Field(default=120, ge=1, alias="REQUEST_TTL_DAYS")
    decision_lease_seconds: int = Field(default=120, ge=10, alias="DECISION_LEASE_SECONDS")
    # The decisions queue's visibility timeout times its receive count + the lease (the stack computes it).
    decision_stuck_after_seconds: int = Field(default=360 * 5 + 120, ge=10, alias="DECISION_STUCK_AFTER_SECONDS")
    # The policy file (YAML or JSON); unset: the one the synth bundled (approvals/policy.json), if any.
    policy_file: str | None = Field(default=None, min_length=1, alias="POLICY_FILE")
    # Who created a job, when its CreateJob event did not come: CloudTrail's event history, or not at all.
    # Seconds between two messages posted to one channel (Slack allows about one a second); 0 turns pacing off.
    slack_post_interval_seconds: float = Field(default=1.0, ge=0, le=60, alias="SLACK_POST_INTERVAL_SECONDS")
    requester_lookup: Literal["cloudtrail", "off"] = Field(default="cloudtrail", alias="REQUESTER_LOOKUP")
    # The approver's queue: the slash command this app answers (the manifest registers the same name).
    slash_command: str = Field(default=DEFAULT_SLASH_COMMAND, alias="SLASH_COMMAND")

    # One hub, many accounts (README "Many accounts and regions"). Unset HUB_ACCOUNT_ID: one account, as before
    # (every job is acted on with the function's own role). Set: the hub's own account and region with its own
    # role, the listed members' through their spoke roles, and nothing else.
    hub_account_id: str | None = Field(default=None, alias="HUB_ACCOUNT_ID")
    hub_region: str | None = Field(default=None, alias="AWS_REGION")  # Lambda sets it
    member_accounts: tuple[MemberAccount, ...] = Field(default=(), alias="MEMBER_ACCOUNTS")
    spoke_role_prefix: str = Field(
        default=DEFAULT_SPOKE_ROLE_PREFIX, max_length=SPOKE_ROLE_PREFIX_MAX, alias="SPOKE_ROLE_PREFIX"
    )

    @field_validator("hub_account_id")
    @classmethod
    def _hub_account(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT_ID.fullmatch(value):
            raise ValueError("an account ID is 12 digits")
        return value

    @field_validator("member_accounts", mode="before")
    @classmethod
    def _member_list(cls, value: object) -> object:
        return _members(value)

    @field_validator("member_accounts")
    @classmethod
    def _member_ids(cls, value: tuple[MemberAccount, ...]) -> tuple[MemberAccount, ...]:
        ids = [member.id for member in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed more than once")
        return value

    @field_validator("spoke_role_prefix")
    @classmethod
    def _role_prefix(cls, value: str) -> str:
        if not re.fullmatch(ROLE_NAME_PATTERN, value):
            raise ValueError("an IAM role name: letters, digits and +=,.@_-")
        return value

    @model_validator(mode="after")
    def _hub_region(self) -> Settings:
        if self.hub_account_id is not None and self.hub_region is None:
            raise ValueError("AWS_REGION: required with HUB_ACCOUNT_ID (the hub's own region; Lambda sets it)")
        return self

    @cached_property
    def places(self) -> tuple[tuple[str, str], ...]:
        """Every (account, region) the hub serves, its own first; empty when it is not a hub (HUB_ACCOUNT_ID
        unset) or does not know its region."""
        if self.hub_account_id is None or self.hub_region is None:
            return ()
        found = [(self.hub_account_id, self.hub_region)]
        for member in self.member_accounts:
            for region in member.regions or (self.hub_region,):
                if (member.id, region) not in found:
                    found.append((member.id, region))
        return tuple(found)

    @cached_property
    def account_names(self) -> Mapping[str, str]:
        """Account ID → the name the settings give it."""
        return {member.id: member.name for member in self.member_accounts if member.name}

    @field_validator("slash_command")
    @classmethod
    def _slash_command(cls, value: str) -> str:
        if not SLASH_COMMAND.fullmatch(value):
            raise ValueError("must be a slash and up to 31 lowercase letters, digits, - or _, like /s3-approvals")
        return value

    @field_validator("slack_channel_id")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not SLACK_CHANNEL_ID.fullmatch(value):
            raise ValueError("must be a Slack channel ID such as C0123456789")
        return value

    @field_validator("approver_user_ids", mode="before")
    @classmethod
    def _users(cls, value: object) -> tuple[str, ...]:
        return _ids(value, SLACK_USER_ID, "Slack user IDs")

    @field_validator("approver_group_ids", mode="before")
    @classmethod
    def _groups(cls, value: object) -> tuple[str, ...]:
        return _ids(value, SLACK_GROUP_ID, "Slack user group IDs")

    @field_validator("slack_team_ids", mode="before")
    @classmethod
    def _teams(cls, value: object) -> tuple[str, ...]:
        return _ids(value, SLACK_TEAM_ID, "Slack workspace (T…) or Enterprise Grid (E…) IDs")

    def require_teams(self) -> tuple[str, ...]:
        """The Slack workspaces whose people may act; the functions that read Slack requests need it."""
        if not self.slack_team_ids:
            raise SettingsError(
                "invalid settings: SLACK_TEAM_ID: required: the Slack workspace (T…) or Enterprise Grid org (E…) "
                "the app serves"
            )
        return self.slack_team_ids

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @property
    def response_url_prefixes(self) -> tuple[str, ...]:
        """Where a slash command's ``response_url`` may point: Slack's hooks, and, when SLACK_API_URL names
        another Slack (a stand-in), that server's origin."""
        if self.slack_api_url == DEFAULT_SLACK_API_URL:
            return (SLACK_HOOKS_PREFIX,)
        split = urlsplit(self.slack_api_url)
        return (SLACK_HOOKS_PREFIX, f"{split.scheme}://{split.netloc}/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        try:
            return cls.model_validate(env)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                name = error["loc"][0] if error["loc"] else "?"
                problems.append(f"{name}: {error['msg']}")
            raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@cache
def settings() -> Settings:
    """The settings of this cold start (validated on first use)."""
    return Settings.from_env()
