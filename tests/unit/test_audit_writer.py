"""The audit writer: each new AUDIT# item on the audit table's stream becomes one JSON line in the audit
log; an overwrite or a removal of one is logged as ``audit_item_tampered`` and counted (AuditTampered).

The stream records are moto's own, read from the audit table's stream after real writes (an insert by
``DynamoRequestStore.put_audit``, an overwriting PutItem, a DeleteItem) and shaped as Lambda's DynamoDB
event source hands them over.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from approvals.adapters.store import DynamoRequestStore
from approvals.domain.audit import audit_record
from approvals.models.job import JobRef
from approvals.models.records import Actor, AuditEventType, AuditRecord
from approvals.names import METRIC_AUDIT_TAMPERED, METRICS_NAMESPACE, SERVICE_NAME
from sandbox.aws_local import LocalAws

REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0005-abcdef")
ALICE = Actor(user_id="UALICE001", name="alice", team_id="T0001")
AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
_ser, _de = TypeSerializer(), TypeDeserializer()


@pytest.fixture(scope="module")
def audit_writer() -> ModuleType:
    """The handler module, imported as Lambda would: Powertools reads its own settings at import."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
        env.setenv("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
        env.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        return importlib.import_module("approvals.handlers.audit_writer")


class AuditLog:
    """The lines the audit writer's logger writes, formatted by its own Powertools formatter."""

    def __init__(self, module: ModuleType) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(module.audit_logger.registered_formatter)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def audit_log(audit_writer: ModuleType) -> Iterator[AuditLog]:
    log = AuditLog(audit_writer)
    powertools_logger = audit_writer.audit_logger
    level = powertools_logger.log_level
    powertools_logger.addHandler(log.handler)
    powertools_logger.setLevel("INFO")
    audit_writer.metrics.clear_metrics()
    try:
        yield log
    finally:
        powertools_logger.removeHandler(log.handler)
        powertools_logger.setLevel(level)
        audit_writer.metrics.clear_metrics()


class AuditTable:
    """The audit table on moto, and its stream as Lambda's event source reads it."""

    def __init__(self, local_aws: LocalAws) -> None:
        self.name = local_aws.audit_table
        self.dynamodb = local_aws.client("dynamodb")
        self.streams = local_aws.client("dynamodbstreams")
        self.store = DynamoRequestStore(self.dynamodb, local_aws.requests_table, local_aws.audit_table)
        self._read = 0

    def new_stream_records(self) -> list[dict[str, Any]]:
        """The stream's records since the last call, each as the ``Records`` entry Lambda sends."""
        arn = self.dynamodb.describe_table(TableName=self.name)["Table"]["LatestStreamArn"]
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            iterator = self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records.extend(self.streams.get_records(ShardIterator=iterator)["Records"])
        for record in records:
            change = record["dynamodb"]
            if isinstance(change.get("ApproximateCreationDateTime"), datetime):  # boto3 parses it; Lambda does not
                change["ApproximateCreationDateTime"] = int(change["ApproximateCreationDateTime"].timestamp())
            record["eventSourceARN"] = arn
        fresh, self._read = records[self._read :], len(records)
        return fresh

    def only_item(self) -> dict[str, Any]:
        [item] = self.dynamodb.scan(TableName=self.name)["Items"]
        return dict(item)


@pytest.fixture
def table(local_aws: LocalAws) -> AuditTable:
    return AuditTable(local_aws)


def decision_taken() -> AuditRecord:
    return audit_record(
        AuditEventType.DECISION_TAKEN,
        REF,
        now=AT,
        actor=ALICE,
        action="approve",
        status_before="Suspended",
        status_after="Ready",
        status_update_reason="Approved by alice (UALICE001) via Slack",
        origin="slack",
    )


def tampered_count(audit_writer: ModuleType) -> float:
    metric = audit_writer.metrics.metric_set.get(METRIC_AUDIT_TAMPERED)
    return float(sum(metric["Value"])) if metric else 0.0


def test_a_new_audit_item_becomes_one_json_line_in_the_audit_log(
    audit_writer: ModuleType, audit_log: AuditLog, table: AuditTable
) -> None:
    # given
    record = decision_taken()
    table.store.put_audit(record)
    [insert] = table.new_stream_records()
    # when
    result = audit_writer.handle(DynamoDBStreamEvent({"Records": [insert]}))
    # then
    assert insert["eventName"] == "INSERT"
    assert result == {"written": 1, "tampered": 0}
    [line] = audit_log.lines()
    assert line["message"] == "decision_taken"
    assert line["service"] == "s3-batch-approvals-audit"
    assert AuditRecord.model_validate({k: v for k, v in line.items() if k in AuditRecord.model_fields}) == record
    assert tampered_count(audit_writer) == 0


def test_an_audit_item_overwritten_in_place_is_logged_as_tampered_and_counted(
    audit_writer: ModuleType, audit_log: AuditLog, table: AuditTable
) -> None:
    # given: an approval on record, then a PutItem on its key that says someone else decided
    table.store.put_audit(decision_taken())
    table.new_stream_records()  # the insert, written before
    item = table.only_item()
    forged = {**_de.deserialize(item["record"]), "actor_id": "UMALLORY1", "actor_name": "mallory"}
    table.dynamodb.put_item(TableName=table.name, Item={**item, "record": _ser.serialize(forged)})
    [modify] = table.new_stream_records()
    # when
    result = audit_writer.handle(DynamoDBStreamEvent({"Records": [modify]}))
    # then
    assert modify["eventName"] == "MODIFY"
    assert result["tampered"] == 1
    [tampered] = [line for line in audit_log.lines() if line["message"] == "audit_item_tampered"]
    assert tampered["level"] == "ERROR"
    assert (tampered["change"], tampered["pk"], tampered["sk"]) == ("MODIFY", REF.key, item["sk"]["S"])
    assert tampered["before"]["actor_id"] == "UALICE001", "the line keeps what was there before"
    assert tampered_count(audit_writer) == 1


def test_an_audit_item_deleted_is_logged_as_tampered_and_counted(
    audit_writer: ModuleType, audit_log: AuditLog, table: AuditTable
) -> None:
    # given
    table.store.put_audit(decision_taken())
    table.new_stream_records()
    item = table.only_item()
    table.dynamodb.delete_item(TableName=table.name, Key={"pk": item["pk"], "sk": item["sk"]})
    [remove] = table.new_stream_records()
    # when
    result = audit_writer.handle(DynamoDBStreamEvent({"Records": [remove]}))
    # then
    assert remove["eventName"] == "REMOVE"
    assert result == {"written": 0, "tampered": 1}
    [tampered] = audit_log.lines()
    assert (tampered["message"], tampered["change"], tampered["sk"]) == (
        "audit_item_tampered",
        "REMOVE",
        item["sk"]["S"],
    )
    assert tampered["before"]["event_type"] == "decision_taken"
    assert tampered_count(audit_writer) == 1


def test_a_change_to_an_item_that_is_not_an_audit_record_is_ignored(
    audit_writer: ModuleType, audit_log: AuditLog, table: AuditTable
) -> None:
    # given: something else in the table (no AUDIT# sort key), written then removed
    key = {"pk": {"S": REF.key}, "sk": {"S": "NOTE#1"}}
    table.dynamodb.put_item(TableName=table.name, Item={**key, "note": {"S": "hello"}})
    table.dynamodb.delete_item(TableName=table.name, Key=key)
    records = table.new_stream_records()
    # when
    result = audit_writer.handle(DynamoDBStreamEvent({"Records": records}))
    # then
    assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]
    assert result == {"written": 0, "tampered": 0}
    assert audit_log.lines() == []
    assert tampered_count(audit_writer) == 0
