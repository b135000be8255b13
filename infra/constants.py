"""Names and constants shared by the constructs, the sandbox and the tests (no CDK imports here)."""

from __future__ import annotations

from typing import Any, Final

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

# Set on every function: pydantic otherwise reads every installed package's metadata looking for
# plugins when it builds its first model, on each cold start; the functions use no plugins.
PYDANTIC_WITHOUT_PLUGINS: Final = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}

# The secret's JSON keys.
SECRET_BOT_TOKEN_KEY: Final = "bot_token"
SECRET_SIGNING_SECRET_KEY: Final = "signing_secret"


# Metric names and the service name come from the functions' own module (single source).
def _load_names() -> Any:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "lambdas" / "approvals" / "names.py"
    spec = importlib.util.spec_from_file_location("_approvals_names", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_names = _load_names()
METRIC_APPROVAL_REQUESTED: Final[str] = _names.METRIC_APPROVAL_REQUESTED
METRIC_APPROVED: Final[str] = _names.METRIC_APPROVED
METRIC_CANCELLED: Final[str] = _names.METRIC_CANCELLED
METRIC_REFUSED: Final[str] = _names.METRIC_REFUSED
METRIC_SIGNATURE_REJECTED: Final[str] = _names.METRIC_SIGNATURE_REJECTED
METRIC_DECISION_FAILED: Final[str] = _names.METRIC_DECISION_FAILED
METRIC_TIME_TO_DECISION: Final[str] = _names.METRIC_TIME_TO_DECISION
METRIC_EVENT_DROPPED: Final[str] = _names.METRIC_EVENT_DROPPED
METRIC_DUPLICATE_EVENT: Final[str] = _names.METRIC_DUPLICATE_EVENT
METRIC_NOTICE_FAILED: Final[str] = _names.METRIC_NOTICE_FAILED
SERVICE_NAME: Final[str] = _names.SERVICE_NAME
METRICS_NAMESPACE: Final[str] = _names.METRICS_NAMESPACE

# Stack outputs (CloudFormation output names; `cdk deploy --outputs-file` keys them by these).
OUTPUT_SLACK_INTERACTIVITY_URL: Final = "SlackInteractivityUrl"
OUTPUT_REQUESTS_TABLE_NAME: Final = "RequestsTableName"
OUTPUT_IDEMPOTENCY_TABLE_NAME: Final = "IdempotencyTableName"
OUTPUT_DECISIONS_QUEUE_URL: Final = "DecisionsQueueUrl"
OUTPUT_DECISIONS_DLQ_URL: Final = "DecisionsDeadLetterQueueUrl"
OUTPUT_EVENT_DLQ_URL: Final = "EventDeadLetterQueueUrl"
OUTPUT_AUDIT_DLQ_URL: Final = "AuditDeadLetterQueueUrl"
OUTPUT_AUDIT_LOG_GROUP_NAME: Final = "AuditLogGroupName"
OUTPUT_ALARM_TOPIC_ARN: Final = "AlarmTopicArn"
