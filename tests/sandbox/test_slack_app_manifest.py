"""make slack-app against the Slack stand-in's manifest API: the app is validated, created, updated; a
manifest Slack would refuse is refused with where; only an app configuration token is taken, never printed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from infra.slack_app import main
from infra.slack_manifest import manifest
from sandbox.slack import DEFAULT_CONFIG_TOKEN, SlackStandIn

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/slack/interactions"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    standin = SlackStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def manifest_file(tmp_path: Path) -> Path:
    path = tmp_path / "slack-app-manifest.yaml"
    path.write_text(yaml.safe_dump(manifest(URL)))
    return path


def test_the_app_is_created_then_updated_and_the_token_never_printed(
    slack: SlackStandIn, manifest_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    monkeypatch.setenv("SLACK_CONFIG_TOKEN", DEFAULT_CONFIG_TOKEN)

    # when
    created = main(["--manifest", str(manifest_file), "--api-url", slack.api_url])
    [app_id] = slack.apps
    updated = main(["--manifest", str(manifest_file), "--api-url", slack.api_url, "--app-id", app_id])

    # then
    out = capsys.readouterr()
    assert (created, updated) == (0, 0)
    assert slack.apps[app_id]["features"]["bot_user"]["display_name"] == "s3-batch-approvals"
    assert [c.method for c in slack.calls] == [
        "apps.manifest.validate",
        "apps.manifest.create",
        "apps.manifest.validate",
        "apps.manifest.update",
    ]
    assert f"created Slack app {app_id}" in out.out
    assert DEFAULT_CONFIG_TOKEN not in out.out + out.err
    assert "signing_secret" not in out.out + out.err


def test_a_manifest_slack_refuses_is_refused_with_where(
    slack: SlackStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the display name an earlier version shipped
    broken = manifest(URL)
    broken["features"]["bot_user"]["display_name"] = "S3 Batch Approvals"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(broken))
    monkeypatch.setenv("SLACK_CONFIG_TOKEN", DEFAULT_CONFIG_TOKEN)

    # when
    code = main(["--manifest", str(path), "--api-url", slack.api_url])

    # then nothing was created
    assert code == 1
    assert "invalid_manifest" in (err := capsys.readouterr().err)
    assert "/features/bot_user/display_name" in err
    assert slack.apps == {}


def test_the_bot_token_is_not_an_app_configuration_token(
    slack: SlackStandIn, manifest_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_CONFIG_TOKEN", slack.bot_token)

    assert main(["--manifest", str(manifest_file), "--api-url", slack.api_url]) == 1
    assert "not_allowed_token_type" in capsys.readouterr().err


def test_no_token_says_where_to_get_one(
    manifest_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SLACK_CONFIG_TOKEN", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    assert main(["--manifest", str(manifest_file)]) == 2
    assert "app configuration token" in capsys.readouterr().err
