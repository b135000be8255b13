"""Names and constants shared by the constructs, the sandbox and the tests (no CDK imports here)."""

from __future__ import annotations

from typing import Any, Final

SERVICE_NAME: Final = "s3-batch-approvals"
METRICS_NAMESPACE: Final = "S3BatchApprovals"

# The documented rule pattern for S3 Batch Operations CloudTrail service events. The CDK rule and
# the sandbox's event router use this same object, so a mistake here shows up locally too.
JOB_EVENT_PATTERN: Final[dict[str, Any]] = {
    "source": ["aws.s3"],
    "detail-type": ["AWS Service Event via CloudTrail"],
    "detail": {
        "eventSource": ["s3.amazonaws.com"],
        "eventName": ["JobCreated", "JobStatusChanged"],
    },
}

# Lambda entry points (module.function inside the bundle; the bundle root is lambdas/).
NOTIFIER_HANDLER: Final = "approvals.handlers.notifier.handler"
CALLBACK_HANDLER: Final = "approvals.handlers.callback.handler"
DECIDER_HANDLER: Final = "approvals.handlers.decider.handler"
AUDIT_WRITER_HANDLER: Final = "approvals.handlers.audit_writer.handler"

# Tables. The requests table holds one REQUEST item per job plus its AUDIT# items.
REQUESTS_TABLE_PARTITION_KEY: Final = "pk"
REQUESTS_TABLE_SORT_KEY: Final = "sk"
REQUESTS_TABLE_TTL_ATTRIBUTE: Final = "expires_at"
IDEMPOTENCY_TABLE_PARTITION_KEY: Final = "id"
IDEMPOTENCY_TABLE_TTL_ATTRIBUTE: Final = "expiration"

# The Slack route behind API Gateway.
SLACK_INTERACTIONS_PATH: Final = "slack/interactions"

# Environment variables the functions read (approvals.config.Settings declares each one).
ENV_SLACK_SECRET_NAME: Final = "SLACK_SECRET_NAME"
ENV_SLACK_CHANNEL_ID: Final = "SLACK_CHANNEL_ID"
ENV_REQUESTS_TABLE_NAME: Final = "REQUESTS_TABLE_NAME"
ENV_IDEMPOTENCY_TABLE_NAME: Final = "IDEMPOTENCY_TABLE_NAME"
ENV_DECISIONS_QUEUE_URL: Final = "DECISIONS_QUEUE_URL"
ENV_APPROVER_USER_IDS: Final = "APPROVER_USER_IDS"
ENV_APPROVER_GROUP_IDS: Final = "APPROVER_GROUP_IDS"
ENV_LARGE_JOB_THRESHOLD: Final = "LARGE_JOB_THRESHOLD"

# The secret's JSON keys.
SECRET_BOT_TOKEN_KEY: Final = "bot_token"
SECRET_SIGNING_SECRET_KEY: Final = "signing_secret"

# Metric names (EMF, namespace METRICS_NAMESPACE, dimension "service").
METRIC_APPROVAL_REQUESTED: Final = "ApprovalRequested"
METRIC_APPROVED: Final = "Approved"
METRIC_CANCELLED: Final = "Cancelled"
METRIC_REFUSED: Final = "DecisionRefused"
METRIC_SIGNATURE_REJECTED: Final = "SignatureRejected"
METRIC_DECISION_FAILED: Final = "DecisionFailed"
METRIC_TIME_TO_DECISION: Final = "TimeToDecision"
METRIC_EVENT_DROPPED: Final = "EventDropped"
METRIC_DUPLICATE_EVENT: Final = "DuplicateEvent"
