"""The policy file: which jobs need what sign-off, as a model.

A policy is a list of rules tried in order; the first whose ``match`` fits the job wins, and the last
rule, with an empty ``match``, is the default. The file is YAML for people (``policy.example.yaml``
is the annotated example); the synth validates it with this model and bundles it as JSON, which each
function reads once per cold start with ``load_policy``, so the functions never import PyYAML.

Every model forbids unknown fields (a misspelt key is an error, not a silently ignored setting) and
is strict (``'yes'`` is not ``true``, ``"2"`` is not ``2``). ``load_policy`` turns pydantic's errors
into lines that name the rule and the field::

    rule 'large-copies' (#3): quorum: must be at least 1

``action: approve`` confirms a job without a person. It is allowed only where a rule says so
explicitly: on a rule whose ``action`` is ``approve`` and whose ``match`` is not empty, so never on the
default rule, and never by a default value (a rule's action defaults to ``require_approval``).

To add a setting to rules: add a field with a default to ``Rule`` (or a new block model beside
``RequesterWait``), describe it, and regenerate ``policy.schema.json``
(``python -m approvals.policy schema > policy.schema.json``). Old files keep validating; a file that
uses the setting with an older version of the code fails with "unknown field", as it should.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

POLICY_VERSION = 1
# Where the synth puts the validated policy inside the bundle: approvals/policy.json.
BUNDLED_POLICY_NAME = "policy.json"
EXAMPLE_POLICY_FILE = "policy.example.yaml"

# DescribeJob's Operation union members (FACTS §1). approvals.domain.operations.TITLES names the same.
OperationName = Literal[
    "LambdaInvoke",
    "S3PutObjectCopy",
    "S3PutObjectAcl",
    "S3PutObjectTagging",
    "S3DeleteObjectTagging",
    "S3InitiateRestoreObject",
    "S3PutObjectLegalHold",
    "S3PutObjectRetention",
    "S3ReplicateObject",
    "S3ComputeObjectChecksum",
    "S3UpdateObjectEncryption",
]
OPERATIONS: tuple[str, ...] = typing.get_args(OperationName)
Action = Literal["require_approval", "deny", "approve"]

# ASCII classes only ([0-9], not \d, which also admits other scripts' digits), matched with fullmatch.
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
# A rule's name goes into StatusUpdateReason: "Cancelled by policy <name>: <reason>" must fit 256.
RULE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
MAX_REASON = 200
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")
SLACK_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,31}$")
SLACK_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,31}$")
# Bucket names are lowercase letters, digits, "." and "-"; a glob adds * ? [ ] and ! (fnmatch).
BUCKET_GLOB = re.compile(r"^[a-z0-9.\-*?\[\]!]{1,255}$")
REQUESTER_GLOB = re.compile(r"^arn:[^\s]{1,2044}$")
MAX_QUORUM = 10
MAX_IDENTITIES = 1000  # entries of identities.map: each is tried for every job's requester
# A job left Suspended for 30 days fails, so waiting longer for its requester means nothing.
MAX_REQUESTER_WAIT_MINUTES = 30 * 24 * 60
MAX_REMINDERS = 20
MAX_LIFECYCLE_MINUTES = 29 * 24 * 60
# S3 fails a job left Suspended for more than 30 days; a request expires before that, with a day to spare.
MAX_EXPIRY_HOURS = 29 * 24


class PolicyError(ValueError):
    """The policy is malformed. ``problems`` holds one line per problem, each naming rule and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# -- field types ---------------------------------------------------------------------------------


def _matching(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return check


def _quoted_account(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f"{value} is a number: write account IDs in quotes ('012345678901'); YAML reads an unquoted "
            "number as an integer, dropping leading zeros (and reading some as octal)"
        )
    return value


def _schema(pattern: re.Pattern[str], description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern.pattern, "description": description})


