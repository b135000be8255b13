"""The snapStart setting: SnapStart on published versions behind a live alias, which every invoker names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match
from cfnlint.api import lint_file
from cfnlint.config import ManualArgs

from infra.constants import AUDIT_WRITER_HANDLER, CALLBACK_HANDLER, DECIDER_HANDLER, NOTIFIER_HANDLER
from infra.lambda_defaults import LIVE_ALIAS, SNAPSTART_NAMES
from infra.settings import SNAPSTART_FUNCTIONS
from tests.infra.conftest import Synth, synthesize
from tests.infra.test_stack import CFN_LINT_IGNORED

HANDLERS = [NOTIFIER_HANDLER, CALLBACK_HANDLER, DECIDER_HANDLER, AUDIT_WRITER_HANDLER]
# With a deployable configuration: the placeholder warnings (tests/infra/test_deploy_guard.py) stay out of the
# validation report this module reads.
SNAPSTART_ON = {
    "snapStart": "all",
    "slackChannelId": "C0123456789",
    "slackTeamId": "T0123ABCD",
    "approverUserIds": "U0123ABCD",
}


@pytest.fixture(scope="module")
def snap_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every function with SnapStart."""
    return synthesize(SNAPSTART_ON, tmp_path_factory.mktemp("cdk-snapstart"))


@pytest.fixture(scope="module")
def callback_only_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """SnapStart for the callback alone."""
    return synthesize({"snapStart": "callback"}, tmp_path_factory.mktemp("cdk-snapstart-callback"))


def refs(value: Any) -> set[str]:
    """Every logical ID a template value refers to (Ref or Fn::GetAtt, not pseudo parameters such as
    AWS::Region), however deeply it is nested."""
    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found |= set() if inner.startswith("AWS::") else {inner}
            elif key == "Fn::GetAtt" and isinstance(inner, list):
                found.add(inner[0])
            else:
                found |= refs(inner)
        return found
    if isinstance(value, list):
        return set().union(*(refs(item) for item in value)) if value else set()
    return set()


def function_id(synth: Synth, handler: str) -> str:
    [lid] = [
        lid for lid, r in synth.resources("AWS::Lambda::Function").items() if r["Properties"]["Handler"] == handler
    ]
    return lid


def alias_id(synth: Synth, handler: str) -> str:
    function = function_id(synth, handler)
    [lid] = [
        lid
        for lid, r in synth.resources("AWS::Lambda::Alias").items()
        if r["Properties"]["FunctionName"] == {"Ref": function}
    ]
    return lid


def mapping_reading(synth: Synth, source: Any) -> tuple[str, dict[str, Any]]:
    """The event source mapping whose EventSourceArn is ``source`` (a template value)."""
    [(lid, props)] = [
        (lid, r["Properties"])
        for lid, r in synth.resources("AWS::Lambda::EventSourceMapping").items()
        if r["Properties"]["EventSourceArn"] == source
    ]
    return lid, props


def test_every_function_the_setting_can_name_is_a_handler_of_the_stack() -> None:
    assert sorted(SNAPSTART_NAMES) == sorted(HANDLERS)
    assert sorted(SNAPSTART_NAMES.values()) == sorted(SNAPSTART_FUNCTIONS)


