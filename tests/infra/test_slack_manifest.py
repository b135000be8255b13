from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.settings import ROOT
from infra.slack_manifest import BOT_SCOPE_USES, BOT_SCOPES, PLACEHOLDER_URL, main

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/slack/interactions"


def _outputs(tmp_path: Path, outputs: dict) -> Path:
    path = tmp_path / "cdk-outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def test_the_manifest_points_slack_at_the_deployed_interactivity_url(tmp_path: Path) -> None:
    # given
    outputs = _outputs(tmp_path, {"S3BatchApprovals": {"SlackInteractivityUrl": URL, "RequestsTableName": "t"}})
    out = tmp_path / "slack-app-manifest.yaml"

    # when
    code = main(["--outputs", str(outputs), "--out", str(out)])

    # then
    assert code == 0
    manifest = yaml.safe_load(out.read_text())
    assert manifest["settings"] == {
        "event_subscriptions": {
            "request_url": URL.replace("/interactions", "/events"),
            "bot_events": ["app_home_opened"],
        },
        "interactivity": {"is_enabled": True, "request_url": URL},
        "org_deploy_enabled": False,
        "socket_mode_enabled": False,
        "token_rotation_enabled": False,
    }
    assert manifest["oauth_config"]["scopes"]["bot"] == [
        "chat:write",
        "usergroups:read",
        "users:read",
        "channels:history",
        "groups:history",
        "users:read.email",
        "commands",
    ]
    assert manifest["display_information"]["name"]
    assert manifest["features"]["bot_user"]["display_name"]


def test_without_outputs_the_manifest_holds_a_placeholder_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    out = tmp_path / "manifest.yaml"

    # when
    code = main(["--out", str(out)])

    # then
    assert code == 0
    assert yaml.safe_load(out.read_text())["settings"]["interactivity"]["request_url"] == PLACEHOLDER_URL
    assert PLACEHOLDER_URL == "https://REPLACE-ME.execute-api.REGION.amazonaws.com/prod/slack/interactions"
    assert "warning: no --outputs given" in capsys.readouterr().err


def test_outputs_without_the_url_are_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    outputs = _outputs(tmp_path, {"S3BatchApprovals": {"RequestsTableName": "t"}})
    out = tmp_path / "manifest.yaml"

    # when
    code = main(["--outputs", str(outputs), "--out", str(out)])

    # then
    assert code == 2
    assert "no SlackInteractivityUrl output" in capsys.readouterr().err
    assert not out.exists()


def test_several_deployments_in_one_outputs_file_need_a_stack_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    outputs = _outputs(
        tmp_path,
        {"Staging": {"SlackInteractivityUrl": URL + "?staging"}, "Production": {"SlackInteractivityUrl": URL}},
    )
    out = tmp_path / "manifest.yaml"

    # when
    ambiguous = main(["--outputs", str(outputs), "--out", str(out)])
    chosen = main(["--outputs", str(outputs), "--stack", "Production", "--out", str(out)])

    # then
    assert ambiguous == 2
    assert "pass --stack one of ['Production', 'Staging']" in capsys.readouterr().err
    assert chosen == 0
    assert yaml.safe_load(out.read_text())["settings"]["interactivity"]["request_url"] == URL


def test_it_runs_as_a_module_the_way_the_makefile_calls_it(tmp_path: Path) -> None:
    # given
    out = tmp_path / "slack-app-manifest.yaml"

    # when
    result = subprocess.run(
        [sys.executable, "-m", "infra.slack_manifest", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    # then
    assert result.returncode == 0, result.stderr
    assert "REPLACE-ME" in out.read_text()


def test_every_bot_scope_names_the_web_api_call_that_needs_it() -> None:
    # then
    assert list(BOT_SCOPE_USES) == BOT_SCOPES
    for scope, use in BOT_SCOPE_USES.items():
        method = use.split(":")[0].split(",")[0].split(" ")[0]
        assert re.fullmatch(r"[a-z]+\.[a-zA-Z.]+", method), (scope, use)
    assert BOT_SCOPE_USES["users:read.email"].startswith("users.lookupByEmail")
    assert {scope for scope, use in BOT_SCOPE_USES.items() if use.startswith("conversations.history")} == {
        "channels:history",
        "groups:history",
    }


def test_the_bots_display_name_is_one_slack_accepts_and_the_one_the_readme_invites() -> None:
    from infra.slack_manifest import BOT_DISPLAY_NAME, BOT_DISPLAY_NAME_RULE, manifest

    shown = manifest("https://example.execute-api.eu-west-1.amazonaws.com/prod/slack/interactions")
    name = shown["features"]["bot_user"]["display_name"]
    assert name == BOT_DISPLAY_NAME == "s3-batch-approvals"
    assert BOT_DISPLAY_NAME_RULE.fullmatch(name)
    assert not BOT_DISPLAY_NAME_RULE.fullmatch("S3 Batch Approvals")  # what an earlier version shipped
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"/invite @{name}" in readme
