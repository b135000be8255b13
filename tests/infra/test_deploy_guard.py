"""Placeholders cannot be deployed by accident: synth warns of each (a CDK annotation the CLI shows), and
`make deploy` (infra/deploy_guard.py) refuses until the channel, the workspace and an approver are set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match

from infra.deploy_guard import main, problems
from infra.stack import PLACEHOLDER_WARNING
from tests.infra.conftest import Synth, synthesize

READY = ["-c", "slackChannelId=C0123456789", "-c", "slackTeamId=T0123ABCD", "-c", "approverUserIds=U0123ABCD"]


def _warnings(synth: Synth) -> list[str]:
    found = Annotations.from_stack(synth.stack).find_warning("*", Match.string_like_regexp("Not ready to deploy"))
    return [str(entry.entry.data) for entry in found]


def test_synth_of_cdk_json_as_shipped_warns_of_each_placeholder(default_synth: Synth) -> None:
    warnings = _warnings(default_synth)

    assert len(warnings) == 3
    assert any("slackChannelId is the placeholder C0000000000" in w for w in warnings)
    assert any("slackTeamId is the placeholder T0000000000" in w for w in warnings)
    assert any("nobody could approve a job" in w and "approverUserIds" in w for w in warnings)
    assert all(PLACEHOLDER_WARNING in w for w in warnings)  # the CLI prints the annotation's ID with it


def test_synth_of_a_real_configuration_warns_of_nothing(custom_synth: Synth) -> None:
    assert _warnings(custom_synth) == []


def test_deploy_refuses_the_placeholders_and_says_which_values_and_how(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    said = capsys.readouterr().err
    assert "make deploy refuses" in said
    assert "-c slackChannelId=C…" in said
    assert "-c slackTeamId=T…" in said
    assert "approverGroupIds" in said


def test_deploy_goes_ahead_once_they_are_set_whatever_other_cdk_flags_come_with_them() -> None:
    assert problems([*READY, "--require-approval", "never"]) == []
    assert main(READY) == 0


def test_approvers_named_on_every_rule_are_enough(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nrules:\n  - name: default\n    approvers: {groups: [S0123ABCD]}\n")

    found = problems(["-c", "slackChannelId=C0123456789", "-c", "slackTeamId=T0123ABCD", "-c", f"policyFile={policy}"])

    assert found == []


def test_make_deploy_stops_before_the_cdk_cli_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "deploy"], cwd=root, capture_output=True, text=True, check=True
    )
    lines = result.stdout.strip().splitlines()
    guard = next(i for i, line in enumerate(lines) if "infra.deploy_guard" in line)
    deploy = next(i for i, line in enumerate(lines) if "aws-cdk@2 deploy" in line)
    assert guard < deploy  # the guard runs first, and make stops at its non-zero exit


def test_a_bad_setting_is_refused_too() -> None:
    [problem] = problems(["-c", "slackChannelId=nope"])
    assert problem.startswith("context setting 'slackChannelId' is invalid ('nope')")


def test_synthesize_still_works_with_placeholders(tmp_path: Path) -> None:
    # the stack can be synthesized and inspected before the values are known
    assert synthesize({}, tmp_path).resources("AWS::Lambda::Function")