AccountId = Annotated[
    str,
    BeforeValidator(_quoted_account),
    AfterValidator(_matching(ACCOUNT_ID, "an AWS account ID (12 digits)")),
    _schema(ACCOUNT_ID, "An AWS account ID: 12 digits, quoted."),
]
Region = Annotated[
    str,
    AfterValidator(_matching(REGION, "an AWS region such as eu-west-1")),
    _schema(REGION, "An AWS region such as eu-west-1."),
]
BucketGlob = Annotated[
    str,
    AfterValidator(_matching(BUCKET_GLOB, "a bucket name or glob (lowercase letters, digits, '.', '-' and * ? [ ] !)")),
    _schema(BUCKET_GLOB, "A bucket name, or an fnmatch glob of one such as acme-prod-*."),
]
RequesterGlob = Annotated[
    str,
    AfterValidator(_matching(REQUESTER_GLOB, "an IAM principal ARN or a glob of one (arn:aws:sts::*:assumed-role/…)")),
    _schema(REQUESTER_GLOB, "An IAM principal ARN, or an fnmatch glob of one (* also matches '/')."),
]
SlackUserId = Annotated[
    str,
    AfterValidator(_matching(SLACK_USER_ID, "a Slack user ID (U… or W…, such as U0123ABCD)")),
    _schema(SLACK_USER_ID, "A Slack user ID such as U0123ABCD."),
]
SlackGroupId = Annotated[
    str,
    AfterValidator(_matching(SLACK_GROUP_ID, "a Slack user group ID (S…, such as S0123ABCD)")),
    _schema(SLACK_GROUP_ID, "A Slack user group ID such as S0123ABCD."),
]
SlackChannelId = Annotated[
    str,
    AfterValidator(_matching(SLACK_CHANNEL_ID, "a Slack channel ID (C… or G…, such as C0123456789)")),
    _schema(SLACK_CHANNEL_ID, "A Slack channel ID such as C0123456789."),
]
RuleName = Annotated[
    str,
    AfterValidator(
        _matching(RULE_NAME, "a rule name: up to 32 lowercase letters, digits and inner hyphens, like large-copies")
    ),
    _schema(RULE_NAME, "Unique; lowercase letters, digits and hyphens (it appears in the audit and the job)."),
]
TagKey = Annotated[str, Field(min_length=1, max_length=128)]
TagGlob = Annotated[str, Field(max_length=256)]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


# -- match ---------------------------------------------------------------------------------------


class ObjectCount(_Block):
    """A range of the job's object count (TotalNumberOfTasks), both bounds inclusive."""

    min: int | None = Field(default=None, ge=0, description="At least this many objects.")
    max: int | None = Field(default=None, ge=0, description="At most this many objects.")

    @model_validator(mode="after")
    def _bounds(self) -> ObjectCount:
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is more than max ({self.max})")
        return self


def _non_empty(what: str) -> Any:
    return Field(default=None, min_length=1, description=what)


class Match(_Block):
    """Which jobs a rule is for. Every key given must hold (and); a list matches any of its items (or).

    An empty match fits every job: only the last rule, the default, may have one.
    """

    accounts: list[AccountId] | None = _non_empty("The job's account is one of these.")
    regions: list[Region] | None = _non_empty("The job's region is one of these.")
    operations: list[OperationName] | None = _non_empty("The job's operation is one of these.")
    buckets: list[BucketGlob] | None = _non_empty(
        "One of the job's buckets (manifest, generated-manifest source, copy target) matches one of these."
    )
    object_count: ObjectCount | None = Field(default=None, description="The job's object count is in this range.")
    tags: dict[TagKey, TagGlob] | None = Field(
        default=None, min_length=1, description="The job has each of these tags, its value matching the glob."
    )
    requesters: list[RequesterGlob] | None = _non_empty(
        "The principal that created the job matches one of these ARN globs (an unknown requester never matches)."
    )

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)


# -- what a rule requires ------------------------------------------------------------------------


class Approvers(_Block):
    """Who may approve: named Slack users, and members of Slack user groups."""

    users: list[SlackUserId] = Field(default=[], description="Slack user IDs.")
    groups: list[SlackGroupId] = Field(default=[], description="Slack user group IDs; any member may approve.")

    @model_validator(mode="after")
    def _someone(self) -> Approvers:
        if not self.users and not self.groups:
            raise ValueError("name at least one user or group, or leave approvers out for the deployment's approvers")
        for field, ids in (("users", self.users), ("groups", self.groups)):
            twice = sorted({item for item in ids if ids.count(item) > 1})
            if twice:
                raise ValueError(f"{', '.join(twice)} listed more than once in {field}")
        return self


