"""Least privilege across the whole stack: wildcards only where AWS offers no resource scoping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.constants import REQUESTS_DECIDING_INDEX, REQUESTS_STATE_INDEX
from tests.infra.conftest import Synth, as_list, synthesize

# Actions AWS authorizes only on Resource "*".
RESOURCE_STAR_ACTIONS = {
    "s3:ListJobs",
    # The notifier's CloudTrail history lookup (requesterLookup).
    "cloudtrail:LookupEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    # Granted by the DynamoDB stream event source of the audit writer.
    "dynamodb:ListStreams",
}
JOB_ARN = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":s3:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}, ":job/*"],
    ]
}


def _statements(synth: Synth) -> list[dict[str, Any]]:
    return [s for policy in synth.props("AWS::IAM::Policy") for s in policy["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_no_statement_allows_every_action_or_a_service_wildcard(
    request: pytest.FixtureRequest, synth_name: str
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    for statement in _statements(synth):
        for action in as_list(statement["Action"]):
            assert action != "*"
            assert not action.endswith(":*"), action


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_resource_star_is_used_only_by_actions_that_take_no_resource(
    request: pytest.FixtureRequest, synth_name: str
) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    for statement in _statements(synth):
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= RESOURCE_STAR_ACTIONS, statement


def test_list_streams_is_granted_only_to_the_audit_writer(default_synth: Synth) -> None:
    stack = default_synth.stack
    assert "dynamodb:ListStreams" in default_synth.actions_of(stack.audit.writer)
    for function in (stack.notifier.function, stack.slack_api.callback, stack.slack_api.decider):
        assert "dynamodb:ListStreams" not in default_synth.actions_of(function)


def test_job_actions_are_scoped_to_this_accounts_job_arns(default_synth: Synth) -> None:
    # given
    job_statements = [
        s
        for s in _statements(default_synth)
        if {"s3:DescribeJob", "s3:UpdateJobStatus", "s3:GetJobTagging"} & set(as_list(s["Action"]))
    ]

    # then: the notifier's and the decider's (the notifier's may be one statement or two once minimised)
    assert job_statements
    for statement in job_statements:
        assert statement["Resource"] == JOB_ARN
        assert statement["Effect"] == "Allow"


FUNCTIONS = ("notifier", "callback", "decider", "audit writer")


def _may_update(synth: Synth) -> set[str]:
    stack = synth.stack
    functions = dict(
        zip(
            FUNCTIONS,
            (stack.notifier.function, stack.slack_api.callback, stack.slack_api.decider, stack.audit.writer),
            strict=True,
        )
    )
    return {name for name, fn in functions.items() if "s3:UpdateJobStatus" in synth.actions_of(fn)}


def test_only_the_decider_may_update_job_status_when_no_rule_decides_itself(tmp_path: Path) -> None:
    # given: a policy whose every rule needs a person, and whose expiry leaves the job Suspended
    synth = synthesize({"policyFile": _policy(tmp_path, "require_approval")}, tmp_path / "cdk")
    # then
    assert _may_update(synth) == {"decider"}
    [statement] = [
        s for s in synth.role_statements(synth.stack.slack_api.decider) if "s3:UpdateJobStatus" in s["Action"]
    ]
    assert "Condition" not in statement


def test_a_policy_rule_that_denies_or_approves_lets_the_notifier_update_job_status_too(default_synth: Synth) -> None:
    # given: the example policy denies LambdaInvoke on production buckets
    assert any(rule.action != "require_approval" for rule in default_synth.stack.settings.policy.rules)
    # then: the notifier carries that decision out itself, on job ARNs only
    assert _may_update(default_synth) == {"decider", "notifier"}
    statements = default_synth.role_statements(default_synth.stack.notifier.function)
    [update] = [s for s in statements if "s3:UpdateJobStatus" in as_list(s["Action"])]
    assert update["Resource"] == JOB_ARN


def _policy(tmp_path: Path, action: str, expiry: str = "leave") -> str:
    path = tmp_path / f"policy-{action}-{expiry}.yaml"
    match = "" if action == "require_approval" else "    match: {operations: [LambdaInvoke]}\n    reason: no.\n"
    path.write_text(
        f"version: 1\nrules:\n  - name: first\n{match}    action: {action}\n  - name: default\n"
        if match
        else f"version: 1\nrules:\n  - name: default\n    expiry: {{action: {expiry}}}\n"
    )
    return str(path)


def test_an_expiry_that_cancels_lets_the_notifier_update_job_status_on_job_arns_only(tmp_path: Path) -> None:
    # given: a policy whose every rule needs a person, and whose default expiry cancels (the default)
    synth = synthesize({"policyFile": _policy(tmp_path, "require_approval", expiry="cancel")}, tmp_path / "cdk")

    # then: the lifecycle sweep, in the notifier, cancels at the deadline itself
    assert _may_update(synth) == {"decider", "notifier"}
    [update] = [
        s for s in synth.role_statements(synth.stack.notifier.function) if "s3:UpdateJobStatus" in as_list(s["Action"])
    ]
    assert update["Resource"] == JOB_ARN


def test_the_job_tag_setting_limits_update_job_status_to_tagged_jobs(custom_synth: Synth) -> None:
    # given
    decider = custom_synth.stack.slack_api.decider
    notifier = custom_synth.stack.notifier.function
    [update] = [s for s in custom_synth.role_statements(decider) if s["Action"] == "s3:UpdateJobStatus"]
    for statement in custom_synth.role_statements(notifier):
        if "s3:UpdateJobStatus" in as_list(statement["Action"]):
            assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/approval-team": "storage"}}
    [describe] = [s for s in custom_synth.role_statements(decider) if s["Action"] == "s3:DescribeJob"]

    # then
    assert update["Condition"] == {"StringEquals": {"aws:ResourceTag/approval-team": "storage"}}
    assert update["Resource"] == JOB_ARN
    assert "Condition" not in describe, "reading a job stays possible, so the refusal can be explained"


def test_the_audit_writer_only_reads_the_stream_and_writes_its_log_and_dead_letters(default_synth: Synth) -> None:
    actions = default_synth.actions_of(default_synth.stack.audit.writer)
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:ListStreams",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }


def test_the_callback_may_read_the_secret_and_send_decisions_but_touch_no_table_or_job(default_synth: Synth) -> None:
    # given
    actions = default_synth.actions_of(default_synth.stack.slack_api.callback)
    # then
    assert not {a for a in actions if a.startswith(("dynamodb:", "s3:"))}
    assert {"secretsmanager:GetSecretValue", "sqs:SendMessage"} <= actions


def test_only_the_notifier_may_use_the_idempotency_table(default_synth: Synth) -> None:
    # given
    stack = default_synth.stack
    table_arn = default_synth.stack.resolve(stack.storage.idempotency_table.table_arn)
    # when
    users = {
        name
        for name, function in {
            "notifier": stack.notifier.function,
            "callback": stack.slack_api.callback,
            "decider": stack.slack_api.decider,
        }.items()
        if any(table_arn in as_list(s["Resource"]) for s in default_synth.role_statements(function))
    }
    # then
    assert users == {"notifier"}


def _table_grants(synth: Synth, function: Any) -> dict[str, set[str]]:
    """DynamoDB actions a function may call, by the resource they are granted on (as JSON text)."""
    grants: dict[str, set[str]] = {}
    for statement in synth.role_statements(function):
        actions = {a for a in as_list(statement["Action"]) if a.startswith("dynamodb:")}
        for resource in as_list(statement["Resource"]) if actions else []:
            grants.setdefault(json.dumps(resource, sort_keys=True), set()).update(actions)
    return grants


def _arn(synth: Synth, table: Any, attribute: str = "Arn") -> str:
    return json.dumps({"Fn::GetAtt": [synth.logical_id(table), attribute]}, sort_keys=True)


def _index_arn(synth: Synth, table: Any, index: str) -> str:
    return json.dumps(
        {"Fn::Join": ["", [{"Fn::GetAtt": [synth.logical_id(table), "Arn"]}, f"/index/{index}"]]}, sort_keys=True
    )


def test_the_notifier_gets_exactly_the_table_actions_its_adapters_call(default_synth: Synth) -> None:
    # given
    storage = default_synth.stack.storage

    # when
    grants = _table_grants(default_synth, default_synth.stack.notifier.function)

    # then
    items = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    assert grants == {
        _arn(default_synth, storage.requests_table): items,
        _index_arn(default_synth, storage.requests_table, REQUESTS_DECIDING_INDEX): {"dynamodb:Query"},
        _index_arn(default_synth, storage.requests_table, REQUESTS_STATE_INDEX): {"dynamodb:Query"},
        _arn(default_synth, storage.audit_table): {"dynamodb:PutItem"},
        _arn(default_synth, storage.idempotency_table): items,
    }


def test_the_decider_may_claim_and_record_decisions_insert_audit_records_and_read_the_state_index(
    default_synth: Synth,
) -> None:
    # given
    storage = default_synth.stack.storage

    # when
    grants = _table_grants(default_synth, default_synth.stack.slack_api.decider)

    # then
    assert grants == {
        _arn(default_synth, storage.requests_table): {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        # the Home tab and the slash command read the state index (open, decided, a creator's jobs)
        _index_arn(default_synth, storage.requests_table, REQUESTS_STATE_INDEX): {"dynamodb:Query"},
        _arn(default_synth, storage.audit_table): {"dynamodb:PutItem"},
    }


def test_the_audit_writer_reads_only_the_audit_tables_stream(default_synth: Synth) -> None:
    # given
    storage = default_synth.stack.storage

    # when
    grants = _table_grants(default_synth, default_synth.stack.audit.writer)

    # then
    assert grants == {
        json.dumps("*"): {"dynamodb:ListStreams"},
        _arn(default_synth, storage.audit_table, "StreamArn"): {
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        },
    }


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_no_policy_grants_scans_batch_writes_or_partiql(request: pytest.FixtureRequest, synth_name: str) -> None:
    synth: Synth = request.getfixturevalue(synth_name)
    actions = {action for statement in _statements(synth) for action in as_list(statement["Action"])}
    assert "dynamodb:Scan" not in actions
    assert not {a for a in actions if a.startswith(("dynamodb:BatchWrite", "dynamodb:PartiQL"))}


def test_the_only_action_any_policy_grants_on_the_audit_table_is_put_item(default_synth: Synth) -> None:
    # given
    audit_table = _arn(default_synth, default_synth.stack.storage.audit_table)

    # when
    granted = {
        action
        for statement in _statements(default_synth)
        if audit_table in {json.dumps(r, sort_keys=True) for r in as_list(statement["Resource"])}
        for action in as_list(statement["Action"])
    }

    # then
    assert granted == {"dynamodb:PutItem"}
    audit_id = default_synth.logical_id(default_synth.stack.storage.audit_table)
    assert not any(
        audit_id in json.dumps(s["Resource"]) and "*" in json.dumps(s["Resource"]) for s in _statements(default_synth)
    ), "no wildcard under the audit table (index/*, stream/*)"
