"""Policy as code: the file's validation (every field), each matcher, rule order, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from approvals.domain.operations import TITLES
from approvals.domain.policy import (
    MANIFEST_BUCKET,
    REQUESTER_UNKNOWN,
    SOURCE_BUCKET,
    TARGET_BUCKET,
    JobFacts,
    evaluate,
)
from approvals.models.job import Job, JobRef
from approvals.models.policy import (
    OPERATIONS,
    Policy,
    PolicyError,
    dump_policy,
    load_policy,
    load_policy_file,
    policy_json_schema,
)
from approvals.policy import main
from tests.helpers import EVENTS, load_event

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policy.example.yaml"
SCHEMA = ROOT / "policy.schema.json"
DEFAULT_RULE = {"name": "default"}


def policy_of(*rules: dict[str, Any], default: dict[str, Any] | None = None) -> dict[str, Any]:
    """A policy with these rules followed by a default rule."""
    return {"version": 1, "rules": [*rules, default or DEFAULT_RULE]}


def problems_of(source: Any) -> list[str]:
    with pytest.raises(PolicyError) as raised:
        load_policy(source)
    return raised.value.problems


def facts(**changes: Any) -> JobFacts:
    base = JobFacts(
        account="111122223333",
        region="eu-west-1",
        operation="S3PutObjectCopy",
        manifest_bucket="acme-manifests",
        source_bucket=None,
        target_buckets=("acme-archive",),
        object_count=5000,
        tags={"environment": "prod-eu", "team": "data"},
        requester="arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0a1b2c/alice@example.com",
    )
    return replace(base, **changes)


def job_facts(sample: str, **kwargs: Any) -> JobFacts:
    job = Job.model_validate(load_event(sample)["Job"])
    return JobFacts.of(job, JobRef(account_id="111122223333", region="eu-west-1", job_id=job.job_id), **kwargs)


# -- the file's shape ----------------------------------------------------------------------------

RULE = "rule 'r' (#1)"
# (case, one rule's fields (named 'r', before the default rule), the problem line expected)
RULE_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown field", {"quorom": 2}, f"{RULE}: quorom: unknown field; did you mean 'quorum'?"),
    (
        "name not a slug",
        {"name": "Large Jobs"},
        "rule 'Large Jobs' (#1): name: 'Large Jobs' is not a rule name: up to 32 lowercase letters, digits and "
        "inner hyphens, like large-copies",
    ),
    (
        "name too long",
        {"name": "a" * 33},
        f"rule '{'a' * 33}' (#1): name: '{'a' * 33}' is not a rule name: up to 32 lowercase letters, digits and "
        "inner hyphens, like large-copies",
    ),
    (
        "name not text",
        {"name": 7},
        "rule #1: name: must be text, not 7; quote values such as 'yes', 'on' or '0123' that YAML would read otherwise",
    ),
    (
        "match unknown field",
        {"match": {"acounts": ["111122223333"]}},
        f"{RULE}: match.acounts: unknown field; did you mean 'accounts'?",
    ),
    ("match not a mapping", {"match": ["LambdaInvoke"]}, f"{RULE}: match: must be a mapping of keys to values"),
    (
        "account unquoted",
        {"match": {"accounts": [111122223333]}},
        f"{RULE}: match.accounts: 111122223333 is a number: write account IDs in quotes ('012345678901'); YAML reads "
        "an unquoted number as an integer, dropping leading zeros (and reading some as octal)",
    ),
    (
        "account not 12 digits",
        {"match": {"accounts": ["1234"]}},
        f"{RULE}: match.accounts: '1234' is not an AWS account ID (12 digits)",
    ),
    (
        "account in other digits",
        {"match": {"accounts": ["١١١١٢٢٢٢٣٣٣٣"]}},
        f"{RULE}: match.accounts: '١١١١٢٢٢٢٣٣٣٣' is not an AWS account ID (12 digits)",
    ),
    (
        "accounts empty",
        {"match": {"accounts": []}},
        f"{RULE}: match.accounts: must not be empty (leave accounts out to match any)",
    ),
    ("accounts not a list", {"match": {"accounts": "111122223333"}}, f"{RULE}: match.accounts: must be a list"),
    (
        "region",
        {"match": {"regions": ["EU-WEST-1"]}},
        f"{RULE}: match.regions: 'EU-WEST-1' is not an AWS region such as eu-west-1",
    ),
    (
        "operation",
        {"match": {"operations": ["CopyObject"]}},
        f"{RULE}: match.operations: 'CopyObject' is not one of: " + ", ".join(repr(name) for name in OPERATIONS),
    ),
    (
        "bucket glob",
        {"match": {"buckets": ["Acme-*"]}},
        f"{RULE}: match.buckets: 'Acme-*' is not a bucket name or glob (lowercase letters, digits, '.', '-' and * ? [ ] !)",
    ),
    (
        "object_count without bounds",
        {"match": {"object_count": {}}},
        f"{RULE}: match.object_count: set min, max or both",
    ),
    (
        "object_count min over max",
        {"match": {"object_count": {"min": 10, "max": 5}}},
        f"{RULE}: match.object_count: min (10) is more than max (5)",
    ),
    (
        "object_count negative",
        {"match": {"object_count": {"min": -1}}},
        f"{RULE}: match.object_count.min: must be at least 0",
    ),
    (
        "object_count not a number",
        {"match": {"object_count": {"max": "10"}}},
        f"{RULE}: match.object_count.max: must be a whole number, not '10'",
    ),
    (
        "object_count unknown bound",
        {"match": {"object_count": {"minimum": 1}}},
        f"{RULE}: match.object_count.minimum: unknown field; did you mean 'min'?",
    ),
    ("tags empty", {"match": {"tags": {}}}, f"{RULE}: match.tags: must not be empty (leave tags out to match any)"),
    (
        "tag value not text",
        {"match": {"tags": {"backup": True}}},
        f"{RULE}: match.tags.backup: must be text, not True; quote values such as 'yes', 'on' or '0123' that YAML would read otherwise",
    ),
    ("tag key empty", {"match": {"tags": {"": "x"}}}, f"{RULE}: match.tags key '': must not be empty"),
    (
        "requester not an ARN",
        {"match": {"requesters": ["alice"]}},
        f"{RULE}: match.requesters: 'alice' is not an IAM principal ARN or a glob of one (arn:aws:sts::*:assumed-role/…)",
    ),
    ("action", {"action": "auto"}, f"{RULE}: action: 'auto' is not one of: 'require_approval', 'deny', 'approve'"),
    (
        "deny without reason",
        {"action": "deny"},
        f"{RULE}: reason: required when action is deny (it becomes the cancelled job's status reason)",
    ),
    ("reason too long", {"reason": "x" * 201}, f"{RULE}: reason: must be at most 200 characters (it has 201)"),
    ("reason empty", {"reason": ""}, f"{RULE}: reason: must not be empty"),
    (
        "approvers empty",
        {"approvers": {}},
        f"{RULE}: approvers: name at least one user or group, or leave approvers out for the deployment's approvers",
    ),
    (
        "approvers unknown field",
        {"approvers": {"user": ["U0123ABCD"]}},
        f"{RULE}: approvers.user: unknown field; did you mean 'users'?",
    ),
    (
        "approver user",
        {"approvers": {"users": ["alice"]}},
        f"{RULE}: approvers.users: 'alice' is not a Slack user ID (U… or W…, such as U0123ABCD)",
    ),
    (
        "approver group",
        {"approvers": {"groups": ["U0123ABCD"]}},
        f"{RULE}: approvers.groups: 'U0123ABCD' is not a Slack user group ID (S…, such as S0123ABCD)",
    ),
    (
        "approver twice",
        {"approvers": {"users": ["U0123ABCD", "U0123ABCD"]}},
        f"{RULE}: approvers: U0123ABCD listed more than once in users",
    ),
    ("quorum zero", {"quorum": 0}, f"{RULE}: quorum: must be at least 1"),
    ("quorum over ten", {"quorum": 11}, f"{RULE}: quorum: must be at most 10"),
    ("quorum as text", {"quorum": "2"}, f"{RULE}: quorum: must be a whole number, not '2'"),
    (
        "quorum over named users",
        {"approvers": {"users": ["U0123ABCD", "U0456EFGH"]}, "quorum": 3},
        f"{RULE}: quorum: 3 approvals needed but approvers name only 2 users and no group",
    ),
    (
        "channel",
        {"channel": "#storage"},
        f"{RULE}: channel: '#storage' is not a Slack channel ID (C… or G…, such as C0123456789)",
    ),
    (
        "self-approval as text",
        {"allow_self_approval": "yes"},
        f"{RULE}: allow_self_approval: must be true or false, not 'yes'",
    ),
    (
        "wait negative",
        {"requester_wait": {"timeout_minutes": -1}},
        f"{RULE}: requester_wait.timeout_minutes: must be at least 0",
    ),
    (
        "wait past 30 days",
        {"requester_wait": {"timeout_minutes": 43201}},
        f"{RULE}: requester_wait.timeout_minutes: must be at most 43200",
    ),
    (
        "wait then",
        {"requester_wait": {"then": "deny"}},
        f"{RULE}: requester_wait.then: 'deny' is not one of: 'allow', 'hold'",
    ),
    (
        "wait unknown field",
        {"requester_wait": {"timeout": 5}},
        f"{RULE}: requester_wait.timeout: unknown field; did you mean 'timeout_minutes'?",
    ),
    (
        "later settings are not known yet",
        {"preview": {"rows": 10}},
        f"{RULE}: preview: unknown field; the fields here are name, match, action, reason, approvers, quorum, channel, allow_self_approval, requester_wait, reminders, expiry",
    ),
    (
        "a misspelt reminder setting",
        {"reminders": {"every_minutes": 30}},
        f"{RULE}: reminders.every_minutes: unknown field; did you mean 'first_after_minutes'?",
    ),
    (
        "an escalation that could never happen",
        {"reminders": {"max": 2, "escalate": {"after_reminders": 2, "groups": ["S0ONCALL01"]}}},
        f"{RULE}: reminders: escalate.after_reminders: 2 reminders come before the escalation but max allows only 2, so it would never happen",
    ),
    (
        "an escalation to nobody",
        {"reminders": {"escalate": {"after_reminders": 1}}},
        f"{RULE}: reminders.escalate: name users, groups or a channel to escalate to",
    ),
    (
        "an expiry past what S3 allows",
        {"expiry": {"after_hours": 800}},
        f"{RULE}: expiry.after_hours: must be at most 696",
    ),
    (
        "an unknown expiry action",
        {"expiry": {"action": "approve"}},
        f"{RULE}: expiry.action: 'approve' is not one of: 'cancel', 'leave'",
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [case[1:] for case in RULE_ERRORS], ids=[case[0] for case in RULE_ERRORS]
)
def test_each_field_error_names_the_rule_and_the_field(fields: dict[str, Any], expected: str) -> None:
    # given a rule that matches something, with one field wrong
    rule = {"name": "r", "match": {"operations": ["LambdaInvoke"]}, **fields}

    # when
    problems = problems_of(policy_of(rule))

    # then
    assert expected in problems, problems


# (case, the whole policy, the problem line expected)
POLICY_ERRORS: list[tuple[str, Any, str]] = [
    ("version missing", {"rules": [DEFAULT_RULE]}, "version: required"),
    ("version 2", {"version": 2, "rules": [DEFAULT_RULE]}, "version: must be 1, not 2"),
    ("rules missing", {"version": 1}, "rules: required"),
    ("rules empty", {"version": 1, "rules": []}, "rules: must not be empty"),
    ("rule not a mapping", {"version": 1, "rules": ["default"]}, "rule #1: must be a mapping of keys to values"),
    (
        "unknown top-level field",
        {"version": 1, "rules": [DEFAULT_RULE], "rule": []},
        "rule: unknown field; did you mean 'rules'?",
    ),
    ("not a mapping", [DEFAULT_RULE], "the policy must be a mapping with 'version' and 'rules' (it is not)"),
    (
        "duplicate name",
        policy_of({"name": "default", "match": {"regions": ["eu-west-1"]}}),
        "rule 'default' (#2): name: already used by rule #1",
    ),
    (
        "empty match before the last rule",
        policy_of({"name": "everything"}),
        "rule 'everything' (#1): match: empty, so it matches every job and no later rule could apply; only the last "
        "rule (the default) may have an empty match",
    ),
    (
        "last rule matches something",
        {"version": 1, "rules": [{"name": "eu", "match": {"regions": ["eu-west-1"]}}]},
        "rule 'eu' (#1): match: the last rule is the default and must have an empty match (match: {} or none), so "
        "that every job meets a rule",
    ),
    (
        "default approves",
        policy_of(default={"name": "default", "action": "approve"}),
        "rule 'default' (#1): action: the default rule may not approve by policy; approve only the jobs a rule's "
        "match names explicitly",
    ),
    (
        "YAML syntax",
        "version: 1\nrules: [\n",
        "line 3, column 1: not valid YAML: expected the node content, but found '<stream end>'",
    ),
    (
        "YAML key twice",
        "version: 1\nrules:\n  - name: default\n    quorum: 1\n    quorum: 2\n",
        "line 5: 'quorum' is given twice in the same mapping",
    ),
]


@pytest.mark.parametrize(
    ("source", "expected"), [case[1:] for case in POLICY_ERRORS], ids=[case[0] for case in POLICY_ERRORS]
)
def test_each_policy_error_is_one_line_naming_what_is_wrong(source: Any, expected: str) -> None:
    # when
    problems = problems_of(source)

    # then
    assert expected in problems, problems


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    # given
    text = """
