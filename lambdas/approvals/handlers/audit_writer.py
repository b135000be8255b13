"""Audit writer: new AUDIT# items in the audit table (DynamoDB stream) → one JSON line each.

This function's log group is the dedicated audit log group, so the audit trail in CloudWatch
holds audit records only, one schema (models.records.AuditRecord), separate from debug logs.

Audit items are insert-only: the table's resource policy denies deletes and updates to everyone, and
an overwrite (a PutItem on an existing key, which IAM cannot tell from an insert) or a removal shows
up here as a MODIFY or REMOVE record. Each is logged as ``audit_item_tampered`` with what was there
before, and counted (AuditTampered), which alarms.
"""

from __future__ import annotations

from approvals import coldstart

with coldstart.long_lived():  # modules load once per execution environment (approvals.coldstart)
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecordEventName
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import ValidationError

    import approvals.snapstart  # noqa: F401 (SnapStart's runtime hooks register on import)
    from approvals.adapters.store import AUDIT_PREFIX
    from approvals.models.records import AuditRecord
    from approvals.names import METRIC_AUDIT_TAMPERED
    from approvals.observability import MetricUnit, metrics

audit_logger = Logger(service="s3-batch-approvals-audit", log_uncaught_exceptions=True)


def handle(event: DynamoDBStreamEvent) -> dict[str, int]:
    written = tampered = 0
    for record in event.records:
        change = record.dynamodb
        keys = change.keys if change else None
        if change is None or not keys or not str(keys.get("sk", "")).startswith(AUDIT_PREFIX):
            continue
        audit = _audit(change.new_image) if record.event_name == DynamoDBRecordEventName.INSERT else None
        if audit is None:  # an overwrite, a removal, or an item that is no audit record
            tampered += 1
            _tampered(record.event_name, keys, change.old_image, change.new_image)
            continue
        audit_logger.info(audit.event_type.value, extra=audit.to_log())
        written += 1
    return {"written": written, "tampered": tampered}


def _audit(image: dict[str, Any] | None) -> AuditRecord | None:
    try:
        return AuditRecord.model_validate((image or {})["record"])
    except (KeyError, ValidationError):
        return None


def _tampered(
    change: DynamoDBRecordEventName | None,
    keys: dict[str, Any],
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """One line with what was there and what is there now; never an ordinary audit line for it."""
    audit_logger.error(
        "audit_item_tampered",
        extra={
            "change": change.name if change else None,
            "pk": keys.get("pk"),
            "sk": keys.get("sk"),
            "before": (before or {}).get("record"),
            "after": (after or {}).get("record") if after else None,
        },
    )
    metrics.add_metric(name=METRIC_AUDIT_TAMPERED, unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def handler(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, int]:
    return handle(event)
