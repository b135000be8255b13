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
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecordEventName
    from aws_lambda_powertools.utilities.typing import LambdaContext

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
        if record.event_name in (DynamoDBRecordEventName.MODIFY, DynamoDBRecordEventName.REMOVE):
            tampered += 1
            before = (change.old_image or {}).get("record")
            audit_logger.error(
                "audit_item_tampered",
                extra={
                    "change": record.event_name.name if record.event_name else None,
                    "pk": keys.get("pk"),
                    "sk": keys.get("sk"),
                    "before": before,
                },
            )
            metrics.add_metric(name=METRIC_AUDIT_TAMPERED, unit=MetricUnit.Count, value=1)
        image = change.new_image
        if not image:
            continue
        audit = AuditRecord.model_validate(image["record"])
        audit_logger.info(audit.event_type.value, extra=audit.to_log())
        written += 1
    return {"written": written, "tampered": tampered}


@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def handler(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, int]:
    return handle(event)
