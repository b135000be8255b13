"""The hub: its settings, the approvals bus and its policy, the rules on it, and what the functions need to act
in member accounts (named roles, AssumeRole on the spoke roles, the environment, the outputs)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Aws

from infra.constants import (
    CREATE_JOB_CALL_PATTERN,
    DEFAULT_SPOKE_ROLE_PREFIX,
    ENV_HUB_ACCOUNT_ID,
    ENV_MEMBER_ACCOUNTS,
    ENV_SPOKE_ROLE_PREFIX,
    FORWARDED_EVENT_PATTERN,
    HUB_FUNCTIONS_ACTING_IN_SPOKES,
    JOB_EVENT_PATTERN,
    OUTPUT_EVENT_BUS_ARN,
    OUTPUT_SPOKE_CONTEXT,
    hub_event_bus_name,
    hub_role_name,
)
from infra.settings import EXAMPLES, STACK_NAME_MAX, InfraSettings, InfraSettingsError, SpokeSettings
from tests.infra.conftest import MEMBER_ACCOUNTS, ORGANIZATION_ID, Synth, as_list

VALID: dict[str, Any] = {"slackChannelId": "C0123456789", "slackTeamId": "T0123456789"}
HUB_ACCOUNT, HUB_REGION = "123456789012", "eu-west-1"


def _settings(**context: Any) -> InfraSettings:
    return InfraSettings.from_context({**VALID, **context}.get)


def _error(**context: Any) -> str:
    with pytest.raises(InfraSettingsError) as raised:
        _settings(**context)
    return str(raised.value)


def render(value: Any, synth: Synth) -> Any:
    """A template value as CloudFormation would resolve it in HUB_ACCOUNT and HUB_REGION (Ref, GetAtt of the
    approvals bus, Fn::Join): enough for the values these tests read."""
    if isinstance(value, list):
        return [render(item, synth) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        pseudo = {"AWS::Region": HUB_REGION, "AWS::AccountId": HUB_ACCOUNT, "AWS::Partition": "aws"}
        return pseudo[value["Ref"]]
    if set(value) == {"Fn::GetAtt"}:
        assert value["Fn::GetAtt"] == [synth.logical_id(synth.stack.hub.bus), "Arn"]
        name = hub_event_bus_name(synth.stack.stack_name)
        return f"arn:aws:events:{HUB_REGION}:{HUB_ACCOUNT}:event-bus/{name}"
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part, synth) for part in parts)
    return {key: render(item, synth) for key, item in value.items()}


def _rule(synth: Synth, rule: object) -> dict[str, Any]:
    properties: dict[str, Any] = synth.resource(rule)["Properties"]
    return properties


def _bus_policies(synth: Synth) -> dict[str, dict[str, Any]]:
    return synth.resources("AWS::Events::EventBusPolicy")


def _assume_role_statements(synth: Synth, function: object) -> list[dict[str, Any]]:
    return [s for s in synth.role_statements(function) if "sts:AssumeRole" in as_list(s["Action"])]


def _functions(synth: Synth) -> list[dict[str, Any]]:
    return synth.props("AWS::Lambda::Function")


# Settings.


def test_cdk_json_serves_the_hubs_own_account_only_by_default() -> None:
    # when
    from infra.settings import cdk_json_context

    settings = InfraSettings.from_context(cdk_json_context().get)

    # then
    assert settings.member_accounts == ()
    assert settings.organization_id is None
    assert settings.spoke_role_prefix == DEFAULT_SPOKE_ROLE_PREFIX


def test_member_accounts_come_as_a_json_list_or_as_its_text_the_way_dash_c_passes_it() -> None:
    # when
    from_list = _settings(memberAccounts=MEMBER_ACCOUNTS)
    from_text = _settings(memberAccounts=json.dumps(MEMBER_ACCOUNTS))

    # then
    assert from_list == from_text
    assert [(m.id, m.name, m.regions) for m in from_list.member_accounts] == [
        ("210987654321", "analytics", ("us-west-2", "eu-west-1")),
        ("123456789012", None, None),
    ]
    assert json.loads(from_list.member_accounts_json) == MEMBER_ACCOUNTS


def test_every_new_setting_has_an_example_that_is_itself_valid() -> None:
    # when
    settings = _settings(
        organizationId=EXAMPLES["organizationId"],
        memberAccounts=EXAMPLES["memberAccounts"].strip("'"),
        spokeRolePrefix=EXAMPLES["spokeRolePrefix"],
    )

    # then
    assert settings.organization_id == EXAMPLES["organizationId"]
    assert [member.id for member in settings.member_accounts] == ["210987654321"]


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([{"id": 210987654321}], "entry 1: id must be an AWS account ID of 12 digits, quoted"),
        ([{"id": "21098765432"}], "entry 1: id must be an AWS account ID of 12 digits"),
        ([{"id": "210987654321"}, {"id": "210987654321"}], "account 210987654321 is listed twice"),
        ([{"id": "210987654321", "regions": ["us-west"]}], "account 210987654321: not region names: 'us-west'"),
        ([{"id": "210987654321", "regions": ["us-west-2", "us-west-2"]}], "a region is listed twice"),
        ([{"id": "210987654321", "regions": []}], "regions must be a non-empty list"),
        ([{"id": "210987654321", "region": ["us-west-2"]}], "entry 1: unknown key 'region'"),
        ([{"id": "210987654321", "name": ""}], "name must be 1 to 64 printable characters"),
        ({"id": "210987654321"}, "must be a JSON list"),
        ("[{'id': '210987654321'}]", "is not valid JSON"),
    ],
)
def test_a_bad_member_list_is_refused_naming_the_key_and_the_entry(members: Any, expected: str) -> None:
    # when
    message = _error(memberAccounts=members)

    # then
    assert message.startswith("context setting 'memberAccounts' is invalid (")
    assert expected in message
    assert '-c memberAccounts=\'[{"id": "210987654321"' in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("organizationId", "o-short", "must be an AWS Organizations ID"),
        ("organizationId", "r-a1b2c3d4e5", "must be an AWS Organizations ID"),
        ("spokeRolePrefix", "x" * 50, "must be 1 to 49 letters"),
        ("spokeRolePrefix", "spoke role", "must be 1 to 49 letters"),
    ],
)
def test_a_bad_organisation_or_role_prefix_is_refused_naming_the_key(key: str, value: str, expected: str) -> None:
    # when
    message = _error(**{key: value})

    # then
    assert message.startswith(f"context setting '{key}' is invalid ({value!r}): {expected}")
    assert f"-c {key}={EXAMPLES[key]}" in message


def test_a_spoke_role_name_that_cannot_fit_iam_is_refused() -> None:
    # when
    message = _error(spokeRolePrefix="p" * 49, memberAccounts=[{"id": "210987654321", "regions": ["ap-southeast-44"]}])

    # then
    assert "context setting 'memberAccounts' is invalid" in message
    assert "longer than the 64 characters IAM allows" in message


def test_a_stack_name_must_leave_room_for_the_named_roles_in_every_region() -> None:
    # given
    longest = "A" * STACK_NAME_MAX

    # when
    fits = _settings(stackName=longest)
    message = _error(stackName=longest + "B")

    # then: the notifier's role in the longest region name is exactly IAM's 64 characters
    assert len(hub_role_name(fits.stack_name, "notifier", "ap-southeast-4")) == 64
    assert message.startswith(f"context setting 'stackName' is invalid ('{longest}B'): must be at most 40 characters")
    assert "IAM allows 64" in message


def test_too_many_members_for_the_functions_environment_are_refused() -> None:
    # given
    members = [{"id": f"{n:012d}", "name": "x" * 60, "regions": ["us-east-1", "eu-west-1"]} for n in range(40)]

    # when
    message = _error(memberAccounts=members)

    # then
    assert "the functions' environment has room for" in message


# The approvals bus.


def test_the_approvals_bus_is_named_for_the_stack(default_synth: Synth) -> None:
    # then
    [bus] = default_synth.props("AWS::Events::EventBus")
    assert bus["Name"] == hub_event_bus_name("S3BatchApprovals") == "S3BatchApprovals-jobs"


def test_with_no_organisation_and_no_members_the_bus_admits_no_other_account(default_synth: Synth) -> None:
    # then
    assert _bus_policies(default_synth) == {}


def test_with_an_organisation_one_statement_admits_every_account_of_it(organization_synth: Synth) -> None:
    # given
    bus_arn = {"Fn::GetAtt": [organization_synth.logical_id(organization_synth.stack.hub.bus), "Arn"]}

    # when
    [policy] = _bus_policies(organization_synth).values()

    # then
    assert "Condition" not in policy
    properties = policy["Properties"]
    assert properties["EventBusName"] == {"Ref": organization_synth.logical_id(organization_synth.stack.hub.bus)}
    assert properties["Statement"] == {
        "Sid": properties["StatementId"],
        "Effect": "Allow",
        "Principal": "*",
        "Action": "events:PutEvents",
        "Resource": bus_arn,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION_ID}},
    }


def test_without_an_organisation_each_listed_account_but_the_hubs_own_is_admitted(members_synth: Synth) -> None:
    # given
    template = members_synth.json
    bus_arn = {"Fn::GetAtt": [members_synth.logical_id(members_synth.stack.hub.bus), "Arn"]}

    # when
    policies = _bus_policies(members_synth).values()

    # then: one statement per account, each left out by CloudFormation where the account is the hub's
    admitted = {}
    for policy in policies:
        statement = policy["Properties"]["Statement"]
        assert statement["Sid"] == policy["Properties"]["StatementId"]
        assert (statement["Effect"], statement["Action"], statement["Resource"]) == (
            "Allow",
            "events:PutEvents",
            bus_arn,
        )
        assert "Condition" not in statement
        account = render(statement["Principal"]["AWS"], members_synth).split(":")[4]
        admitted[account] = template["Conditions"][policy["Condition"]]
    assert admitted == {
        member["id"]: {"Fn::Not": [{"Fn::Equals": [member["id"], {"Ref": "AWS::AccountId"}]}]}
        for member in MEMBER_ACCOUNTS
    }


# The rules.


def test_both_rules_moved_to_the_approvals_bus_with_their_patterns_and_queue(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    bus = {"Ref": default_synth.logical_id(default_synth.stack.hub.bus)}

    for rule, pattern in (
        (notifier.job_events_rule, JOB_EVENT_PATTERN),
        (notifier.create_job_calls_rule, CREATE_JOB_CALL_PATTERN),
    ):
        # when
        properties = _rule(default_synth, rule)
        [target] = properties["Targets"]

        # then
        assert properties["EventBusName"] == bus
        assert properties["EventPattern"] == pattern
        assert target["Arn"] == {"Fn::GetAtt": [default_synth.logical_id(notifier.job_events_queue), "Arn"]}


def test_the_default_bus_forwards_the_accounts_own_events_to_the_approvals_bus(default_synth: Synth) -> None:
    # given
    stack = default_synth.stack
    bus_arn = {"Fn::GetAtt": [default_synth.logical_id(stack.hub.bus), "Arn"]}

    # when
    properties = _rule(default_synth, stack.forward_rule)
    [target] = properties["Targets"]

    # then: on the default bus, every event either rule on the approvals bus takes, retried, then dead-lettered
    assert "EventBusName" not in properties
    assert properties["EventPattern"] == FORWARDED_EVENT_PATTERN
    assert properties["State"] == "ENABLED"
    assert target["Arn"] == bus_arn
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 7200}
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [default_synth.logical_id(stack.notifier.dead_letter_queue), "Arn"]}
    }
    # and EventBridge's role may only put events on the approvals bus
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        s
        for policy in default_synth.props("AWS::IAM::Policy")
        if {"Ref": role_id} in policy["Roles"]
        for s in policy["PolicyDocument"]["Statement"]
    ]
    assert statements == [{"Action": "events:PutEvents", "Effect": "Allow", "Resource": bus_arn}]


def test_the_dashboard_counts_each_rule_on_its_own_bus(default_synth: Synth) -> None:
    # given: the dashboard's body, each Ref written as the logical ID it names
    [dashboard] = default_synth.props("AWS::CloudWatch::Dashboard")
    separator, parts = dashboard["DashboardBody"]["Fn::Join"]
    body = json.loads(separator.join(part if isinstance(part, str) else part.get("Ref", "?") for part in parts))
    stack = default_synth.stack

    # when
    [widget] = [w for w in body["widgets"] if w["properties"].get("title") == "Job events"]
    counted = [metric for metric in widget["properties"]["metrics"] if metric[1] == "TriggeredRules"]

    # then: the forwarding rule on the default bus, the two on the approvals bus (its metrics name the bus)
    bus = default_synth.logical_id(stack.hub.bus)
    assert ["AWS/Events", "TriggeredRules", "RuleName", default_synth.logical_id(stack.forward_rule)] in [
        metric[:4] for metric in counted
    ]
    for rule in (stack.notifier.job_events_rule, stack.notifier.create_job_calls_rule):
        assert ["AWS/Events", "TriggeredRules", "EventBusName", bus, "RuleName", default_synth.logical_id(rule)] in [
            metric[:6] for metric in counted
        ]


# The functions that act in member accounts.


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_the_notifier_and_decider_roles_are_named_for_stack_function_and_region(
    request: pytest.FixtureRequest, synth_name: str
) -> None:
    # given
    synth: Synth = request.getfixturevalue(synth_name)
    stack = synth.stack
    functions = {"notifier": stack.notifier.function, "decider": stack.slack_api.decider}

    # then
    assert set(functions) == set(HUB_FUNCTIONS_ACTING_IN_SPOKES)
    for name, function in functions.items():
        role = synth.json["Resources"][synth.resource(function)["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert role["Properties"]["RoleName"] == stack.resolve(hub_role_name(stack.stack_name, name, Aws.REGION))
        assert render(role["Properties"]["RoleName"], synth) == f"{stack.stack_name}-{name}-{HUB_REGION}"
    for function in (stack.slack_api.callback, stack.audit.writer):
        role = synth.json["Resources"][synth.resource(function)["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert "RoleName" not in role["Properties"]


def test_with_no_members_no_function_may_assume_any_role(default_synth: Synth) -> None:
    # then
    stack = default_synth.stack
    for function in (stack.notifier.function, stack.slack_api.decider, stack.slack_api.callback, stack.audit.writer):
        assert _assume_role_statements(default_synth, function) == []


def test_the_notifier_and_decider_may_assume_exactly_the_members_spoke_roles(members_synth: Synth) -> None:
    # given: the first member in its two regions, the second in the hub's own region (unknown at synth)
    expected = {
        "arn:aws:iam::210987654321:role/approvals-spoke-us-west-2",
        "arn:aws:iam::210987654321:role/approvals-spoke-eu-west-1",
        f"arn:aws:iam::123456789012:role/approvals-spoke-{HUB_REGION}",
    }
    stack = members_synth.stack

    for function in (stack.notifier.function, stack.slack_api.decider):
        # when
        [statement] = _assume_role_statements(members_synth, function)

        # then
        assert statement["Effect"] == "Allow"
        assert set(render(as_list(statement["Resource"]), members_synth)) == expected
        assert "Condition" not in statement
    for function in (stack.slack_api.callback, stack.audit.writer):
        assert _assume_role_statements(members_synth, function) == []
    assert "*" not in json.dumps([_assume_role_statements(members_synth, stack.notifier.function)])


def test_every_function_knows_the_hub_account_and_the_spoke_role_prefix(default_synth: Synth) -> None:
    # then
    for function in _functions(default_synth):
        variables = function["Environment"]["Variables"]
        assert variables[ENV_HUB_ACCOUNT_ID] == {"Ref": "AWS::AccountId"}
        assert variables[ENV_SPOKE_ROLE_PREFIX] == DEFAULT_SPOKE_ROLE_PREFIX
        assert ENV_MEMBER_ACCOUNTS not in variables


def test_every_function_knows_the_member_accounts_as_compact_json(members_synth: Synth) -> None:
    # then
    for function in _functions(members_synth):
        variables = function["Environment"]["Variables"]
        assert variables[ENV_MEMBER_ACCOUNTS] == json.dumps(MEMBER_ACCOUNTS, separators=(",", ":"))
        assert variables[ENV_SPOKE_ROLE_PREFIX] == "approvals-spoke"
        assert variables[ENV_HUB_ACCOUNT_ID] == {"Ref": "AWS::AccountId"}


# The outputs.


def test_the_bus_arn_is_an_output(default_synth: Synth) -> None:
    # then
    output = default_synth.json["Outputs"][OUTPUT_EVENT_BUS_ARN]
    assert output["Value"] == {"Fn::GetAtt": [default_synth.logical_id(default_synth.stack.hub.bus), "Arn"]}


@pytest.mark.parametrize(
    ("synth_name", "organization"), [("default_synth", None), ("organization_synth", ORGANIZATION_ID)]
)
def test_the_spoke_context_output_is_what_a_spoke_synth_takes(
    request: pytest.FixtureRequest, synth_name: str, organization: str | None
) -> None:
    # given
    synth: Synth = request.getfixturevalue(synth_name)
    stack = synth.stack

    # when the output, as deployed in HUB_ACCOUNT and HUB_REGION, is passed as -c spoke='…'
    text = render(synth.json["Outputs"][OUTPUT_SPOKE_CONTEXT]["Value"], synth)
    spoke = SpokeSettings.from_context({"spoke": text}.get)

    # then
    expected: dict[str, Any] = {
        "hubEventBusArn": f"arn:aws:events:{HUB_REGION}:{HUB_ACCOUNT}:event-bus/{stack.stack_name}-jobs",
        "hubRoleNames": [f"{stack.stack_name}-{fn}-{HUB_REGION}" for fn in HUB_FUNCTIONS_ACTING_IN_SPOKES],
        "spokeRolePrefix": stack.settings.spoke_role_prefix,
        "requesterLookup": stack.settings.requester_lookup,
        "jobTags": any(rule.match.tags for rule in stack.settings.policy.rules),
    }
    if organization:
        expected["organizationId"] = organization
    if stack.settings.job_tag_condition:
        expected["jobTagCondition"] = stack.settings.job_tag_condition
    assert json.loads(text) == expected
    assert spoke is not None
    assert spoke.hub_role_arns == [
        f"arn:aws:iam::{HUB_ACCOUNT}:role/{render(stack.resolve(hub_role_name(stack.stack_name, fn, Aws.REGION)), synth)}"
        for fn in HUB_FUNCTIONS_ACTING_IN_SPOKES
    ]
    assert spoke.organization_id == organization
