"""The spoke stack: the forwarding rule, its target and dead-letter queue, the role the hub assumes, the settings,
and one env-agnostic template (StackSets) that cdk-nag and cfn-lint find clean."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.config import ManualArgs

import app as cdk_app
from infra import nag
from infra.constants import (
    DEFAULT_SPOKE_ROLE_PREFIX,
    DEFAULT_SPOKE_STACK_NAME,
    FORWARDED_EVENT_PATTERN,
    OUTPUT_FORWARDING_RULE_ARN,
    OUTPUT_SPOKE_ROLE_ARN,
    hub_role_arns,
    spoke_permissions,
    spoke_trust_policy,
)
from infra.settings import InfraSettingsError, SpokeSettings, cdk_json_context
from infra.spoke import SpokeStack, build_spoke_app
from infra.spoke import main as spoke_main
from tests.infra.test_stack import CFN_LINT_IGNORED

HUB_BUS_ARN = "arn:aws:events:eu-west-1:123456789012:event-bus/S3BatchApprovals-jobs"
MINIMAL: dict[str, Any] = {"hubEventBusArn": HUB_BUS_ARN}
# Every optional setting, the other way from its default.
FULL: dict[str, Any] = {
    "hubEventBusArn": "arn:aws:events:us-east-1:111122223333:event-bus/Approvals-jobs",
    "hubRoleNames": ["Approvals-notifier-us-east-1", "Approvals-decider-us-east-1", "BreakGlass"],
    "organizationId": "o-a1b2c3d4e5",
    "spokeRolePrefix": "approvals-spoke",
    "requesterLookup": False,
    "jobTags": True,
    "jobTagCondition": "approval-team=storage",
    "stackName": "ApprovalsSpoke",
}


@dataclass
class SpokeSynth:
    stack: SpokeStack
    json: dict[str, Any]
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.json["Resources"].items() if r["Type"] == resource_type}

    def logical_id(self, construct: Any) -> str:
        node = getattr(construct.node, "default_child", None) or construct
        return self.stack.get_logical_id(node)

    def resource(self, construct: Any) -> dict[str, Any]:
        resource: dict[str, Any] = self.json["Resources"][self.logical_id(construct)]
        return resource

    @property
    def role(self) -> dict[str, Any]:
        return self.resource(self.stack.role)

    @property
    def rule(self) -> dict[str, Any]:
        properties: dict[str, Any] = self.resource(self.stack.forward_rule)["Properties"]
        return properties


def synthesize_spoke(spoke: Mapping[str, Any] | str, outdir: Path) -> SpokeSynth:
    """The spoke with cdk.json's context (its feature flags) and ``spoke`` as the CLI's -c would give it."""
    text = spoke if isinstance(spoke, str) else json.dumps(spoke)
    app, stack = build_spoke_app({**cdk_json_context(), "spoke": text}, outdir=str(outdir))
    template = app.synth().get_stack_by_name(stack.stack_name).template
    return SpokeSynth(stack=stack, json=template, outdir=outdir)


@pytest.fixture(scope="module")
def minimal_spoke(tmp_path_factory: pytest.TempPathFactory) -> SpokeSynth:
    return synthesize_spoke(MINIMAL, tmp_path_factory.mktemp("spoke-minimal"))


@pytest.fixture(scope="module")
def full_spoke(tmp_path_factory: pytest.TempPathFactory) -> SpokeSynth:
    return synthesize_spoke(FULL, tmp_path_factory.mktemp("spoke-full"))


def resolve_sub(value: Any) -> Any:
    """A template value with each Fn::Sub replaced by its text (what the role's policy is written with)."""
    if isinstance(value, list):
        return [resolve_sub(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            assert isinstance(value["Fn::Sub"], str)
            return value["Fn::Sub"]
        return {key: resolve_sub(item) for key, item in value.items()}
    return value


# The forwarding rule.


@pytest.mark.parametrize("spoke_name", ["minimal_spoke", "full_spoke"])
def test_the_rule_forwards_exactly_the_hubs_pattern_from_the_default_bus(
    request: pytest.FixtureRequest, spoke_name: str
) -> None:
    # given
    spoke: SpokeSynth = request.getfixturevalue(spoke_name)

    # then
    assert spoke.rule["EventPattern"] == FORWARDED_EVENT_PATTERN
    assert spoke.rule["State"] == "ENABLED"
    assert "EventBusName" not in spoke.rule
    [target] = spoke.rule["Targets"]
    assert target["Arn"] == spoke.stack.settings.hub_event_bus_arn


def test_eventbridge_may_only_put_events_on_the_hubs_bus(minimal_spoke: SpokeSynth) -> None:
    # given
    [target] = minimal_spoke.rule["Targets"]
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = minimal_spoke.json["Resources"][role_id]["Properties"]

    # when
    statements = [
        statement
        for policy in minimal_spoke.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]

    # then
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role
    assert statements == [{"Action": "events:PutEvents", "Effect": "Allow", "Resource": HUB_BUS_ARN}]


def test_undelivered_events_are_retried_then_kept_14_days_in_an_alarmed_queue(minimal_spoke: SpokeSynth) -> None:
    # given
    [target] = minimal_spoke.rule["Targets"]
    queue_id = minimal_spoke.logical_id(minimal_spoke.stack.dead_letter_queue)
    [policy] = [
        p["Properties"]
        for p in minimal_spoke.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    statements = policy["PolicyDocument"]["Statement"]
    [alarm] = minimal_spoke.resources("AWS::CloudWatch::Alarm").values()

    # then
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 7200}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert minimal_spoke.json["Resources"][queue_id]["Properties"] == {
        "MessageRetentionPeriod": 14 * 24 * 3600,
        "SqsManagedSseEnabled": True,
    }
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    [allowed] = [s for s in statements if s["Effect"] == "Allow"]
    assert allowed["Principal"] == {"Service": "events.amazonaws.com"}
    assert allowed["Action"] == "sqs:SendMessage"
    rule_arn = {"Fn::GetAtt": [minimal_spoke.logical_id(minimal_spoke.stack.forward_rule), "Arn"]}
    assert allowed["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    alarm_properties = alarm["Properties"]
    assert alarm_properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm_properties["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    assert (alarm_properties["Threshold"], alarm_properties["ComparisonOperator"]) == (0, "GreaterThanThreshold")


# The role the hub assumes.


def test_the_role_is_trusted_by_exactly_the_hubs_function_roles(minimal_spoke: SpokeSynth) -> None:
    # then: the roles derived from the default hub stack name and the bus's region
    expected = spoke_trust_policy(
        "123456789012", hub_role_arns("123456789012", "S3BatchApprovals", "eu-west-1"), None, "aws"
    )
    assert minimal_spoke.role["Properties"]["AssumeRolePolicyDocument"] == expected
    assert expected["Statement"][0]["Condition"] == {
        "ArnEquals": {
            "aws:PrincipalArn": [
                "arn:aws:iam::123456789012:role/S3BatchApprovals-notifier-eu-west-1",
                "arn:aws:iam::123456789012:role/S3BatchApprovals-decider-eu-west-1",
            ]
        }
    }


def test_the_role_is_trusted_by_the_listed_hub_roles_inside_the_organisation(full_spoke: SpokeSynth) -> None:
    # then
    expected = spoke_trust_policy(
        "111122223333", [f"arn:aws:iam::111122223333:role/{name}" for name in FULL["hubRoleNames"]], "o-a1b2c3d4e5"
    )
    assert full_spoke.role["Properties"]["AssumeRolePolicyDocument"] == expected


@pytest.mark.parametrize(
    ("spoke_name", "expected"),
    [
        ("minimal_spoke", spoke_permissions()),
        (
            "full_spoke",
            spoke_permissions(requester_lookup=False, job_tags=True, job_tag_condition=("approval-team", "storage")),
        ),
    ],
)
def test_the_roles_only_policy_is_exactly_the_spoke_permissions(
    request: pytest.FixtureRequest, spoke_name: str, expected: dict[str, Any]
) -> None:
    # given
    spoke: SpokeSynth = request.getfixturevalue(spoke_name)
    role_id = spoke.logical_id(spoke.stack.role)
    properties = spoke.role["Properties"]

    # when
    [policy] = properties["Policies"]

    # then
    assert resolve_sub(policy["PolicyDocument"]) == expected
    assert "ManagedPolicyArns" not in properties
    attached = [
        p
        for p in [*spoke.resources("AWS::IAM::Policy").values(), *spoke.resources("AWS::IAM::ManagedPolicy").values()]
        if {"Ref": role_id} in p["Properties"].get("Roles", [])
    ]
    assert attached == []
    assert properties["MaxSessionDuration"] == 3600


def test_the_requester_lookup_and_job_tags_switch_their_statements(
    minimal_spoke: SpokeSynth, full_spoke: SpokeSynth
) -> None:
    # when
    def actions(spoke: SpokeSynth) -> set[str]:
        [policy] = spoke.role["Properties"]["Policies"]
        return {
            action
            for statement in policy["PolicyDocument"]["Statement"]
            for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        }

    # then
    assert actions(minimal_spoke) == {"s3:DescribeJob", "s3:UpdateJobStatus", "s3:ListJobs", "cloudtrail:LookupEvents"}
    assert actions(full_spoke) == {"s3:DescribeJob", "s3:GetJobTagging", "s3:UpdateJobStatus", "s3:ListJobs"}


@pytest.mark.parametrize(
    ("spoke_name", "prefix"), [("minimal_spoke", DEFAULT_SPOKE_ROLE_PREFIX), ("full_spoke", "approvals-spoke")]
)
def test_the_role_is_named_for_the_region_it_is_deployed_in(
    request: pytest.FixtureRequest, spoke_name: str, prefix: str
) -> None:
    # given
    spoke: SpokeSynth = request.getfixturevalue(spoke_name)

    # then
    assert spoke.role["Properties"]["RoleName"] == {"Fn::Join": ["", [f"{prefix}-", {"Ref": "AWS::Region"}]]}


def test_the_outputs_are_the_role_and_the_rule(minimal_spoke: SpokeSynth) -> None:
    # then
    outputs = minimal_spoke.json["Outputs"]
    assert set(outputs) == {OUTPUT_SPOKE_ROLE_ARN, OUTPUT_FORWARDING_RULE_ARN}
    assert outputs[OUTPUT_SPOKE_ROLE_ARN]["Value"] == {
        "Fn::GetAtt": [minimal_spoke.logical_id(minimal_spoke.stack.role), "Arn"]
    }
    assert outputs[OUTPUT_FORWARDING_RULE_ARN]["Value"] == {
        "Fn::GetAtt": [minimal_spoke.logical_id(minimal_spoke.stack.forward_rule), "Arn"]
    }


# One template for every account and region.


def test_the_template_is_the_same_everywhere_no_bootstrap_no_assets_no_functions(minimal_spoke: SpokeSynth) -> None:
    # then
    template = minimal_spoke.json
    assert minimal_spoke.stack.stack_name == DEFAULT_SPOKE_STACK_NAME
    assert "Parameters" not in template, "no BootstrapVersion parameter"
    assert "Rules" not in template
    assert "123456789012" not in json.dumps(template["Resources"]).replace(HUB_BUS_ARN, "").replace(
        ":iam::123456789012:", ""
    ), "the spoke's own account is never written in"
    assert {r["Type"] for r in template["Resources"].values()} == {
        "AWS::Events::Rule",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::CloudWatch::Alarm",
    }
    assert not list(minimal_spoke.outdir.glob("asset.*"))
    assert not (minimal_spoke.outdir / f"{DEFAULT_SPOKE_STACK_NAME}.assets.json").exists()


def _nag_report(outdir: Path) -> dict[str, Any]:
    report = json.loads((outdir / "validation-report.json").read_text())
    [nag_report] = [r for r in report["pluginReports"] if r["pluginName"] == nag.PACK]
    return dict(nag_report)


@pytest.mark.parametrize("spoke_name", ["minimal_spoke", "full_spoke"])
def test_cdk_nag_finds_nothing_unacknowledged_and_every_acknowledgment_has_a_reason(
    request: pytest.FixtureRequest, spoke_name: str
) -> None:
    # given
    spoke: SpokeSynth = request.getfixturevalue(spoke_name)
    report = _nag_report(spoke.outdir)

    # then
    assert report["conclusion"] == "success"
    assert report["violations"] == []
    assert {v["ruleName"].split("[")[0] for v in report["suppressedViolations"]} <= {
        "AwsSolutions-IAM5",
        "AwsSolutions-SQS3",
    }
    for violation in report["suppressedViolations"]:
        assert len(violation["reason"]) > 40, violation["ruleName"]
        assert violation["reason"].endswith("."), violation["ruleName"]


@pytest.mark.parametrize("spoke_name", ["minimal_spoke", "full_spoke"])
def test_cfn_lint_finds_nothing(request: pytest.FixtureRequest, spoke_name: str) -> None:
    # given
    spoke: SpokeSynth = request.getfixturevalue(spoke_name)

    # when
    matches = lint_file(
        spoke.outdir / spoke.stack.template_file,
        ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=["us-east-1", "eu-west-1", "ap-southeast-4"]),
    )

    # then
    assert [str(match) for match in matches] == []


# Settings.


def test_only_the_hubs_bus_arn_is_needed() -> None:
    # when
    settings = SpokeSettings.from_context({"spoke": MINIMAL}.get)

    # then
    assert settings is not None
    assert (settings.hub_account_id, settings.hub_region, settings.hub_partition) == (
        "123456789012",
        "eu-west-1",
        "aws",
    )
    assert settings.hub_role_names == ("S3BatchApprovals-notifier-eu-west-1", "S3BatchApprovals-decider-eu-west-1")
    assert (settings.requester_lookup, settings.job_tags, settings.job_tag) == (True, False, None)
    assert settings.stack_name == DEFAULT_SPOKE_STACK_NAME


def test_the_hub_role_names_follow_the_hub_stack_name_and_the_partition() -> None:
    # when
    settings = SpokeSettings.from_context(
        {
            "spoke": {
                "hubEventBusArn": "arn:aws-cn:events:cn-north-1:123456789012:event-bus/A-jobs",
                "hubStackName": "A",
            }
        }.get
    )

    # then
    assert settings is not None
    assert settings.hub_role_arns == hub_role_arns("123456789012", "A", "cn-north-1", "aws-cn")


def test_without_a_spoke_setting_there_is_no_spoke() -> None:
    # given
    context: dict[str, Any] = {"spoke": ""}

    # then
    assert SpokeSettings.from_context(context.get) is None
    assert SpokeSettings.from_context({"spoke": {}}.get) is None
    with pytest.raises(InfraSettingsError, match="context setting 'spoke' is missing"):
        build_spoke_app({})


@pytest.mark.parametrize(
    ("spoke", "expected"),
    [
        ({}, "context setting 'spoke': hubEventBusArn is missing; set it in cdk.json or pass -c spoke='{"),
        ({"hubEventBusArn": "S3BatchApprovals-jobs"}, "hubEventBusArn is invalid ('S3BatchApprovals-jobs'): must be"),
        ({"hubEventBusArn": "arn:aws:sqs:eu-west-1:123456789012:q"}, "must be the hub's event bus ARN"),
        ({**MINIMAL, "hubBusArn": "x"}, "unknown key 'hubBusArn' (keys: hubEventBusArn, "),
        ({**MINIMAL, "organizationId": "o-1"}, "organizationId is invalid ('o-1'): must be an AWS Organizations ID"),
        ({**MINIMAL, "spokeRolePrefix": "x" * 50}, "spokeRolePrefix is invalid"),
        ({**MINIMAL, "hubRoleNames": []}, "hubRoleNames is invalid ([]): must name at least one role"),
        ({**MINIMAL, "hubRoleNames": ["a role"]}, "not IAM role names: 'a role'"),
        ({**MINIMAL, "jobTagCondition": "no-value"}, "jobTagCondition is invalid ('no-value'): must look like"),
        ({**MINIMAL, "requesterLookup": "sometimes"}, "requesterLookup is invalid ('sometimes')"),
        ({**MINIMAL, "hubStackName": "A" * 41}, "hubStackName is invalid"),
        ('{"hubEventBusArn": ', "context setting 'spoke' is not valid JSON"),
        ('["arn"]', "context setting 'spoke' must be a JSON object"),
    ],
)
def test_a_bad_spoke_setting_is_refused_naming_what_is_wrong(spoke: Any, expected: str) -> None:
    # given
    text = spoke if isinstance(spoke, str) else json.dumps(spoke)

    # when
    with pytest.raises(InfraSettingsError) as raised:
        SpokeSettings.from_context({"spoke": text}.get)

    # then
    assert expected in str(raised.value)


# Entry points.


def test_make_spoke_template_writes_the_template_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # when
    code = spoke_main(["-c", f"spoke={json.dumps(MINIMAL)}", "--outdir", str(tmp_path)])

    # then
    assert code == 0
    written = tmp_path / f"{DEFAULT_SPOKE_STACK_NAME}.template.json"
    assert str(written) in capsys.readouterr().out
    assert json.loads(written.read_text())["Resources"]


def test_make_spoke_template_without_a_spoke_setting_says_what_to_pass(capsys: pytest.CaptureFixture[str]) -> None:
    # when
    code = spoke_main([])

    # then
    assert code == 2
    assert "error: context setting 'spoke' is missing" in capsys.readouterr().err


def test_app_py_adds_the_spoke_when_given_its_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path))

    # when
    code = cdk_app.main(["-c", "aws:cdk:bundling-stacks=[]", "-c", f"spoke={json.dumps(MINIMAL)}"])

    # then: the hub as always, and the spoke
    assert code == 0
    assert (tmp_path / "S3BatchApprovals.template.json").exists()
    assert (tmp_path / f"{DEFAULT_SPOKE_STACK_NAME}.template.json").exists()


def test_app_py_names_a_bad_spoke_setting_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    # when
    code = cdk_app.main(["-c", "aws:cdk:bundling-stacks=[]", "-c", 'spoke={"hubEventBusArn": "x"}'])

    # then
    assert code == 2
    assert "error: context setting 'spoke': hubEventBusArn is invalid ('x')" in capsys.readouterr().err


def test_spokes_as_cdk_stages_one_per_member_account_and_region(tmp_path: Path) -> None:
    # given: an organisation's own CDK app (or pipeline) with a stage per member account and region
    from aws_cdk import App, Environment

    from infra.spoke import SpokeStage

    app = App(context=cdk_json_context(), outdir=str(tmp_path))
    settings = SpokeSettings.from_context(lambda key: {"spoke": json.dumps(MINIMAL)}.get(key))
    assert settings is not None
    places = [("210987654321", "us-west-2"), ("345678901234", "eu-west-1")]
    stages = [
        SpokeStage(app, f"spoke-{account}-{region}", env=Environment(account=account, region=region), settings=settings)
        for account, region in places
    ]
    nag.add_checks(app)

    # when
    assembly = app.synth()

    # then: each stage's spoke is in its own account and region, with the same rule and role as the StackSet's
    for stage, (account, region) in zip(stages, places, strict=True):
        stack = assembly.get_nested_assembly(stage.artifact_id).get_stack_by_name(stage.spoke.stack_name)
        assert (stack.environment.account, stack.environment.region) == (account, region)
        template = stack.template
        role = template["Resources"][stage.spoke.get_logical_id(stage.spoke.role)]
        assert role["Properties"]["AssumeRolePolicyDocument"] == stage.spoke.trust_policy
        rule = template["Resources"][stage.spoke.get_logical_id(stage.spoke.forward_rule.node.default_child)]
        assert rule["Properties"]["EventPattern"] == FORWARDED_EVENT_PATTERN


def test_without_hub_stack_name_the_hub_roles_are_named_after_the_bus_name() -> None:
    # given: a hub deployed as "ApprovalsProd", so its bus is ApprovalsProd-jobs
    settings = SpokeSettings.from_context(
        {
            "spoke": json.dumps(
                {"hubEventBusArn": "arn:aws:events:eu-west-1:123456789012:event-bus/ApprovalsProd-jobs"}
            )
        }.get
    )

    # then: the spoke trusts that hub's roles, not the default stack's
    assert settings is not None
    assert settings.hub_role_names == ("ApprovalsProd-notifier-eu-west-1", "ApprovalsProd-decider-eu-west-1")
