"""Reading job tags: only the notifier (which evaluates the approval policy) may call GetJobTagging, on job ARNs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Synth, as_list
from tests.infra.test_iam import JOB_ARN

TAG_CHANGES = {"s3:PutJobTagging", "s3:DeleteJobTagging"}


def _policies_granting(synth: Synth, action: str) -> list[dict[str, Any]]:
    return [
        policy
        for policy in synth.props("AWS::IAM::Policy")
        if any(action in as_list(s["Action"]) for s in policy["PolicyDocument"]["Statement"])
    ]


def _role_of(synth: Synth, function: Any) -> dict[str, str]:
    return {"Ref": synth.resource(function)["Properties"]["Role"]["Fn::GetAtt"][0]}


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_only_the_notifiers_role_may_read_job_tags(request: pytest.FixtureRequest, synth_name: str) -> None:
    # given
    synth: Synth = request.getfixturevalue(synth_name)
    stack = synth.stack

    # when
    policies = _policies_granting(synth, "s3:GetJobTagging")

    # then
    assert [policy["Roles"] for policy in policies] == [[_role_of(synth, stack.notifier.function)]]
    for function in (stack.slack_api.callback, stack.slack_api.decider, stack.audit.writer):
        assert "s3:GetJobTagging" not in synth.actions_of(function)


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_job_tags_are_readable_exactly_where_jobs_are_describable(
    request: pytest.FixtureRequest, synth_name: str
) -> None:
    # given
    synth: Synth = request.getfixturevalue(synth_name)
    statements = synth.role_statements(synth.stack.notifier.function)

    # when
    [tagging] = [s for s in statements if "s3:GetJobTagging" in as_list(s["Action"])]
    [describe] = [s for s in statements if "s3:DescribeJob" in as_list(s["Action"])]

    # then
    assert tagging["Effect"] == "Allow"
    assert tagging["Resource"] == JOB_ARN, "this account's job ARNs, never '*'"
    assert tagging["Resource"] == describe["Resource"]
    assert "Condition" not in tagging, "a job's tags must be readable whatever they are"
    # Minimised with what else the notifier may do on the same ARNs: UpdateJobStatus is there only because the
    # example policy has a rule that denies (test_iam.py), and then without a tag condition, as here.
    assert set(as_list(tagging["Action"])) <= {"s3:DescribeJob", "s3:GetJobTagging", "s3:UpdateJobStatus"}


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_no_role_may_change_job_tags(request: pytest.FixtureRequest, synth_name: str) -> None:
    # given
    synth: Synth = request.getfixturevalue(synth_name)

    # then
    for action in TAG_CHANGES:
        assert _policies_granting(synth, action) == [], action


def test_the_job_arn_wildcard_on_the_notifier_is_acknowledged_and_nothing_is_left_open(default_synth: Synth) -> None:
    # given
    report = json.loads((default_synth.outdir / "validation-report.json").read_text())
    [nag_report] = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    role_path = default_synth.stack.notifier.function.role.node.path  # type: ignore[union-attr]

    # when
    on_role = [
        v
        for v in nag_report["suppressedViolations"]
        if any(c["constructPath"].startswith(role_path + "/") for c in v["violatingConstructs"])
    ]

    # then
    assert nag_report["violations"] == []
    assert any(":job/*" in v["ruleName"] and "job IDs are created at run time" in v["reason"] for v in on_role)
