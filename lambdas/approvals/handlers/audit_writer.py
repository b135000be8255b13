"""Audit writer: new AUDIT# items in the requests table (DynamoDB stream) → one JSON line each.

This function's log group is the dedicated audit log group, so the audit trail in CloudWatch
holds audit records only, one schema (models.records.AuditRecord), separate from debug logs.
"""

from __future__ import annotations

from approvals import coldstart

with coldstart.long_lived():  # modules load once per execution environment (approvals.coldstart)
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from approvals.adapters.store import AUDIT_PREFIX
    from approvals.models.records import AuditRecord

audit_logger = Logger(service="s3-batch-approvals-audit", log_uncaught_exceptions=True)


def handle(event: DynamoDBStreamEvent) -> dict[str, int]:
    written = 0
    for record in event.records:
        image = record.dynamodb.new_image if record.dynamodb else None
        keys = record.dynamodb.keys if record.dynamodb else None
        if not image or not keys or not str(keys.get("sk", "")).startswith(AUDIT_PREFIX):
            continue
        audit = AuditRecord.model_validate(image["record"])
        audit_logger.info(audit.event_type.value, extra=audit.to_log())
        written += 1
    return {"written": written}


@event_source(data_class=DynamoDBStreamEvent)
def handler(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, int]:
    return handle(event)
