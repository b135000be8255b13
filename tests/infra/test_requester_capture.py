"""Requester capture: the CreateJob rule, the optional trail, the history lookup grant and their settings."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match
from cfnlint.api import lint_file
from cfnlint.config import ManualArgs
from hypothesis import given
from hypothesis import strategies as st

from infra.constants import (
    AUDIT_WRITER_HANDLER,
    CALLBACK_HANDLER,
    CREATE_JOB_CALL_PATTERN,
    DECIDER_HANDLER,
    ENV_REQUESTER_LOOKUP,
    JOB_EVENT_PATTERN,
    NOTIFIER_HANDLER,
    OUTPUT_REQUESTER_TRAIL_ARN,
    OUTPUT_REQUESTER_TRAIL_NEEDED,
)
from infra.settings import InfraSettings, InfraSettingsError, cdk_json_context
from infra.stack import TRAIL_NEEDED, build_app
from sandbox.router import make_event, matches
from tests.helpers import load_event
from tests.infra.conftest import Synth, as_list, synthesize
from tests.infra.test_stack import CFN_LINT_IGNORED

VALID: dict[str, Any] = {"slackChannelId": "C0123456789", "slackTeamId": "T0123456789"}
# The strings pydantic reads as booleans (in any letter case), as for every boolean context setting.
BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1", "0"}


@pytest.fixture(scope="module")
def lookup_off_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with the CloudTrail history lookup switched off (and no trail)."""
    return synthesize({"requesterLookup": "false"}, tmp_path_factory.mktemp("cdk-lookup-off"))


def _rule(synth: Synth, rule: object) -> dict[str, Any]:
    properties: dict[str, Any] = synth.resource(rule)["Properties"]
    return properties


def _event_pattern(synth: Synth) -> dict[str, Any]:
    """The CreateJob rule's pattern as deployed (read back from the template)."""
    pattern: dict[str, Any] = _rule(synth, synth.stack.notifier.create_job_calls_rule)["EventPattern"]
    return pattern


def _create_job_call(job_id: str = "c0ffee00-1234-4abc-8def-001122334455") -> dict[str, Any]:
    """A CreateJob management event, shaped after the documented CloudTrail record format."""
    return make_event(
        "aws.s3",
        "AWS API Call via CloudTrail",
        {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com",
                "accountId": "111122223333",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "arn": "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/"
                        "AWSReservedSSO_Admin_0123456789abcdef",
                    }
                },
            },
            "eventTime": "2025-03-14T09:30:01Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": "CreateJob",
            "awsRegion": "eu-west-1",
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "responseElements": {"jobId": job_id},
        },
        account="111122223333",
        region="eu-west-1",
        time=dt.datetime(2025, 3, 14, 9, 30, 5, tzinfo=dt.UTC),
    )


# The CreateJob rule -----------------------------------------------------------------------------------


def test_the_create_job_rule_matches_exactly_the_documented_management_event(default_synth: Synth) -> None:
    # then
    assert CREATE_JOB_CALL_PATTERN == {
        "source": ["aws.s3"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["s3.amazonaws.com"], "eventName": ["CreateJob"]},
    }
    default_synth.template.has_resource_properties(
        "AWS::Events::Rule",
        {"EventPattern": Match.object_equals(CREATE_JOB_CALL_PATTERN), "State": "ENABLED"},
    )
    rule = _rule(default_synth, default_synth.stack.notifier.create_job_calls_rule)
    assert rule["EventBusName"] == {"Ref": default_synth.logical_id(default_synth.stack.hub.bus)}, (
        "the rule listens on the hub's approvals bus, to which the default bus (where CloudTrail's events arrive) "
        "and every spoke's forward them"
    )