version: 1
rules:
  - name: large-jobs
    match: {object_count: {min: 1000000}}
    quorum: 0
  - name: prod
    match: {acounts: ["111122223333"]}
  - name: default
"""
    # when
    problems = problems_of(text)

    # then
    assert problems == [
        "rule 'large-jobs' (#1): quorum: must be at least 1",
        "rule 'prod' (#2): match.acounts: unknown field; did you mean 'accounts'?",
    ]
    assert str(PolicyError(problems)) == "\n".join(problems)


def test_a_rule_takes_the_documented_defaults() -> None:
    # when
    policy = load_policy(policy_of())

    # then
    rule = policy.default
    assert (rule.action, rule.quorum, rule.allow_self_approval) == ("require_approval", 1, False)
    assert (rule.approvers, rule.channel, rule.reason) == (None, None, None)
    assert (rule.requester_wait.timeout_minutes, rule.requester_wait.then) == (60, "hold")
    assert rule.match.empty


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "deny", "reason": "forbidden"},
        {"action": "approve"},
        {"approvers": {"users": ["U0123ABCD", "W0456EFGH"]}, "quorum": 2},
        {"approvers": {"users": ["U0123ABCD"], "groups": ["S0123ABCD"]}, "quorum": 10},
        {"approvers": {"groups": ["S0123ABCD"]}, "quorum": 3, "channel": "C0123456789"},
        {"allow_self_approval": True, "requester_wait": {"timeout_minutes": 0, "then": "allow"}},
        {"match": {"operations": ["LambdaInvoke"], "object_count": {"max": 0}}},
    ],
    ids=["deny", "approve", "quorum of named users", "quorum with a group", "group only", "self-approval", "max 0"],
)
def test_valid_rules_load(rule: dict[str, Any]) -> None:
    # given
    rule = {"name": "r", "match": {"regions": ["eu-west-1"]}, **rule}

    # when
    policy = load_policy(policy_of(rule))

    # then
    assert policy.rules[0].name == "r"


def test_the_example_policy_is_valid_and_survives_the_bundle_as_json() -> None:
    # given
    policy = load_policy_file(EXAMPLE)

    # when the synth's JSON is read back, as a function does at cold start
    document = dump_policy(policy)
    again = load_policy(document)

    # then
    assert again == policy
    assert json.loads(document) == policy.model_dump(mode="json")
    assert [rule.action for rule in policy.rules].count("approve") == 1


def test_the_policy_reads_json_without_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    # given PyYAML cannot be imported
    monkeypatch.setitem(sys.modules, "yaml", None)

    # when
    policy = load_policy(json.dumps(policy_of()))

    # then
    assert policy.default.name == "default"


def test_a_deny_reason_with_the_longest_rule_name_fits_the_job_status_reason() -> None:
    # given the longest name and reason a rule may have
    rule = {"name": "a" * 32, "match": {"regions": ["eu-west-1"]}, "action": "deny", "reason": "x" * 200}
    policy = load_policy(policy_of(rule))

    # when
    reason = f"Cancelled by policy {policy.rules[0].name}: {policy.rules[0].reason}"

    # then StatusUpdateReason takes 1 to 256 characters
    assert len(reason) <= 256


def test_the_model_names_every_s3_batch_operation() -> None:
    assert set(OPERATIONS) == set(TITLES)


def test_the_committed_json_schema_is_the_models() -> None:
    # given
    committed = json.loads(SCHEMA.read_text())

    # then
    assert committed == policy_json_schema(), (
        "policy.schema.json is stale: PYTHONPATH=lambdas .venv/bin/python -m approvals.policy schema > policy.schema.json"
    )


def test_the_example_validates_against_the_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    yaml = pytest.importorskip("yaml")
    jsonschema.validate(yaml.safe_load(EXAMPLE.read_text()), json.loads(SCHEMA.read_text()))


# -- what a job is -------------------------------------------------------------------------------


def test_the_facts_of_a_copy_name_its_source_and_target_buckets() -> None:
    # when
    copy = job_facts("describe_job_copy", tags={"env": "prod"}, requester="arn:aws:iam::111122223333:user/alice")

    # then
    assert copy.operation == "S3PutObjectCopy"
    assert copy.buckets == [(SOURCE_BUCKET, "acme-logs"), (TARGET_BUCKET, "acme-log-archive")]
    assert copy.object_count == 2_500_000
    assert (copy.account, copy.region) == ("111122223333", "eu-west-1")
    assert dict(copy.tags) == {"env": "prod"}
    assert copy.requester == "arn:aws:iam::111122223333:user/alice"


def test_the_facts_of_a_listed_manifest_name_the_manifest_bucket() -> None:
    # when
    invoke = job_facts("describe_job_lambda_invoke")

    # then
    assert invoke.operation == "LambdaInvoke"
    assert invoke.buckets == [(MANIFEST_BUCKET, "acme-batch-manifests")]
    assert (invoke.requester, dict(invoke.tags)) == (None, {})


def test_the_facts_of_a_bare_job_are_empty_not_an_error() -> None:
    # given
    job = Job.model_validate({"JobId": "abcde", "Status": "Suspended", "Manifest": {"Location": {"ObjectArn": 7}}})

    # when
    bare = JobFacts.of(job, JobRef(account_id="111122223333", region="eu-west-1", job_id="abcde"))

    # then
    assert (bare.operation, bare.buckets, bare.object_count) == ("Unknown", [], None)


# -- matching ------------------------------------------------------------------------------------

ARN = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0a1b2c/alice@example.com"
# (case, the rule's match, changes to the job's facts, whether the rule applies, the reason given)
MATCHERS: list[tuple[str, dict[str, Any], dict[str, Any], bool, str]] = [
    (
        "account listed",
        {"accounts": ["444455556666", "111122223333"]},
        {},
        True,
        "account 111122223333 is one of accounts",
    ),
    (
        "account not listed",
        {"accounts": ["444455556666"]},
        {},
        False,
        "account 111122223333 is not one of accounts (444455556666)",
    ),
    ("region listed", {"regions": ["eu-west-1"]}, {}, True, "region eu-west-1 is one of regions"),
    ("region not listed", {"regions": ["us-east-1"]}, {}, False, "region eu-west-1 is not one of regions (us-east-1)"),
    (
        "operation listed",
        {"operations": ["S3PutObjectCopy"]},
        {},
        True,
        "operation S3PutObjectCopy is one of operations",
    ),
    (
        "operation not listed",
        {"operations": ["LambdaInvoke"]},
        {},
        False,
        "operation S3PutObjectCopy is not one of operations (LambdaInvoke)",
    ),
    ("manifest bucket", {"buckets": ["acme-man*"]}, {}, True, "manifest bucket acme-manifests matches 'acme-man*'"),
    (
        "source bucket",
        {"buckets": ["acme-prod-?ata"]},
        {"manifest_bucket": None, "source_bucket": "acme-prod-data"},
        True,
        "generated-manifest source bucket acme-prod-data matches 'acme-prod-?ata'",
    ),
    ("target bucket", {"buckets": ["acme-archive"]}, {}, True, "target bucket acme-archive matches 'acme-archive'"),
    (
        "every matching bucket",
        {"buckets": ["acme-*"]},
        {},
        True,
        "manifest bucket acme-manifests matches 'acme-*'; target bucket acme-archive matches 'acme-*'",
    ),
    (
        "no bucket matches",
        {"buckets": ["prod-*"]},
        {},
        False,
        "no bucket matches buckets (prod-*): manifest bucket acme-manifests, target bucket acme-archive",
    ),
    (
        "globs are case-sensitive",
        {"buckets": ["acme-archive"]},
        {"manifest_bucket": None, "target_buckets": ("ACME-ARCHIVE",)},
        False,
        "no bucket matches buckets (acme-archive): target bucket ACME-ARCHIVE",
    ),
    (
        "job names no bucket",
        {"buckets": ["*"]},
        {"manifest_bucket": None, "target_buckets": ()},
        False,
        "the job names no bucket, so buckets (*) cannot match",
    ),
    ("count at the minimum", {"object_count": {"min": 5000}}, {}, True, "5,000 objects is at least 5,000"),
    ("count under the minimum", {"object_count": {"min": 5001}}, {}, False, "5,000 objects is not at least 5,001"),
    ("count at the maximum", {"object_count": {"max": 5000}}, {}, True, "5,000 objects is at most 5,000"),
    ("count over the maximum", {"object_count": {"max": 4999}}, {}, False, "5,000 objects is not at most 4,999"),
    (
        "count in a range",
        {"object_count": {"min": 5000, "max": 5000}},
        {},
        True,
        "5,000 objects is between 5,000 and 5,000",
    ),
    (
        "count unknown",
        {"object_count": {"max": 10}},
        {"object_count": None},
        False,
        "the object count is unknown (S3 counts the objects while it prepares the job); wanted at most 10",
    ),
    ("tag equal", {"tags": {"team": "data"}}, {}, True, "tag team=data"),
    (
        "tags by glob",
        {"tags": {"environment": "prod*", "team": "data"}},
        {},
        True,
        "tags environment=prod-eu (matches 'prod*'), team=data",
    ),
    ("tag missing", {"tags": {"owner": "*"}}, {}, False, "tag owner is not set"),
    ("tag with another value", {"tags": {"team": "web"}}, {}, False, "tag team=data does not match 'web'"),
    ("job without tags", {"tags": {"team": "data"}}, {"tags": {}}, False, "tag team is not set (the job has no tags)"),
    (
        "requester glob",
        {"requesters": ["arn:aws:sts::*:assumed-role/AWSReservedSSO_Admin_*/*"]},
        {},
        True,
        f"requester {ARN} matches 'arn:aws:sts::*:assumed-role/AWSReservedSSO_Admin_*/*'",
    ),
    (
        "requester other",
        {"requesters": ["arn:aws:iam::*:user/ci-*"]},
        {},
        False,
        f"requester {ARN} matches none of requesters (arn:aws:iam::*:user/ci-*)",
    ),
    ("requester unknown", {"requesters": ["arn:*"]}, {"requester": None}, False, REQUESTER_UNKNOWN),
    (
        "all must hold",
        {"regions": ["eu-west-1"], "operations": ["LambdaInvoke"]},
        {},
        False,
        "operation S3PutObjectCopy is not one of operations (LambdaInvoke)",
    ),
]


@pytest.mark.parametrize(
    ("match", "changes", "applies", "reason"), [case[1:] for case in MATCHERS], ids=[case[0] for case in MATCHERS]
)
def test_each_matcher_says_why_it_held_or_not(
    match: dict[str, Any], changes: dict[str, Any], applies: bool, reason: str
) -> None:
    # given
    policy = load_policy(policy_of({"name": "r", "match": match}))

    # when
    result = evaluate(policy, facts(**changes))

    # then
    if applies:
        assert (result.rule.name, result.number, result.skipped) == ("r", 1, ())
        assert reason in result.why
    else:
        assert result.rule.name == "default"
        assert result.skipped == (("r", reason),)


def test_every_matcher_of_a_rule_is_given_in_the_why() -> None:
    # given
    policy = load_policy(policy_of({"name": "r", "match": {"accounts": ["111122223333"], "tags": {"team": "data"}}}))

    # when
    result = evaluate(policy, facts())

    # then
    assert result.why == ("account 111122223333 is one of accounts", "tag team=data")


def test_the_first_matching_rule_wins_and_earlier_ones_say_why_not() -> None:
    # given
    policy = load_policy(
        policy_of(
            {"name": "lambda", "match": {"operations": ["LambdaInvoke"]}},
            {"name": "eu", "match": {"regions": ["eu-west-1"]}},
            {"name": "copies", "match": {"operations": ["S3PutObjectCopy"]}},
        )
    )

    # when
    result = evaluate(policy, facts())

    # then
    assert (result.rule.name, result.number, result.label) == ("eu", 2, "rule 'eu' (#2)")
    assert result.skipped == (("lambda", "operation S3PutObjectCopy is not one of operations (LambdaInvoke)"),)


def test_the_default_rule_applies_when_nothing_else_does() -> None:
    # given
    policy = load_policy(policy_of({"name": "lambda", "match": {"operations": ["LambdaInvoke"]}}))

    # when
    result = evaluate(policy, facts())

    # then
    assert (result.rule, result.number) == (policy.default, 2)
    assert result.why == ("the default rule: it matches every job that no earlier rule matched",)
    assert not result.provisional


def test_a_rule_skipped_for_an_unknown_requester_makes_the_match_provisional() -> None:
    # given
    policy = load_policy(
        policy_of(
            {"name": "ci", "match": {"requesters": ["arn:aws:iam::*:role/ci-*"]}, "action": "deny", "reason": "no CI"},
            {"name": "lambda", "match": {"operations": ["LambdaInvoke"], "requesters": ["arn:*"]}},
        )
    )

    # when
    unknown = evaluate(policy, facts(requester=None))
    known = evaluate(policy, facts(requester="arn:aws:iam::111122223333:role/ci-deploy"))

    # then
    assert unknown.rule.name == "default"
    assert unknown.pending_requester == ("ci",)  # "lambda" failed on its operation first
    assert unknown.provisional
    assert unknown.why[-1] == "the requester is not known yet: 'ci' may apply instead once it is"
    assert (known.rule.name, known.provisional) == ("ci", False)


def test_the_example_policy_sends_each_sample_to_its_rule() -> None:
    # given
    policy = load_policy_file(EXAMPLE)

    # then
    assert evaluate(policy, job_facts("describe_job_lambda_invoke_production")).rule.action == "deny"
    assert evaluate(policy, job_facts("describe_job_copy")).rule.name == "large-copies"
    assert evaluate(policy, job_facts("describe_job_compute_checksum")).rule.action == "approve"
    assert evaluate(policy, job_facts("describe_job_lambda_invoke")).rule.name == "default"
    sandbox = replace(job_facts("describe_job_lambda_invoke"), account="444455556666")
    assert evaluate(policy, sandbox).rule.allow_self_approval is True


# -- the CLI -------------------------------------------------------------------------------------


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def write_policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def test_check_prints_one_line_for_a_valid_policy(capsys: pytest.CaptureFixture[str]) -> None:
    # when
    code, out, err = run(["check", str(EXAMPLE)], capsys)

    # then
    assert code == 0
    assert out == (
        f"{EXAMPLE}: valid, 5 rules, 1 deny, 1 approve; default 'default': 1 approval; "
        "identities: 2 mappings, email lookup on\n"
    )
    assert err == ""


def test_check_prints_each_problem_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    file = write_policy(
        tmp_path,
        "version: 1\nrules:\n  - name: big\n    match: {object_count: {min: 5}}\n    quorum: 0\n  - name: default\n",
    )

    # when
    code, out, err = run(["check", file], capsys)

    # then
    assert code == 2
    assert out == ""
    assert err == f"error: {file}: rule 'big' (#1): quorum: must be at least 1\n"


def test_check_of_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["check", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2
    assert "cannot read the policy: No such file or directory" in err


def test_explain_prints_the_rule_why_what_it_requires_and_what_was_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    # when
    code, out, _ = run(["explain", "--policy", str(EXAMPLE), str(EVENTS / "describe_job_copy.json")], capsys)

    # then
    assert code == 0
    assert out == (
        "Rule: rule 'large-copies' (#4) of 5\n"
        "Why:\n"
        "  - operation S3PutObjectCopy is one of operations\n"
        "  - generated-manifest source bucket acme-logs matches 'acme-*'; target bucket acme-log-archive matches 'acme-*'\n"
        "  - 2,500,000 objects is at least 1,000,000\n"
        "Requires:\n"
        "  action: require_approval\n"
        "  approvers: the deployment's approvers (approverUserIds, approverGroupIds)\n"
        "  quorum: 2 distinct approvers\n"
        "  self-approval: not allowed (the requester may only cancel)\n"
        "  channel: the deployment's channel (slackChannelId)\n"
        "  requester unknown: hold approval up to 120 minutes, then keep holding\n"
        "Skipped:\n"
        "  #1 'no-lambda-on-production': operation S3PutObjectCopy is not one of operations (LambdaInvoke)\n"
        "  #2 'sandbox-self-service': account 111122223333 is not one of accounts (444455556666)\n"
        "  #3 'checksums-by-policy': operation S3PutObjectCopy is not one of operations (S3ComputeObjectChecksum)\n"
    )


def test_explain_of_a_denied_job_shows_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    # when
    code, out, _ = run(
        ["explain", "--policy", str(EXAMPLE), str(EVENTS / "describe_job_lambda_invoke_production.json")], capsys
    )

    # then
    assert code == 0
    assert out.splitlines()[:5] == [
        "Rule: rule 'no-lambda-on-production' (#1) of 5",
        "Why:",
        "  - operation LambdaInvoke is one of operations",
        "  - generated-manifest source bucket acme-prod-customer-data matches 'acme-prod-*'",
        "Requires:",
    ]
    assert "  action: deny" in out
    assert "quorum" not in out
    assert "Skipped" not in out


def test_explain_takes_the_requester_account_region_and_tags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    file = write_policy(
        tmp_path,
        """version: 1
