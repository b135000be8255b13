"""The sandbox's command line against a running sandbox: jobs created as a principal, the policy explained, and
the Home tab and the slash command (`home`, `command`) as the person sees them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from sandbox import cli
from sandbox.local import ALICE_SSO, PIPELINE, SPOKE_ACCOUNT_ID, SPOKE_REGION, LocalDeployment


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[LocalDeployment, str]]:
    """A sandbox and its control port, as `python -m sandbox serve` runs them."""
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
    """What the command printed (without the handlers' EMF metric lines, which share the process's stdout)."""
    assert cli.main(list(argv)) == 0
    return "\n".join(line for line in capsys.readouterr().out.splitlines() if not line.startswith('{"_aws"'))


def test_create_job_as_a_principal_records_it_as_the_jobs_creator(
    d: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # when
    job_id = _run(capsys, "create-job", "--as", "alice", "--objects", "500").strip()
    # then
    assert d.jobs.job_creator(job_id)["arn"] == ALICE_SSO


def test_create_job_takes_an_iam_arn_and_defaults_to_the_pipeline_role(
    d: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = "arn:aws:sts::123456789012:assumed-role/analytics/run-7"
    named = _run(capsys, "create-job", "--as", arn).strip()
    default = _run(capsys, "create-job").strip()
    assert d.jobs.job_creator(named)["arn"] == arn
    assert d.jobs.job_creator(default)["arn"] == PIPELINE


def test_create_job_in_the_spoke_account_runs_there_and_a_chosen_id_is_taken(
    d: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # when
    job_id = _run(capsys, "create-job", "--account", "spoke", "--job-id", "cli-chosen-0001", "--as", "alice").strip()
    listed = _run(capsys, "jobs")
    # then
    assert job_id == "cli-chosen-0001"
    assert d.jobs.job_account(job_id) == (SPOKE_ACCOUNT_ID, SPOKE_REGION)
    assert d.jobs.job_creator(job_id)["accountId"] == SPOKE_ACCOUNT_ID
    assert f"{job_id}  {SPOKE_ACCOUNT_ID}  New" in listed


def test_explain_names_the_rule_a_forbidden_job_meets_and_why(
    d: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    job_id = _run(capsys, "create-job", "--operation", "lambda", "--bucket", "acme-prod-events").strip()
    # when
    text = _run(capsys, "explain", job_id)
    # then
    assert "Rule: rule 'no-lambda-on-production' (#1) of 4" in text
    assert "acme-prod-events" in text


def test_explain_says_when_the_requester_is_not_known_yet(
    d: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = _run(capsys, "create-job", "--as", "gina").strip()  # no request posted yet: it is New
    text = _run(capsys, "explain", job_id)
    assert "requester not known yet" in text
    assert "Rule: rule 'default'" in text


# -- the Home tab and the slash command (`home`, `command`) ------------------------------------------


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


# -- what a click did: this click's outcome, never another's -------------------------------------


def _job(d: LocalDeployment, capsys: pytest.CaptureFixture[str], objects: str = "1200") -> str:
    job_id = _run(capsys, "create-job", "--objects", objects).strip().splitlines()[-1]
    d.advance_until(job_id, "Suspended")
    d.settle()
    return job_id


def test_a_click_reports_its_own_outcome_not_an_earlier_notice_about_another_job(
    d: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: mallory was refused on one job (a notice about it), then another job waits
    first = _job(d, capsys)
    _run(capsys, "click", first, "approve", "--as", "mallory")
    second = _job(d, capsys)

    # when: mallory tries the second, then alice approves it
    refused = _run(capsys, "click", second, "approve", "--as", "mallory")
    out = _run(capsys, "click", second, "approve", "--as", "alice")

    # then: mallory's refusal is about the second job, not the first
    assert "this click: decision refused" in refused
    assert second in refused
    assert first not in refused
    # and alice's click says what it did (the decision; its answer is the message itself, no notice)
    assert "this click: decision taken" in out
    assert first not in out
    assert "Slack told alice" not in out


def test_two_concurrent_clicks_each_report_their_own_outcome(
    d: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: a job one approval decides
    job_id = _job(d, capsys)
    results: dict[str, dict[str, object]] = {}

    def click(person: str) -> None:
        results[person] = cli._call("/click", {"job_id": job_id, "action": "approve", "as": person})

    # when: alice and gina approve at once
    threads = [threading.Thread(target=click, args=(person,)) for person in ("alice", "gina")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: exactly one took the decision; the other was told it was already decided, about this job
    events = sorted(str(r["event"]) for result in results.values() for r in result["outcome"])  # type: ignore[attr-defined]
    assert events == ["decision_refused", "decision_taken"]


def test_a_cancel_and_an_approve_at_once_open_the_form_only_for_the_canceller(
    d: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = _job(d, capsys)
    results: dict[str, dict[str, object]] = {}

    def click(person: str, action: str) -> None:
        results[person] = cli._call("/click", {"job_id": job_id, "action": action, "as": person})

    threads = [
        threading.Thread(target=click, args=("gina", "approve")),
        threading.Thread(target=click, args=("alice", "cancel")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results["alice"]["modal"] is True
    assert results["gina"]["modal"] is False


def test_audit_of_an_unknown_job_is_an_error_and_a_prefix_finds_the_job(
    d: LocalDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    job_id = _job(d, capsys)

    # when / then: an unknown ID is an error, naming it
    with pytest.raises(SystemExit, match="no job 'no-such-job' in the sandbox"):
        cli.main(["audit", "no-such-job"])
    # and the start of an ID finds the job, printed as `make audit` prints it
    out = _run(capsys, "audit", job_id[:13])
    assert "approval_requested" in out
    assert not out.lstrip().startswith("{")
    assert json.loads(_run(capsys, "audit", job_id, "--json").splitlines()[0])["job_id"] == job_id


def test_every_command_and_option_says_what_it_does_and_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    # given
    parser = cli.build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]

    # then: every subcommand has a description, every option and argument a help line
    for name, sub in commands.choices.items():
        assert sub.description, name
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{name} {action.dest}"
    # and --help shows the defaults
    with pytest.raises(SystemExit) as done:
        cli.main(["create-job", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    assert "(default: 1200)" in text
    assert "(default: pipeline)" in text
