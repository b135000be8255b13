"""Whole-stack checks: cdk-nag, cfn-lint and app.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs
from cfnlint.api import lint_file
from cfnlint.config import ManualArgs

import app as cdk_app
from infra import nag
from tests.infra.conftest import Synth

# CDK writes explicit DependsOn for dependencies a GetAtt already implies (for example a function on
# its role's default policy); cfn-lint flags those as W3005, which is noise for generated templates.
CFN_LINT_IGNORED = ["W3005"]


def _nag_report(synth: Synth) -> dict[str, Any]:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    [nag_report] = [r for r in report["pluginReports"] if r["pluginName"] == nag.PACK]
    return dict(nag_report)


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth", "members_synth", "organization_synth"])
def test_cdk_nag_finds_nothing_unacknowledged(request: pytest.FixtureRequest, synth_name: str) -> None:
    # given (the fixture's app.synth() would have raised on an unacknowledged error)
    report = _nag_report(request.getfixturevalue(synth_name))

    # then
    assert report["conclusion"] == "success"
    assert report["violations"] == []


def test_every_acknowledged_finding_carries_a_sentence_of_reason(default_synth: Synth) -> None:
    # given
    suppressed = _nag_report(default_synth)["suppressedViolations"]

    # then
    assert {v["ruleName"].split("[")[0] for v in suppressed} == {
        "AwsSolutions-IAM5",
        "AwsSolutions-APIG1",  # no access logs unless the account-level role is opted into (infra/slack_api.py)
        "AwsSolutions-L1",  # Python 3.13 by default, for the bytecode the bundle ships (infra/lambda_defaults.py)
        "AwsSolutions-SQS3",
        "AwsSolutions-APIG2",
        "AwsSolutions-APIG3",
        "AwsSolutions-APIG4",
        "AwsSolutions-APIG6",
        "AwsSolutions-COG4",
    }
    for violation in suppressed:
        assert len(violation["reason"]) > 40, violation["ruleName"]
        assert violation["reason"].endswith("."), violation["reason"]


def test_cdk_nag_is_live_and_stops_synth_on_a_finding(tmp_path: Path) -> None:
    # given a queue that allows plain HTTP, in a fresh app with the same checks
    app = App(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Careless"), "Queue")
    nag.add_checks(app)

    # when / then
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS4"):
        app.synth()


@pytest.mark.parametrize("synth_name", ["default_synth", "custom_synth", "members_synth", "organization_synth"])
def test_cfn_lint_finds_nothing(request: pytest.FixtureRequest, synth_name: str) -> None:
    # given
    synth: Synth = request.getfixturevalue(synth_name)
    template = synth.outdir / synth.stack.template_file

    # when
    matches = lint_file(template, ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=["us-east-1", "eu-west-1"]))

    # then
    assert [str(match) for match in matches] == []


def test_python_app_py_synthesizes_with_cdk_json_and_command_line_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path))

    # when
    code = cdk_app.main(["-c", "aws:cdk:bundling-stacks=[]", "-c", "stackName=FromCommandLine"])

    # then
    assert code == 0
    template = json.loads((tmp_path / "FromCommandLine.template.json").read_text())
    assert "SlackInteractivityUrl" in template["Outputs"]


def test_app_py_names_a_bad_setting_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    # when
    code = cdk_app.main(["-c", "slackChannelId=general"])

    # then
    assert code == 2
    error = capsys.readouterr().err
    assert "context setting 'slackChannelId' is invalid ('general')" in error
    assert "-c slackChannelId=C0123456789" in error


def test_app_py_rejects_a_context_flag_without_a_value() -> None:
    with pytest.raises(SystemExit, match="expects key=value"):
        cdk_app.overrides(["-c", "slackChannelId"])