class RequesterWait(_Block):
    """While the job's creator is not known yet, approval waits (four eyes cannot be checked)."""

    timeout_minutes: int = Field(
        default=60, ge=0, le=MAX_REQUESTER_WAIT_MINUTES, description="How long to wait for the requester."
    )
    then: Literal["allow", "hold"] = Field(
        default="hold",
        description="After the timeout: allow approval without knowing the requester (warned and audited), "
        "or keep holding.",
    )


class Escalation(_Block):
    """After some reminders, a request still waiting is escalated: the reminders from then on also mention
    these people and groups, and (with ``channel``) a notice goes to a second channel."""

    after_reminders: int = Field(
        default=2, ge=0, le=MAX_REMINDERS, description="Escalate with the reminder after this many (0: the first)."
    )
    users: list[SlackUserId] = Field(default=[], description="Slack user IDs to mention.")
    groups: list[SlackGroupId] = Field(default=[], description="Slack user group IDs to mention.")
    channel: SlackChannelId | None = Field(default=None, description="Also post the escalation in this channel.")

    @model_validator(mode="after")
    def _somewhere(self) -> Escalation:
        if not self.users and not self.groups and self.channel is None:
            raise ValueError("name users, groups or a channel to escalate to")
        return self


class Reminders(_Block):
    """While a request waits, reminders in its thread mention the approvers: the first after
    ``first_after_minutes``, each later one ``backoff`` times the gap before it, at most ``max``."""

    first_after_minutes: int = Field(
        default=15, ge=1, le=MAX_LIFECYCLE_MINUTES, description="Minutes before the first reminder."
    )
    backoff: int | float = Field(default=2, ge=1, le=10, description="Each gap is this many times the one before.")
    max: int = Field(default=4, ge=0, le=MAX_REMINDERS, description="At most this many reminders (0: none).")
    escalate: Escalation | None = Field(default=None, description="Omitted: reminders are never escalated.")

    @model_validator(mode="after")
    def _reachable(self) -> Reminders:
        if self.escalate is not None and self.escalate.after_reminders >= self.max:
            raise ValueError(
                f"escalate.after_reminders: {self.escalate.after_reminders} reminders come before the escalation "
                f"but max allows only {self.max}, so it would never happen"
            )
        return self


class Expiry(_Block):
    """A request nobody decides expires: ``cancel`` cancels the job (through the same exactly-once path as a
    person's decision); ``leave`` marks the request expired and leaves the job Suspended."""

    after_hours: int = Field(
        default=24,
        ge=1,
        le=MAX_EXPIRY_HOURS,
        description="Hours after the request is posted (never later than S3 allows a job to wait: 30 days).",
    )
    action: Literal["cancel", "leave"] = Field(default="cancel", description="What happens at the deadline.")
    keep_buttons: bool = Field(
        default=True, description="With leave: keep Approve and Cancel on the expired request (a late decision)."
    )


class Rule(_Block):
    name: RuleName
    match: Match = Field(default_factory=Match, description="Which jobs; empty (the default rule) means every job.")
    action: Action = Field(
        default="require_approval",
        description="require_approval (the default); deny: cancel the job at once with the reason; approve: "
        "confirm the job without a person (never on the default rule).",
    )
    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REASON,
        description="Why; shown in Slack and the audit. Required for deny (it becomes the job's status reason).",
    )
    approvers: Approvers | None = Field(default=None, description="Omitted: the deployment's approvers.")
    quorum: int = Field(default=1, ge=1, le=MAX_QUORUM, description="How many distinct approvers must approve.")
    channel: SlackChannelId | None = Field(default=None, description="Omitted: the deployment's channel.")
    allow_self_approval: bool = Field(
        default=False, description="Whether the job's creator may approve it. Never by default."
    )
    requester_wait: RequesterWait = Field(default_factory=RequesterWait)
    reminders: Reminders = Field(default_factory=Reminders)
    expiry: Expiry = Field(default_factory=Expiry)

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.action == "deny" and self.reason is None:
            raise ValueError("reason: required when action is deny (it becomes the cancelled job's status reason)")
        # With named users only, a quorum above their number could never be met.
        users = self.approvers.users if self.approvers is not None and not self.approvers.groups else None
        if self.action == "require_approval" and users is not None and self.quorum > len(users):
            raise ValueError(
                f"quorum: {self.quorum} approvals needed but approvers name only "
                f"{len(users)} user{'s' if len(users) != 1 else ''} and no group"
            )
        return self


