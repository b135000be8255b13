"""`python -m sandbox home` and `python -m sandbox command` against a running sandbox: Slack's stand-in opens
the Home tab or runs the slash command, and the replies are printed as the person sees them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from sandbox import cli
from sandbox.local import LocalDeployment


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[LocalDeployment, str]]:
    with LocalDeployment() as deployment:
        cli._Control.deployment = deployment
        server = ThreadingHTTPServer(("127.0.0.1", 0), cli._Control)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield deployment, f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            cli._Control.deployment = None


@pytest.fixture
def d(sandbox: tuple[LocalDeployment, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalDeployment:
    deployment, control = sandbox
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"control": control}))
    monkeypatch.setattr(cli, "STATE", state)
    return deployment


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(list(argv)) == 0
    return "\n".join(line for line in capsys.readouterr().out.splitlines() if not line.startswith('{"_aws"'))


def test_home_renders_the_persons_home_tab(d: LocalDeployment, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    job_id = d.create_job()
    d.advance_until(job_id, "Suspended")

    # when
    alice = _run(capsys, "home", "--as", "alice")
    mallory = _run(capsys, "home", "--as", "mallory")

    # then
    assert "Waiting for you" in alice
    assert job_id in alice
    assert "[ Approve ] [ Cancel ]" in alice
    assert job_id not in mallory
    assert "Nothing waits for your decision." in mallory


def test_command_prints_the_ephemeral_reply(d: LocalDeployment, capsys: pytest.CaptureFixture[str]) -> None:
    # when
    text = _run(capsys, "command", "/s3-approvals help", "--as", "gina")

    # then
    assert text.startswith("(only gina sees this)")
    assert "status JOB_ID" in text


def test_an_unknown_person_is_refused(d: LocalDeployment) -> None:
    with pytest.raises(SystemExit):
        cli.main(["home", "--as", "bob"])