def test_a_create_job_call_reaches_the_notifier_exactly_as_a_job_event_does(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    [target] = _rule(default_synth, notifier.create_job_calls_rule)["Targets"]
    [job_event_target] = _rule(default_synth, notifier.job_events_rule)["Targets"]

    # then
    assert target == job_event_target
    assert target["Arn"] == {"Fn::GetAtt": [default_synth.logical_id(notifier.job_events_queue), "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 7200}
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [default_synth.logical_id(notifier.dead_letter_queue), "Arn"]}
    }


def test_the_create_job_rule_reaches_the_notifier_only_through_the_job_events_queue(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    rule_arn = {"Fn::GetAtt": [default_synth.logical_id(notifier.create_job_calls_rule), "Arn"]}
    queue_id = default_synth.logical_id(notifier.job_events_queue)

    # when
    permissions = [p for p in default_synth.props("AWS::Lambda::Permission") if p.get("SourceArn") == rule_arn]
    statements = [
        s
        for p in default_synth.props("AWS::SQS::QueuePolicy")
        if {"Ref": queue_id} in p["Queues"]
        for s in p["PolicyDocument"]["Statement"]
        if s.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn") == rule_arn
    ]

    # then: no direct invocation; it may send to the queue and nothing else
    assert permissions == []
    assert [(s["Effect"], s["Principal"], sorted(s["Action"])) for s in statements] == [
        ("Allow", {"Service": "events.amazonaws.com"}, ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"])
    ]


def test_the_deployed_pattern_matches_a_documented_create_job_call(default_synth: Synth) -> None:
    # given
    pattern = _event_pattern(default_synth)
    sample = load_event("eventbridge_create_job_api_call")

    # then
    for event in (_create_job_call(), sample):
        assert matches(pattern, event)
        assert not matches(JOB_EVENT_PATTERN, event), "the job-event rule does not deliver it twice"
    assert not matches(pattern, load_event("eventbridge_job_created"))


# Near misses for each matched field; the first of each is the CreateJob call's own value.
NEAR_MISSES: dict[tuple[str, ...], list[str]] = {
    ("source",): ["aws.s3", "aws.s3control", "aws.cloudtrail", "AWS.S3", "aws.s3 "],
    ("detail-type",): [
        "AWS API Call via CloudTrail",
        "AWS Service Event via CloudTrail",
        "AWS Console Sign In via CloudTrail",
        "aws api call via cloudtrail",
    ],
    ("detail", "eventSource"): [
        "s3.amazonaws.com",
        "s3control.amazonaws.com",
        "cloudtrail.amazonaws.com",
        "S3.amazonaws.com",
    ],
    ("detail", "eventName"): [
        "CreateJob",
        "JobCreated",
        "JobStatusChanged",
        "UpdateJobStatus",
        "DescribeJob",
        "createjob",
        "CreateJob2",
    ],
}


def _with(event: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    *parents, key = path
    target = event
    for parent in parents:
        target = target[parent]
    target[key] = value
    return event


def test_of_every_combination_of_near_misses_only_the_create_job_call_matches(default_synth: Synth) -> None:
    # given
    pattern = _event_pattern(default_synth)
    paths = list(NEAR_MISSES)

    # when
    matched = []
    for values in itertools.product(*NEAR_MISSES.values()):
        event = _create_job_call()
        for path, value in zip(paths, values, strict=True):
            _with(event, path, value)
        if matches(pattern, event):
            matched.append(values)
            assert not matches(JOB_EVENT_PATTERN, event), "no event reaches the notifier through both rules"

    # then
    assert matched == [tuple(values[0] for values in NEAR_MISSES.values())]


@given(
    path=st.sampled_from(list(NEAR_MISSES)),
    value=st.one_of(st.text(), st.integers(), st.none(), st.lists(st.text(), max_size=3)),
    extra=st.dictionaries(st.sampled_from(["readOnly", "errorCode", "eventCategory", "requestID"]), st.text()),
)
def test_changing_any_matched_field_of_a_create_job_call_stops_it_matching(
    default_synth: Synth, path: tuple[str, ...], value: Any, extra: dict[str, str]
) -> None:
    # given
    pattern = _event_pattern(default_synth)
    expected = NEAR_MISSES[path][0]
    event = _create_job_call()
    event["detail"].update(extra)

    # when
    still_matches = matches(pattern, _with(event, path, value))

    # then (an array field matches when one of its elements does, as in EventBridge)
    assert still_matches == (value == expected or (isinstance(value, list) and expected in value))


def test_the_dashboard_counts_create_job_calls(default_synth: Synth) -> None:
    # given
    [dashboard] = default_synth.props("AWS::CloudWatch::Dashboard")
    rule_id = default_synth.logical_id(default_synth.stack.notifier.create_job_calls_rule)

    # then
    assert rule_id in json.dumps(dashboard["DashboardBody"])
    assert "CreateJob calls" in json.dumps(dashboard["DashboardBody"])


# The optional trail -----------------------------------------------------------------------------------


def test_by_default_no_trail_is_created_and_an_output_says_one_is_needed(default_synth: Synth) -> None:
    # then
    default_synth.template.resource_count_is("AWS::CloudTrail::Trail", 0)
    default_synth.template.resource_count_is("AWS::S3::Bucket", 0)
    outputs = default_synth.json["Outputs"]
    assert OUTPUT_REQUESTER_TRAIL_ARN not in outputs
    assert outputs[OUTPUT_REQUESTER_TRAIL_NEEDED]["Value"] == TRAIL_NEEDED
    assert "trail" in TRAIL_NEEDED
    assert "requesterLookup" in TRAIL_NEEDED


def test_create_trail_records_this_regions_write_management_events_with_file_validation(
    custom_synth: Synth,
) -> None:
    # given
    requesters = custom_synth.stack.requesters
    assert requesters.trail is not None
    assert requesters.trail_bucket is not None
    [trail] = custom_synth.props("AWS::CloudTrail::Trail")

    # then
    assert trail == {
        "IsLogging": True,
        "IsMultiRegionTrail": False,
        "IncludeGlobalServiceEvents": False,
        "EnableLogFileValidation": True,
        "EventSelectors": [{"IncludeManagementEvents": True, "ReadWriteType": "WriteOnly"}],
        "S3BucketName": {"Ref": custom_synth.logical_id(requesters.trail_bucket)},
    }, "management events only: no data events, no advanced selectors, no Insights, no CloudWatch Logs"
    assert custom_synth.json["Outputs"][OUTPUT_REQUESTER_TRAIL_ARN]["Value"] == {
        "Fn::GetAtt": [custom_synth.logical_id(requesters.trail), "Arn"]
    }
    assert OUTPUT_REQUESTER_TRAIL_NEEDED not in custom_synth.json["Outputs"]


def test_the_trail_bucket_is_encrypted_private_versioned_expiring_old_versions_and_retained(
    custom_synth: Synth,
) -> None:
    # given
    bucket_construct = custom_synth.stack.requesters.trail_bucket
    bucket = custom_synth.resource(bucket_construct)
    properties = bucket["Properties"]

    # then
    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = properties["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["NoncurrentVersionExpiration"]) == ("Enabled", {"NoncurrentDays": 365})
    assert "ExpirationInDays" not in rule, "current log files are kept"
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_trail_bucket_refuses_plain_http_and_admits_only_cloudtrail_to_this_accounts_prefix(
    custom_synth: Synth,
) -> None:
    # given
    bucket_id = custom_synth.logical_id(custom_synth.stack.requesters.trail_bucket)
    [policy] = [p for p in custom_synth.props("AWS::S3::BucketPolicy") if p["Bucket"] == {"Ref": bucket_id}]
    statements = policy["PolicyDocument"]["Statement"]
    allowed = [s for s in statements if s["Effect"] == "Allow"]

    # then
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    assert {s["Principal"]["Service"] for s in allowed} == {"cloudtrail.amazonaws.com"}
    assert sorted(s["Action"] for s in allowed) == ["s3:GetBucketAcl", "s3:PutObject"]
    [put] = [s for s in allowed if s["Action"] == "s3:PutObject"]
    assert "/AWSLogs/" in json.dumps(put["Resource"])
    assert {"Ref": "AWS::AccountId"} in put["Resource"]["Fn::Join"][1]


def _violates_under(violation: dict[str, Any], path: str) -> bool:
    return any(c["constructPath"].startswith(path + "/") for c in violation["violatingConstructs"])


def test_the_trail_bucket_finding_is_acknowledged_with_a_reason_and_nothing_else_is(custom_synth: Synth) -> None:
    # given
    report = json.loads((custom_synth.outdir / "validation-report.json").read_text())
    [nag_report] = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    bucket_path = custom_synth.stack.requesters.trail_bucket.node.path  # type: ignore[union-attr]

    # when
    on_bucket = [v for v in nag_report["suppressedViolations"] if _violates_under(v, bucket_path)]

    # then
    assert nag_report["violations"] == []
    assert [v["ruleName"] for v in on_bucket] == ["AwsSolutions-S1"]
    assert "CloudTrail" in on_bucket[0]["reason"]


def test_cfn_lint_finds_nothing_with_the_lookup_off(lookup_off_synth: Synth) -> None:
    # when (the trail's template is linted with custom_synth in test_stack)
    template = lookup_off_synth.outdir / lookup_off_synth.stack.template_file
    found = lint_file(template, ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=["us-east-1", "eu-west-1"]))

    # then
    assert [str(match) for match in found] == []


# The history lookup -----------------------------------------------------------------------------------


def _policies_with(synth: Synth, action_prefix: str) -> list[dict[str, Any]]:
    return [
        policy
        for policy in synth.props("AWS::IAM::Policy")
        if any(
            action.startswith(action_prefix)
            for statement in policy["PolicyDocument"]["Statement"]
            for action in as_list(statement["Action"])
        )
    ]


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth"])
def test_only_the_notifiers_role_may_look_up_cloudtrail_events(request: pytest.FixtureRequest, synth_name: str) -> None:
    # given
    synth: Synth = request.getfixturevalue(synth_name)
    notifier = synth.stack.notifier.function
    notifier_role = synth.resource(notifier)["Properties"]["Role"]["Fn::GetAtt"][0]

    # when
    policies = _policies_with(synth, "cloudtrail:")
    [statement] = [s for s in synth.role_statements(notifier) if "cloudtrail:LookupEvents" in as_list(s["Action"])]

    # then
    assert [policy["Roles"] for policy in policies] == [[{"Ref": notifier_role}]]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == "*", "LookupEvents takes no resource"
    assert "Condition" not in statement
    cloudtrail_actions = {a for a in synth.actions_of(notifier) if a.startswith("cloudtrail:")}
    assert cloudtrail_actions == {"cloudtrail:LookupEvents"}, "reading the history, never changing a trail"


def test_with_the_lookup_off_no_role_may_call_cloudtrail(lookup_off_synth: Synth) -> None:
    # then
    assert _policies_with(lookup_off_synth, "cloudtrail:") == []
    assert "s3:ListJobs" in lookup_off_synth.actions_of(lookup_off_synth.stack.notifier.function)


def _resource_star_reason(synth: Synth) -> str:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    [nag_report] = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    role_path = synth.stack.notifier.function.role.node.path  # type: ignore[union-attr]
    [reason] = {
        v["reason"]
        for v in nag_report["suppressedViolations"]
        if v["ruleName"] == "AwsSolutions-IAM5[Resource::*]" and _violates_under(v, role_path)
    }
    return str(reason)


def test_the_resource_star_reason_names_lookup_events_only_when_it_is_granted(
    default_synth: Synth, lookup_off_synth: Synth
) -> None:
    # then
    assert "cloudtrail:LookupEvents" in _resource_star_reason(default_synth)
    assert "Service Authorization Reference" in _resource_star_reason(default_synth)
    assert "LookupEvents" not in _resource_star_reason(lookup_off_synth)
    assert "s3:ListJobs" in _resource_star_reason(lookup_off_synth)


def test_the_notifier_is_told_whether_to_look_requesters_up_and_no_other_function_is(
    default_synth: Synth, lookup_off_synth: Synth
) -> None:
    # when
    def variables(synth: Synth, handler: str) -> dict[str, Any]:
        environment: dict[str, Any] = synth.function_props(handler)["Environment"]["Variables"]
        return environment

    # then
    assert variables(default_synth, NOTIFIER_HANDLER)[ENV_REQUESTER_LOOKUP] == "cloudtrail"
    assert variables(lookup_off_synth, NOTIFIER_HANDLER)[ENV_REQUESTER_LOOKUP] == "off"
    for handler in (CALLBACK_HANDLER, DECIDER_HANDLER, AUDIT_WRITER_HANDLER):
        assert ENV_REQUESTER_LOOKUP not in variables(default_synth, handler), handler


def test_the_lookup_setting_does_not_create_a_trail_nor_remove_the_create_job_rule(lookup_off_synth: Synth) -> None:
    # then
    lookup_off_synth.template.resource_count_is("AWS::CloudTrail::Trail", 0)
    lookup_off_synth.template.has_resource_properties(
        "AWS::Events::Rule", {"EventPattern": Match.object_equals(CREATE_JOB_CALL_PATTERN)}
    )


# Settings ---------------------------------------------------------------------------------------------


def test_cdk_json_looks_requesters_up_and_creates_no_trail() -> None:
    # when
    context = cdk_json_context()
    settings = InfraSettings.from_context(context.get)

    # then
    assert (context["requesterLookup"], context["createTrail"]) == (True, False)
    assert (settings.requester_lookup, settings.create_trail) == (True, False)
    assert settings.requester_lookup_mode == "cloudtrail"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), ("True", True), ("off", False), ("1", True)],
)
@pytest.mark.parametrize("key", ["requesterLookup", "createTrail"])
def test_the_two_switches_take_booleans_as_json_or_as_command_line_strings(
    key: str, value: Any, expected: bool
) -> None:
    # when
    settings = InfraSettings.from_context({**VALID, key: value}.get)

    # then
    assert getattr(settings, "requester_lookup" if key == "requesterLookup" else "create_trail") is expected


def test_the_lookup_mode_follows_the_switch() -> None:
    assert InfraSettings.from_context({**VALID, "requesterLookup": "false"}.get).requester_lookup_mode == "off"
    assert InfraSettings.from_context({**VALID, "requesterLookup": "true"}.get).requester_lookup_mode == "cloudtrail"


@given(
    key=st.sampled_from(["requesterLookup", "createTrail"]),
    value=st.one_of(
        st.text(min_size=1).filter(lambda text: text.lower() not in BOOLEAN_WORDS),
        st.integers().filter(lambda number: number not in (0, 1)),
        st.lists(st.booleans(), max_size=2),
    ),
)
def test_a_non_boolean_switch_stops_the_synth_naming_itself(key: str, value: Any) -> None:
    # when
    with pytest.raises(InfraSettingsError) as raised:
        InfraSettings.from_context({**VALID, key: value}.get)

    # then
    message = str(raised.value)
    assert message.startswith(f"context setting '{key}' is invalid ({value!r})")
    assert f"-c {key}=" in message


def test_building_the_app_with_a_bad_switch_stops_before_any_construct(tmp_path: Path) -> None:
    # given
    context = {**cdk_json_context(), "createTrail": "sometimes"}

    # when / then
    with pytest.raises(InfraSettingsError, match="'createTrail' is invalid \\('sometimes'\\)"):
        build_app(context, outdir=str(tmp_path))