# -- who is who: IAM principals to Slack users ----------------------------------------------------


class IdentityMapping(_Block):
    """One IAM principal (or a glob of them) that is this Slack user."""

    principal: RequesterGlob = Field(
        description="The ARN that created the job (an assumed role's session ARN, or for an assumed role also "
        "the role's ARN), or an fnmatch glob of one (* also matches '/')."
    )
    slack_user: SlackUserId = Field(description="The Slack user ID that principal is (U… or W…).")


class Identities(_Block):
    """How the principal that created a job is matched to a Slack user (the requester, who may not approve).

    ``map`` is tried first, in order, and the first entry that matches wins; then, with ``email_lookup``, an
    IAM Identity Center session whose name is an email is looked up in Slack (users.lookupByEmail). A
    principal that neither names is shown by its ARN, and no Slack user is treated as it.
    """

    email_lookup: bool = Field(
        default=True,
        description="Look up IAM Identity Center sessions (assumed-role/AWSReservedSSO_…/<email>) by email in "
        "Slack (needs the users:read.email scope).",
    )
    map: list[IdentityMapping] = Field(
        default=[], max_length=MAX_IDENTITIES, description="Tried in order before the email lookup; first match wins."
    )

    @model_validator(mode="after")
    def _distinct(self) -> Identities:
        problems = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(self.map):
            if entry.principal in seen:
                problems.append(
                    f"{identity_label(index)}: principal: {entry.principal!r} is already mapped by "
                    f"{identity_label(seen[entry.principal])}, which is tried first, so this entry is never used"
                )
            seen.setdefault(entry.principal, index)
        if problems:
            raise ValueError("\n".join(problems))
        return self


def identity_label(index: int) -> str:
    """``identities.map[2]``: the entry's position in the list, from 0 (as yq and jq count)."""
    return f"identities.map[{index}]"


class Policy(_Block):
    version: Literal[1] = Field(description="The policy file format; 1.")
    rules: list[Rule] = Field(
        min_length=1, description="Tried in order, the first match wins; the last, with an empty match, is the default."
    )
    identities: Identities = Field(
        default_factory=Identities, description="Who created a job, in Slack: explicit mappings, then email lookup."
    )

    @model_validator(mode="after")
    def _shape(self) -> Policy:
        problems = []
        seen: dict[str, int] = {}
        last = len(self.rules)
        for number, rule in enumerate(self.rules, start=1):
            label = rule_label(rule.name, number)
            if rule.name in seen:
                problems.append(f"{label}: name: already used by rule #{seen[rule.name]}")
            seen.setdefault(rule.name, number)
            if number < last and rule.match.empty:
                problems.append(
                    f"{label}: match: empty, so it matches every job and no later rule could apply; "
                    "only the last rule (the default) may have an empty match"
                )
        default = self.rules[-1]
        label = rule_label(default.name, last)
        if not default.match.empty:
            problems.append(
                f"{label}: match: the last rule is the default and must have an empty match (match: {{}} or none), "
                "so that every job meets a rule"
            )
        elif default.action == "approve":
            problems.append(
                f"{label}: action: the default rule may not approve by policy; approve only the jobs a rule's match "
                "names explicitly"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def default(self) -> Rule:
        return self.rules[-1]


def rule_label(name: object, number: int) -> str:
    """``rule 'large-copies' (#3)``: numbered from 1, in file order."""
    return f"rule {name!r} (#{number})" if isinstance(name, str) and name else f"rule #{number}"


# -- loading -------------------------------------------------------------------------------------


def load_policy(source: str | bytes | Mapping[str, Any]) -> Policy:
    """Validate a policy given as YAML or JSON text, or as the parsed mapping. Raises PolicyError.

    JSON (what the bundle holds) is read without PyYAML; YAML is parsed only when the text is not JSON.
    """
    data: object = source
    if isinstance(source, str | bytes):
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        try:
            data = json.loads(text)
        except ValueError:
            data = _parse_yaml(text)
    if not isinstance(data, Mapping):
        raise PolicyError(["the policy must be a mapping with 'version' and 'rules' (it is not)"])
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_problems(exc, data)) from None