rules:
  - name: sso-in-us
    match:
      accounts: ["444455556666"]
      regions: [us-east-1]
      tags: {team: data}
      requesters: ["arn:aws:sts::*:assumed-role/AWSReservedSSO_*/*"]
    approvers: {users: [U0123ABCD, W0456EFGH]}
    quorum: 2
    channel: C0123456789
  - name: default
""",
    )
    job = str(EVENTS / "describe_job_tagging.json")
    requester = "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Data_0a1b/bob@example.com"
    where = ["--account", "444455556666", "--region", "us-east-1", "--tags", "team=data, env=dev"]

    # when
    code, out, _ = run(["explain", "--policy", file, job, "--requester", requester, *where], capsys)
    _, unknown, _ = run(["explain", "--policy", file, job, *where], capsys)

    # then
    assert code == 0
    assert out.startswith("Rule: rule 'sso-in-us' (#1) of 2\n")
    assert f"  - requester {requester} matches 'arn:aws:sts::*:assumed-role/AWSReservedSSO_*/*'\n" in out
    assert "  approvers: users U0123ABCD, W0456EFGH\n  quorum: 2 distinct approvers\n" in out
    assert "  channel: C0123456789\n" in out
    assert f"  #1 'sso-in-us': {REQUESTER_UNKNOWN}\n" in unknown
    assert "  - the requester is not known yet: 'sso-in-us' may apply instead once it is\n" in unknown


@pytest.mark.parametrize(("expect", "code"), [("large-copies", 0), ("default", 1)])
def test_explain_can_pin_the_expected_rule_for_ci(expect: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    # when
    result, _, err = run(
        ["explain", "--policy", str(EXAMPLE), str(EVENTS / "describe_job_copy.json"), "--expect", expect], capsys
    )

    # then
    assert result == code
    assert err == ("" if code == 0 else "expected rule 'default', but rule 'large-copies' (#4) applies\n")


@pytest.mark.parametrize(
    ("job", "extra", "message"),
    [
        ('{"Job": {"JobId": "abcde"}}', [], "not a DescribeJob response: Status: Field required"),
        ("not json", [], "not JSON"),
        ('{"JobId": "abcde", "Status": "Suspended"}', [], "pass --account and --region"),
        (
            '{"JobId": "abcde", "Status": "Suspended"}',
            ["--account", "1234", "--region", "eu-west-1"],
            "account ID must be 12 digits",
        ),
        (
            '{"JobId": "abcde", "Status": "Suspended"}',
            ["--account", "111122223333", "--region", "eu-west-1", "--tags", "team"],
            "--tags: 'team' is not key=value",
        ),
    ],
    ids=["not a job", "not json", "no account", "bad account", "bad tags"],
)
def test_explain_of_a_bad_job_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], job: str, extra: list[str], message: str
) -> None:
    # given
    path = tmp_path / "job.json"
    path.write_text(job)

    # when
    code, out, err = run(["explain", "--policy", str(EXAMPLE), str(path), *extra], capsys)

    # then
    assert (code, out) == (2, "")
    assert message in err


def test_the_module_runs_as_a_command() -> None:
    # when
    result = subprocess.run(
        [sys.executable, "-m", "approvals.policy", "check", str(EXAMPLE)],
        env={"PYTHONPATH": str(ROOT / "lambdas")},
        capture_output=True,
        text=True,
        check=False,
    )

    # then
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{EXAMPLE}: valid, 5 rules")


def test_the_schema_command_prints_the_models_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema"], capsys)
    assert code == 0
    assert json.loads(out) == policy_json_schema()
    assert Policy.model_json_schema()["required"] == ["version", "rules"]


# -- identities: who is who in Slack ---------------------------------------------------------------

USER_ARN = "arn:aws:iam::111122223333:user/deploy-bot"


def with_identities(identities: Any) -> dict[str, Any]:
    return {**policy_of(), "identities": identities}


def test_identities_default_to_email_lookup_and_no_mappings() -> None:
    policy = load_policy(policy_of())
    assert policy.identities.email_lookup is True
    assert policy.identities.map == []


def test_identities_load_in_order() -> None:
    # given
    entries = [{"principal": USER_ARN, "slack_user": "U0BOT"}, {"principal": "arn:aws:sts::*:*/x", "slack_user": "W0X"}]

    # when
    policy = load_policy(with_identities({"email_lookup": False, "map": entries}))

    # then
    assert policy.identities.email_lookup is False
    assert [(e.principal, e.slack_user) for e in policy.identities.map] == [
        (USER_ARN, "U0BOT"),
        ("arn:aws:sts::*:*/x", "W0X"),
    ]


@pytest.mark.parametrize(
    ("identities", "expected"),
    [
        ({"email_lookup": "yes"}, "identities.email_lookup: must be true or false, not 'yes'"),
        ({"emails": True}, "identities.emails: unknown field; the fields here are email_lookup, map"),
        ({"map": {"principal": USER_ARN}}, "identities.map: must be a list"),
        (
            {"map": [{"principal": USER_ARN, "slack_user": "U0A"}, {"principal": "deploy-bot", "slack_user": "U0B"}]},
            "identities.map[1]: principal: 'deploy-bot' is not an IAM principal ARN or a glob of one",
        ),
        (
            {"map": [{"principal": USER_ARN, "slack_user": "alice"}]},
            "identities.map[0]: slack_user: 'alice' is not a Slack user ID",
        ),
        ({"map": [{"principal": USER_ARN}]}, "identities.map[0]: slack_user: required"),
        (
            {"map": [{"principal": USER_ARN, "slack_user": "U0A", "user": "U0A"}]},
            "identities.map[0]: user: unknown field; the fields here are principal, slack_user",
        ),
        (
            {"map": [{"principal": "arn:aws:iam::*:user/*", "slack_user": "U0A"}, {"principal": USER_ARN,
             "slack_user": "U0B"}, {"principal": "arn:aws:iam::*:user/*", "slack_user": "U0C"}]},
            "identities.map[2]: principal: 'arn:aws:iam::*:user/*' is already mapped by identities.map[0], which is "
            "tried first, so this entry is never used",
        ),
        ("all", "identities: must be a mapping of keys to values"),
    ],
)  # fmt: skip
def test_each_identities_error_names_the_entry_and_the_field(identities: Any, expected: str) -> None:
    problems = problems_of(with_identities(identities))
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems[0]


def test_the_example_maps_its_principals_and_survives_the_bundle() -> None:
    policy = load_policy_file(EXAMPLE)
    assert [entry.slack_user for entry in policy.identities.map] == ["U0PLATFORM1", "U0DANA0001"]
    assert load_policy(dump_policy(policy)).identities == policy.identities


@pytest.mark.parametrize(
    ("requester", "expected"),
    [
        (
            "arn:aws:sts::111122223333:assumed-role/data-loader/i-0abc",
            "Requester: arn:aws:sts::111122223333:assumed-role/data-loader/i-0abc is Slack user U0DANA0001 "
            "(identities.map[1])",
        ),
        (
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/gina@example.com",
            "Requester: arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/gina@example.com "
            "is the Slack user with email gina@example.com (looked up when deployed)",
        ),
        (
            "arn:aws:iam::111122223333:user/someone",
            "Requester: arn:aws:iam::111122223333:user/someone maps to no Slack user (shown by ARN; nobody counts as "
            "the requester)",
        ),
    ],
)
def test_explain_says_who_the_requester_is_in_slack(
    requester: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # when
    code, out, _ = run(
        ["explain", "--policy", str(EXAMPLE), str(EVENTS / "describe_job_copy.json"), "--requester", requester], capsys
    )

    # then
    assert code == 0
    assert out.splitlines()[-1] == expected
