"""The audit trail: every request, decision and refusal leaves the expected records, in one schema,
through the DynamoDB stream into the audit log, and no secret ever reaches a log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from approvals.models.records import AuditEventType as E
from approvals.models.records import AuditRecord
from sandbox.apigw import LambdaContext
from sandbox.local import ALICE, MALLORY, LocalDeployment

BOT_TOKEN = "xoxb-RECOGNISABLE-BOT-TOKEN-4242"
SIGNING_SECRET = "RECOGNISABLE-SIGNING-SECRET-4242"
SECRETS = (BOT_TOKEN, SIGNING_SECRET, "hooks.slack.com", "response_url")
AUDIT_FIELDS = set(AuditRecord.model_fields)


class Emitted:
    """Every line the functions' loggers write, formatted by their own Powertools formatters."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def attach(self, powertools_logger: Any) -> None:
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(powertools_logger.registered_formatter)
        powertools_logger.addHandler(handler)

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture(scope="module")
def loud() -> Iterator[tuple[LocalDeployment, Emitted]]:
    """A deployment with recognisable secrets whose handlers log everything (DEBUG)."""
    with LocalDeployment(quiet=False, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET) as running:
        from approvals.handlers.audit_writer import audit_logger
        from approvals.observability import logger

        emitted = Emitted()
        logger.setLevel("DEBUG")
        audit_logger.setLevel("INFO")
        emitted.attach(logger)
        emitted.attach(audit_logger)
        yield running, emitted


def stream_records(d: LocalDeployment) -> list[dict[str, Any]]:
    """Every change record of the audit table's stream, as Lambda's DynamoDB event source reads it."""
    table = d.aws.client("dynamodb").describe_table(TableName=d.aws.audit_table)["Table"]
    streams = d.aws.client("dynamodbstreams")
    shards = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"]
    records: list[dict[str, Any]] = []
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=table["LatestStreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        got = streams.get_records(ShardIterator=iterator)["Records"]
        for record in got:
            record["dynamodb"].pop("ApproximateCreationDateTime", None)
        records.extend(got)
    return records


def test_the_story_leaves_exactly_the_expected_records_and_no_secret_anywhere(
    loud: tuple[LocalDeployment, Emitted], capfd: pytest.CaptureFixture[str]
) -> None:
    deployment, emitted = loud
    # given: one job approved, one refused then cancelled with a reason
    approved = deployment.create_job()
    deployment.advance_until(approved, "Suspended")
    deployment.click(approved, "approve_job", ALICE)
    deployment.settle()
    cancelled = deployment.create_job()
    deployment.advance_until(cancelled, "Suspended")
    deployment.click(cancelled, "approve_job", MALLORY)
    deployment.click(cancelled, "cancel_job", ALICE)
    deployment.submit_reason(ALICE, "wrong manifest")
    deployment.settle()

    # when: the stream feeds the audit writer, as in AWS
    from approvals.handlers import audit_writer

    written = audit_writer.handler({"Records": stream_records(deployment)}, LambdaContext("audit-writer"))
    out = emitted.text + capfd.readouterr().out  # log lines, and the EMF metric lines on stdout

    # then: the durable records are exactly these
    assert [r.event_type for r in deployment.audit(approved)] == [
        E.APPROVAL_REQUESTED,
        E.DECISION_TAKEN,
        E.JOB_STATUS_CHANGED,
    ]
    assert [r.event_type for r in deployment.audit(cancelled)] == [
        E.APPROVAL_REQUESTED,
        E.DECISION_REFUSED,
        E.DECISION_TAKEN,
        E.JOB_STATUS_CHANGED,
    ]
    taken = deployment.audit(cancelled)[2]
    assert (taken.actor_id, taken.action, taken.reason, taken.status_after) == (
        ALICE.id,
        "cancel",
        "wrong manifest",
        "Cancelled",
    )
    assert taken.status_update_reason == f"Cancelled by {ALICE.display_name} ({ALICE.id}) via Slack: wrong manifest"
    assert taken.slack_channel
    assert taken.slack_message_ts
    assert taken.request_id
    # and the audit log holds one line per record, each valid against the schema
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"schema_version"' in line]
    assert written == {"written": 7, "tampered": 0}
    assert len(lines) == 7
    for line in lines:
        AuditRecord.model_validate({k: v for k, v in line.items() if k in AUDIT_FIELDS})
    # and no secret appears in any line any handler wrote
    assert out.strip(), "the handlers should have logged something"
    for secret in SECRETS:
        assert secret not in out, f"{secret!r} leaked into the logs"
    for record in deployment.audit(approved) + deployment.audit(cancelled):
        assert not any(secret in record.model_dump_json() for secret in SECRETS)
