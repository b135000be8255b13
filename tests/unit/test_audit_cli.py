"""`make audit JOB=…`: who approved a job and why, from the durable records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from approvals import audit_cli
from approvals.adapters.store import DynamoRequestStore
from approvals.domain.audit import audit_record
from approvals.models.job import JobRef
from approvals.models.records import Actor, AuditEventType
from sandbox.aws_local import LocalAws

REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0003-abcdef")
ALICE = Actor(user_id="UALICE001", name="Alice A.", team_id="T0001")


@pytest.fixture
def deployed(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """An audit table reachable as a deployed one would be: through the standard AWS settings."""
    for name, value in local_aws.env().items():
        monkeypatch.setenv(name, value)
    return local_aws


def test_the_history_answers_who_approved_the_job_and_why(
    deployed: LocalAws, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    store = DynamoRequestStore(deployed.client("dynamodb"), deployed.requests_table, deployed.audit_table)
    at = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    store.put_audit(audit_record(AuditEventType.APPROVAL_REQUESTED, REF, now=at, status_after="Suspended"))
    store.put_audit(
        audit_record(
            AuditEventType.DECISION_TAKEN,
            REF,
            now=at.replace(minute=41),
            actor=ALICE,
            action="approve",
            status_before="Suspended",
            status_after="Ready",
            status_update_reason="Approved by Alice A. (UALICE001) via Slack",
        )
    )
    # when
    code = audit_cli.main(
        [REF.job_id, "--table", deployed.audit_table, "--account", REF.account_id, "--region", REF.region]
    )
    # then
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("2026-03-14 09:30:00Z  approval_requested")
    assert "decision_taken" in out[1]
    assert "Alice A. (UALICE001)" in out[1]
    assert "Suspended -> Ready" in out[1]
    assert out[2].strip() == "StatusUpdateReason: Approved by Alice A. (UALICE001) via Slack"


def test_a_job_without_records_says_so_and_fails(deployed: LocalAws, capsys: pytest.CaptureFixture[str]) -> None:
    # when
    code = audit_cli.main(
        ["job-never-seen", "--table", deployed.audit_table, "--account", REF.account_id, "--region", REF.region]
    )
    # then
    assert code == 1
    assert "no audit records for job job-never-seen" in capsys.readouterr().err


def test_an_invalid_job_id_is_refused_clearly(deployed: LocalAws) -> None:
    with pytest.raises(SystemExit, match="invalid job reference"):
        audit_cli.main(
            ["no/such", "--table", deployed.audit_table, "--account", REF.account_id, "--region", REF.region]
        )