@pytest.mark.parametrize("handler", HANDLERS)
def test_with_snapstart_each_function_is_published_and_its_live_alias_follows_the_current_version(
    snap_synth: Synth, handler: str
) -> None:
    # given
    function = function_id(snap_synth, handler)
    versions = {
        lid: r for lid, r in snap_synth.resources("AWS::Lambda::Version").items() if refs(r["Properties"]) == {function}
    }
    alias = snap_synth.json["Resources"][alias_id(snap_synth, handler)]

    # then
    assert snap_synth.function_props(handler)["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    [(version_id, version)] = versions.items()
    assert version["Properties"] == {"FunctionName": {"Ref": function}}
    # a replaced version is deleted, and its snapshot with it: only the live one is billed
    assert version["DeletionPolicy"] == "Delete"
    assert alias["Properties"] == {
        "FunctionName": {"Ref": function},
        "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]},
        "Name": LIVE_ALIAS,
    }


def test_a_version_is_published_again_when_the_code_or_configuration_changes(snap_synth: Synth, tmp_path: Path) -> None:
    # given the same stack with another setting that reaches every function's environment
    changed = synthesize({**SNAPSTART_ON, "largeJobThreshold": "5000"}, tmp_path)

    # then the versions' logical IDs change, so CloudFormation publishes new ones
    assert set(changed.resources("AWS::Lambda::Version")).isdisjoint(snap_synth.resources("AWS::Lambda::Version"))
    # while the aliases stay the same resources, moved to the new versions
    assert set(changed.resources("AWS::Lambda::Alias")) == set(snap_synth.resources("AWS::Lambda::Alias"))


def test_the_slack_endpoint_invokes_the_callbacks_alias_and_may_invoke_only_it(snap_synth: Synth) -> None:
    # given
    alias = alias_id(snap_synth, CALLBACK_HANDLER)
    methods = snap_synth.props("AWS::ApiGateway::Method")
    permissions = [
        p for p in snap_synth.props("AWS::Lambda::Permission") if p["Principal"] == "apigateway.amazonaws.com"
    ]

    # then: interactions, events and commands, each through the alias
    assert len(methods) == 3
    for method in methods:
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert refs(method["Integration"]["Uri"]) == {alias}
    assert len(permissions) == 2 * len(methods)  # per route: the stage, and the console's test invocations
    assert [p["FunctionName"] for p in permissions] == [{"Ref": alias}] * len(permissions)


def test_the_decider_reads_the_decisions_queue_through_its_alias(snap_synth: Synth) -> None:
    # given
    queue = snap_synth.logical_id(snap_synth.stack.slack_api.decisions_queue)

    # when
    _, mapping = mapping_reading(snap_synth, {"Fn::GetAtt": [queue, "Arn"]})

    # then
    assert refs(mapping["FunctionName"]) == {alias_id(snap_synth, DECIDER_HANDLER)}
    assert mapping["FunctionName"]["Fn::Join"][1][-1] == f":{LIVE_ALIAS}"
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_the_audit_writer_reads_the_stream_through_its_alias_with_the_same_mapping(
    snap_synth: Synth, default_synth: Synth
) -> None:
    # given
    stream = {"Fn::GetAtt": [snap_synth.logical_id(snap_synth.stack.storage.audit_table), "StreamArn"]}

    # when
    with_snapstart, mapping = mapping_reading(snap_synth, stream)
    without_snapstart, _ = mapping_reading(default_synth, stream)

    # then the mapping is updated in place (keeping its stream position), not replaced
    assert refs(mapping["FunctionName"]) == {alias_id(snap_synth, AUDIT_WRITER_HANDLER)}
    assert with_snapstart == without_snapstart
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [snap_synth.logical_id(snap_synth.stack.audit.dead_letter_queue), "Arn"]
    }


def test_the_audit_writer_may_still_read_the_stream_and_park_failed_batches(snap_synth: Synth) -> None:
    # given
    actions = snap_synth.actions_of(snap_synth.stack.audit.writer)

    # then
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream"} <= actions
    assert "sqs:SendMessage" in actions


@pytest.mark.parametrize("name", ["CallbackErrors", "DeciderErrors", "AuditWriterErrors", "NotifierErrors"])
def test_the_error_alarms_watch_the_function_which_counts_its_aliases_invocations(snap_synth: Synth, name: str) -> None:
    # given (Lambda's metrics by FunctionName aggregate every version and alias of the function)
    [alarm] = [
        p for lid, r in snap_synth.resources("AWS::CloudWatch::Alarm").items() if name in lid for p in [r["Properties"]]
    ]

    # then
    assert [d["Name"] for d in alarm["Dimensions"]] == ["FunctionName"]
    assert refs(alarm["Dimensions"]) <= set(snap_synth.resources("AWS::Lambda::Function"))