def load_policy_file(path: str | Path) -> Policy:
    """Read and validate a policy file (YAML or JSON). Raises PolicyError, OSError if unreadable."""
    return load_policy(Path(path).read_text(encoding="utf-8"))


def bundled_policy_path() -> Path:
    """Where the bundle holds the validated policy: ``approvals/policy.json``."""
    return Path(__file__).resolve().parent.parent / BUNDLED_POLICY_NAME


def dump_policy(policy: Policy) -> str:
    """The validated policy as JSON, every default filled in: what the synth bundles."""
    return json.dumps(policy.model_dump(mode="json"), indent=2) + "\n"


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of the policy file, for editors (committed as policy.schema.json)."""
    schema = Policy.model_json_schema()
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "s3-batch-approvals policy",
        "description": "Which S3 Batch Operations jobs need what sign-off. Rules are tried in order; the "
        "first match wins; the last rule, with an empty match, is the default.",
        **schema,
    }


def _parse_yaml(text: str) -> object:
    import yaml  # only people's files are YAML: the functions read the bundled JSON

    class UniqueKeyLoader(yaml.SafeLoader):
        """A SafeLoader that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in keys:
                raise PolicyError([f"line {key_node.start_mark.line + 1}: {key!r} is given twice in the same mapping"])
            keys.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise PolicyError([f"{where}not valid YAML: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([f"not valid YAML: {exc}"]) from None


# -- error lines ---------------------------------------------------------------------------------


def _problems(exc: ValidationError, data: Mapping[str, Any]) -> list[str]:
    rules = data.get("rules")
    problems: list[str] = []
    for error in exc.errors():
        loc = list(error["loc"])
        prefix = ""
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            raw = rules[loc[1]] if isinstance(rules, list) and loc[1] < len(rules) else None
            name = raw.get("name") if isinstance(raw, Mapping) else None
            prefix = rule_label(name, loc[1] + 1) + ": "
            loc = loc[2:]
        elif len(loc) >= 3 and loc[:2] == ["identities", "map"] and isinstance(loc[2], int):
            prefix = identity_label(loc[2]) + ": "
            loc = loc[3:]
        elif loc == ["identities"] and error["type"] == "value_error":
            loc = []  # the mapping's own check: its lines name the entries already
        field = _field_path(loc)
        message = _message(error, error["loc"])
        if not field:  # a whole-model check: its lines name the rule and field already
            problems.extend(prefix + line for line in message.splitlines())
        else:
            problems.append(f"{prefix}{field}: {message}")
    return problems


def _field_path(loc: list[str | int]) -> str:
    """``match.object_count.min``; list positions are left out (messages quote the value itself)."""
    if "[key]" in loc:  # a mapping's key is wrong: (..., "tags", <key>, "[key]")
        at = loc.index("[key]")
        return f"{_field_path(loc[: at - 1])} key {loc[at - 1]!r}"
    return ".".join(part for part in loc if isinstance(part, str))


def _message(error: Any, loc: tuple[str | int, ...]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    if kind == "literal_error":
        expected = str(ctx["expected"])
        if " or " not in expected:
            return f"must be {expected}, not {error['input']!r}"
        return f"{error['input']!r} is not one of: {expected.replace(' or ', ', ')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind in ("too_short", "string_too_short"):
        if len(loc) >= 2 and loc[-2] == "match":
            return f"must not be empty (leave {loc[-1]} out to match any)"
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters (it has {len(error['input'])})"
    if kind in ("string_type", "int_type", "bool_type"):
        want = {"string_type": "text", "int_type": "a whole number", "bool_type": "true or false"}[kind]
        return f"must be {want}, not {error['input']!r}" + (
            "; quote values such as 'yes', 'on' or '0123' that YAML would read otherwise" if want == "text" else ""
        )
    if kind in ("list_type", "tuple_type"):
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping of keys to values"
    return str(error["msg"])


def _unknown_field(loc: tuple[str | int, ...]) -> str:
    import difflib  # only on an error: not worth its import at every cold start

    model = _model_at(loc[:-1])
    if model is None:
        return "unknown field"
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"the fields here are {', '.join(known)}"
    return f"unknown field; {hint}"


def _model_at(path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model a location inside the policy points into, following field annotations."""
    model: type[BaseModel] | None = Policy
    for part in path:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _model_in(model.model_fields[part].annotation)
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, list, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
