"""The policy file at synth: validated with the functions' own model, and bundled as approvals/policy.json."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

import app as cdk_app
from approvals.models.policy import load_policy, load_policy_file
from infra.bundling import lambda_code, write_policy
from infra.policy import DEFAULT_POLICY_FILE, dump_policy
from infra.settings import ROOT, InfraSettings, InfraSettingsError, cdk_json_context
from infra.stack import build_app
from tests.infra.conftest import SKIP_BUNDLING, Synth, synthesize

VALID: dict[str, Any] = {"slackChannelId": "C0123456789", "slackTeamId": "T0123456789"}
BAD_POLICY = """version: 1
rules:
  - name: large-jobs
    match:
      object_count: {min: 1000000}
    quorum: 0
  - name: default
"""
OTHER_POLICY = """version: 1
rules:
  - name: default
    quorum: 1
    reason: Another policy, for the asset hash.
"""
MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine().lower()]


def settings_with(**context: Any) -> InfraSettings:
    return InfraSettings.from_context({**VALID, **context}.get)


def policy_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def test_the_default_policy_file_is_the_annotated_example() -> None:
    # when
    settings = InfraSettings.from_context(cdk_json_context().get)

    # then
    assert settings.policy_file == DEFAULT_POLICY_FILE == "policy.example.yaml"
    assert settings.policy == load_policy_file(ROOT / "policy.example.yaml")


def test_the_policy_file_is_found_from_the_repo_root_wherever_synth_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.chdir(tmp_path)

    # when
    settings = settings_with(policyFile="policy.example.yaml")

    # then
    assert settings.policy.default.name == "default"


def test_a_malformed_policy_stops_synth_naming_the_setting_the_rule_and_the_field(tmp_path: Path) -> None:
    # given
    file = policy_file(tmp_path, BAD_POLICY)

    # when
    with pytest.raises(InfraSettingsError) as raised:
        build_app({**cdk_json_context(), **SKIP_BUNDLING, "policyFile": file}, outdir=str(tmp_path / "out"))

    # then
    assert (
        str(raised.value)
        == f"context setting 'policyFile' ({file}): rule 'large-jobs' (#1): quorum: must be at least 1"
    )
    assert not list((tmp_path / "out").glob("*.template.json")), "nothing was synthesized"


def test_app_py_prints_the_policy_problem_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    file = policy_file(tmp_path, BAD_POLICY)

    # when
    code = cdk_app.main(["-c", f"policyFile={file}"])

    # then
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: context setting 'policyFile' ({file}): rule 'large-jobs' (#1): quorum: must be at least 1\n"
    )


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    # when
    with pytest.raises(InfraSettingsError) as raised:
        settings_with(policyFile="no-such-policy.yaml")

    # then
    assert str(raised.value) == (
        f"context setting 'policyFile' (no-such-policy.yaml): no such file: {ROOT / 'no-such-policy.yaml'}"
    )


def test_the_bundled_policy_is_the_validated_policy_as_json(tmp_path: Path) -> None:
    # given
    settings = settings_with()

    # when
    path = write_policy(tmp_path, settings.policy_json)

    # then
    assert path == tmp_path / "approvals" / "policy.json"
    assert json.loads(path.read_text()) == settings.policy.model_dump(mode="json")
    assert load_policy(path.read_text()) == settings.policy


def _asset_hash(tmp_path: Path, name: str, policy_json: str | None) -> str:
    app = App(context=SKIP_BUNDLING, outdir=str(tmp_path / name))
    stack = Stack(app, "PolicyAsset")
    code = lambda_code("3.13", MACHINE, policy_json=policy_json)
    lambda_.Function(stack, "Fn", code=code, handler="approvals.x.handler", runtime=lambda_.Runtime.PYTHON_3_13)
    template = app.synth().get_stack_by_name("PolicyAsset").template
    [function] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    return str(function["Properties"]["Code"]["S3Key"])


def test_the_code_asset_hash_follows_the_policy(tmp_path: Path) -> None:
    # given
    example = settings_with().policy_json
    other = dump_policy(load_policy(OTHER_POLICY))

    # when
    hashes = {
        _asset_hash(tmp_path, "example", example),
        _asset_hash(tmp_path, "again", example),
        _asset_hash(tmp_path, "other", other),
    }

    # then
    assert len(hashes) == 2


def test_the_stacks_functions_are_bundled_with_the_deployments_policy(default_synth: Synth, tmp_path: Path) -> None:
    # given the same stack with another policy file
    other = synthesize({"policyFile": policy_file(tmp_path, OTHER_POLICY)}, tmp_path / "cdk")

    # then its code asset differs
    default_keys = {str(p["Code"]["S3Key"]) for p in default_synth.props("AWS::Lambda::Function")}
    other_keys = {str(p["Code"]["S3Key"]) for p in other.props("AWS::Lambda::Function")}
    assert default_keys.isdisjoint(other_keys)


@pytest.mark.slow
def test_the_bundle_holds_the_validated_policy(tmp_path: Path) -> None:
    # given the asset recipe with real bundling (pip, a few seconds)
    settings = settings_with()
    app = App(outdir=str(tmp_path / "cdk"))
    stack = Stack(app, "PolicyBundle")
    code = lambda_code("3.13", MACHINE, policy_json=settings.policy_json)
    lambda_.Function(stack, "Fn", code=code, handler="approvals.x.handler", runtime=lambda_.Runtime.PYTHON_3_13)

    # when
    template = app.synth().get_stack_by_name("PolicyBundle").template

    # then
    [function] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    asset = tmp_path / "cdk" / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    bundled = json.loads((asset / "approvals" / "policy.json").read_text())
    assert bundled == settings.policy.model_dump(mode="json")
    assert not (asset / "yaml").exists(), "the functions read JSON; PyYAML is not bundled"