def test_snapstart_can_be_given_to_one_function_alone(callback_only_synth: Synth) -> None:
    # given
    snapstarted = {p["Handler"] for p in callback_only_synth.props("AWS::Lambda::Function") if "SnapStart" in p}
    decider = function_id(callback_only_synth, DECIDER_HANDLER)
    queue = callback_only_synth.logical_id(callback_only_synth.stack.slack_api.decisions_queue)

    # when
    _, decider_mapping = mapping_reading(callback_only_synth, {"Fn::GetAtt": [queue, "Arn"]})

    # then
    assert snapstarted == {CALLBACK_HANDLER}
    assert len(callback_only_synth.resources("AWS::Lambda::Version")) == 1
    assert len(callback_only_synth.resources("AWS::Lambda::Alias")) == 1
    assert decider_mapping["FunctionName"] == {"Ref": decider}


def test_by_default_nothing_is_published_and_every_invoker_names_the_function(default_synth: Synth) -> None:
    # given
    functions = set(default_synth.resources("AWS::Lambda::Function"))
    methods = default_synth.props("AWS::ApiGateway::Method")

    # then
    assert default_synth.resources("AWS::Lambda::Version") == {}
    assert default_synth.resources("AWS::Lambda::Alias") == {}
    assert not [p for p in default_synth.props("AWS::Lambda::Function") if "SnapStart" in p]
    for method in methods:
        assert refs(method["Integration"]["Uri"]) == {function_id(default_synth, CALLBACK_HANDLER)}
    for mapping in default_synth.props("AWS::Lambda::EventSourceMapping"):
        assert refs(mapping["FunctionName"]) <= functions


def test_cfn_lint_finds_nothing_with_snapstart_on(snap_synth: Synth) -> None:
    # given
    template = snap_synth.outdir / snap_synth.stack.template_file

    # when
    matches = lint_file(template, ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=["us-east-1", "eu-west-1"]))

    # then
    assert [str(match) for match in matches] == []


def test_cfn_lint_would_flag_a_snapstart_function_that_is_never_published(snap_synth: Synth, tmp_path: Path) -> None:
    # given the template without the versions and the aliases (so nothing publishes the functions)
    template = json.loads(json.dumps(snap_synth.json))
    published = set(snap_synth.resources("AWS::Lambda::Version")) | set(snap_synth.resources("AWS::Lambda::Alias"))
    template["Resources"] = {
        lid: r for lid, r in template["Resources"].items() if lid not in published and not refs(r) & published
    }
    path = tmp_path / "unpublished.template.json"
    path.write_text(json.dumps(template))

    # when
    matches = lint_file(path, ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=["us-east-1"]))

    # then
    assert sum(match.rule.id == "W2530" for match in matches) == len(HANDLERS)


def test_cdk_nag_finds_nothing_unacknowledged_with_snapstart_on(snap_synth: Synth) -> None:
    # given (the fixture's app.synth() would have raised on an unacknowledged error)
    report = json.loads((snap_synth.outdir / "validation-report.json").read_text())

    # then
    assert all(r["conclusion"] == "success" for r in report["pluginReports"])
    assert [v for r in report["pluginReports"] for v in r["violations"]] == []


def test_cdk_says_nothing_about_unpublished_snapstart_functions(snap_synth: Synth) -> None:
    # CDK warns on each SnapStart function that only published versions are snapshotted; these are.
    warnings = Annotations.from_stack(snap_synth.stack).find_warning("*", Match.string_like_regexp("SnapStart"))
    assert warnings == []


def test_the_notifier_is_invoked_through_its_alias_from_the_queue_and_the_schedule(snap_synth: Synth) -> None:
    # given
    alias = alias_id(snap_synth, NOTIFIER_HANDLER)
    queue = snap_synth.logical_id(snap_synth.stack.notifier.job_events_queue)
    _, mapping = mapping_reading(snap_synth, {"Fn::GetAtt": [queue, "Arn"]})
    [config] = snap_synth.props("AWS::Lambda::EventInvokeConfig")
    schedule = snap_synth.resource(snap_synth.stack.notifier.reconcile_rule)["Properties"]

    # then
    assert mapping["FunctionName"]["Fn::Join"][1][-1] == f":{LIVE_ALIAS}"
    assert refs(config["Qualifier"]) == {alias}, "the schedule's retries and on-failure queue apply to the alias"
    assert refs(schedule["Targets"][0]["Arn"]) == {alias}
