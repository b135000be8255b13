"""Shared synths for the infrastructure tests: each is built once per session (about 1 s each)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.settings import cdk_json_context
from infra.stack import ApprovalsStack, build_app

# Tests skip bundling (pip) except where they say otherwise: the CDK then stages lambdas/ as is.
SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}

# Every optional setting switched on, given as strings the way `-c key=value` passes them.
CUSTOM_SETTINGS: dict[str, Any] = {
    "slackChannelId": "C0123456789",
    "slackTeamId": "T0123ABCD, E0456EFGH",
    "decisionLeaseSeconds": "150",
    "jobTagCondition": "approval-team=storage",
    "auditLogKmsEncryption": "true",
    "alarmEmail": "oncall@example.com",
    "approverUserIds": "U0123ABCD, W0456EFGH",
    "approverGroupIds": "S0123ABCD",
    "lambdaArchitecture": "x86_64",
    "pythonRuntime": "3.13",
    "logRetentionDays": "90",
    "apiThrottleRateLimit": "5",
    "apiThrottleBurstLimit": "7",
    "largeJobThreshold": "5000",
    "stackName": "ApprovalsCustom",
    "createTrail": "true",
    "requesterLookup": "true",
    "apiGatewayCloudWatchRole": "true",
}


@dataclass
class Synth:
    """A synthesized stack plus small lookups over its CloudFormation template."""

    app: App
    stack: ApprovalsStack
    template: Template
    outdir: Path
    json: dict[str, Any]  # the template as read once from the cloud assembly

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.json["Resources"].items() if r["Type"] == resource_type}

    def props(self, resource_type: str) -> list[dict[str, Any]]:
        return [r.get("Properties", {}) for r in self.resources(resource_type).values()]

    def logical_id(self, construct: Any) -> str:
        """The logical ID of an L2 construct's default child (or of an L1)."""
        node = getattr(construct.node, "default_child", None) or construct
        return self.stack.get_logical_id(node)

    def resource(self, construct: Any) -> dict[str, Any]:
        resource: dict[str, Any] = self.json["Resources"][self.logical_id(construct)]
        return resource

    def function_props(self, handler: str) -> dict[str, Any]:
        matches = [p for p in self.props("AWS::Lambda::Function") if p.get("Handler") == handler]
        assert len(matches) == 1, f"expected one function with handler {handler}"
        return matches[0]

    def role_statements(self, function: Any) -> list[dict[str, Any]]:
        """Every statement of the policies attached to a function's role."""
        role_id = self.resource(function)["Properties"]["Role"]["Fn::GetAtt"][0]
        return [
            statement
            for policy in self.props("AWS::IAM::Policy")
            if {"Ref": role_id} in policy["Roles"]
            for statement in policy["PolicyDocument"]["Statement"]
        ]

    def actions_of(self, function: Any) -> set[str]:
        return {action for statement in self.role_statements(function) for action in as_list(statement["Action"])}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def synthesize(overrides: Mapping[str, Any], outdir: Path, *, bundle: bool = False) -> Synth:
    """Build with cdk.json's context plus ``overrides`` and synthesize; cdk-nag runs and raises on a finding."""
    context = {**cdk_json_context(), **({} if bundle else SKIP_BUNDLING), **overrides}
    app, stack = build_app(context, outdir=str(outdir))
    assembly = app.synth()
    template_json: dict[str, Any] = assembly.get_stack_by_name(stack.stack_name).template
    return Synth(app=app, stack=stack, template=Template.from_json(template_json), outdir=outdir, json=template_json)


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack as cdk.json configures it."""
    return synthesize({}, tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def custom_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with every optional setting on (CUSTOM_SETTINGS)."""
    return synthesize(CUSTOM_SETTINGS, tmp_path_factory.mktemp("cdk-custom"))


# The hub serving member accounts: one listed with two regions, one with none (the hub's own region), and the
# second also (hypothetically) the hub's own account; without an organisation, so each account is admitted.
MEMBER_ACCOUNTS: list[dict[str, Any]] = [
    {"id": "210987654321", "name": "analytics", "regions": ["us-west-2", "eu-west-1"]},
    {"id": "123456789012"},
]
MEMBERS_SETTINGS: dict[str, Any] = {"memberAccounts": MEMBER_ACCOUNTS, "spokeRolePrefix": "approvals-spoke"}
ORGANIZATION_ID = "o-a1b2c3d4e5"


@pytest.fixture(scope="session")
def members_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The hub with member accounts listed and no organisation (MEMBERS_SETTINGS)."""
    return synthesize(MEMBERS_SETTINGS, tmp_path_factory.mktemp("cdk-members"))


@pytest.fixture(scope="session")
def organization_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The hub admitting its organisation's accounts, with the same member accounts."""
    return synthesize({**MEMBERS_SETTINGS, "organizationId": ORGANIZATION_ID}, tmp_path_factory.mktemp("cdk-org"))
