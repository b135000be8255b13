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

# The CreateJob management event: the only record of who created a job (the job events carry S3 itself as
# the identity, and DescribeJob has no creator). EventBridge receives it only where a CloudTrail trail with
# logging on records management events in this region (an organisation trail counts). The CDK rule uses
# this object; a local event router that routes CreateJob calls should take the same one.
CREATE_JOB_CALL_PATTERN: Final[dict[str, Any]] = {
    "source": ["aws.s3"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {
        "eventSource": ["s3.amazonaws.com"],
        "eventName": ["CreateJob"],
    },
}

# One hub, many accounts (README "Many accounts and regions"). Each spoke account and region forwards these
# events from its default bus to the hub's approvals bus; the hub's own account forwards from its default bus
# too. One rule, so one pattern: every event either pattern above matches (and nothing else S3 sends).
FORWARDED_EVENT_PATTERN: Final[dict[str, Any]] = {
    "source": ["aws.s3"],
    "detail-type": [*JOB_EVENT_PATTERN["detail-type"], *CREATE_JOB_CALL_PATTERN["detail-type"]],
    "detail": {
        "eventSource": ["s3.amazonaws.com"],
        "eventName": [*JOB_EVENT_PATTERN["detail"]["eventName"], *CREATE_JOB_CALL_PATTERN["detail"]["eventName"]],
    },
}
DEFAULT_SPOKE_STACK_NAME: Final = "S3BatchApprovalsSpoke"


def hub_event_bus_name(stack_name: str) -> str:
    """The hub's approvals bus, named so that a spoke can target it by ARN before it is deployed."""
    return f"{stack_name}-jobs"


# Lambda entry points (module.function inside the bundle; the bundle root is lambdas/).
NOTIFIER_HANDLER: Final = "approvals.handlers.notifier.handler"
CALLBACK_HANDLER: Final = "approvals.handlers.callback.handler"
DECIDER_HANDLER: Final = "approvals.handlers.decider.handler"
AUDIT_WRITER_HANDLER: Final = "approvals.handlers.audit_writer.handler"

# Tables. The requests table holds one REQUEST item per job plus its AUDIT# items.
REQUESTS_TABLE_PARTITION_KEY: Final = "pk"
REQUESTS_TABLE_SORT_KEY: Final = "sk"
REQUESTS_TABLE_TTL_ATTRIBUTE: Final = "expires_at"
# Audit records live in their own table, insert-only for every function (a resource policy denies
# deletes and updates; the audit writer alarms on any overwrite or removal it sees on the stream).
AUDIT_TABLE_PARTITION_KEY: Final = "pk"
AUDIT_TABLE_SORT_KEY: Final = "sk"
# A sparse index of the requests whose decision is being applied: the reconciliation finds claims left
# past their lease (the holder died and its message was dead-lettered) and finishes them.
REQUESTS_DECIDING_INDEX: Final = "DecidingIndex"
REQUESTS_DECIDING_INDEX_PARTITION_KEY: Final = "deciding"
REQUESTS_DECIDING_INDEX_SORT_KEY: Final = "deciding_since"
# The lifecycle tick: every minute the schedule hands the notifier this event (a constant input), and the
# notifier reminds, escalates and expires the requests whose next step is due (approvals.domain.sweep).
LIFECYCLE_TICK_MINUTES: Final = 1
# The state index: one sparse index, overloaded (lambdas/approvals/adapters/store.py says what it lists), so
# that an upgrade adds a single index: CloudFormation cannot add two global secondary indexes in one update.
# Open requests by when their next lifecycle step is due (the lifecycle sweep, the Home tab), decided ones by
# when (recently decided), and the REQUESTER items by creator ("Your jobs").
REQUESTS_STATE_INDEX: Final = "StateIndex"
REQUESTS_STATE_INDEX_PARTITION_KEY: Final = "listed"
REQUESTS_STATE_INDEX_SORT_KEY: Final = "listed_at"
# Every index of the requests table: (name, partition key, sort key), all string keys, all projecting ALL.
REQUESTS_INDEXES: Final = (
    (REQUESTS_DECIDING_INDEX, REQUESTS_DECIDING_INDEX_PARTITION_KEY, REQUESTS_DECIDING_INDEX_SORT_KEY),
    (REQUESTS_STATE_INDEX, REQUESTS_STATE_INDEX_PARTITION_KEY, REQUESTS_STATE_INDEX_SORT_KEY),
)
IDEMPOTENCY_TABLE_PARTITION_KEY: Final = "id"
IDEMPOTENCY_TABLE_TTL_ATTRIBUTE: Final = "expiration"

# The Slack route behind API Gateway.
SLACK_INTERACTIONS_PATH: Final = "slack/interactions"

# The approver's queue (App Home and the slash command): two more routes on the same API and callback, the
# slash command's name (a setting), and the environment variable that carries it.
SLACK_EVENTS_PATH: Final = "slack/events"
SLACK_COMMANDS_PATH: Final = "slack/commands"
ENV_SLASH_COMMAND: Final = "SLASH_COMMAND"

# Environment variables the functions read (approvals.config.Settings declares each one).
ENV_SLACK_SECRET_NAME: Final = "SLACK_SECRET_NAME"
ENV_SLACK_CHANNEL_ID: Final = "SLACK_CHANNEL_ID"
ENV_REQUESTS_TABLE_NAME: Final = "REQUESTS_TABLE_NAME"
ENV_IDEMPOTENCY_TABLE_NAME: Final = "IDEMPOTENCY_TABLE_NAME"
ENV_DECISIONS_QUEUE_URL: Final = "DECISIONS_QUEUE_URL"
ENV_APPROVER_USER_IDS: Final = "APPROVER_USER_IDS"
ENV_APPROVER_GROUP_IDS: Final = "APPROVER_GROUP_IDS"
ENV_LARGE_JOB_THRESHOLD: Final = "LARGE_JOB_THRESHOLD"
ENV_AUDIT_TABLE_NAME: Final = "AUDIT_TABLE_NAME"
ENV_SLACK_TEAM_ID: Final = "SLACK_TEAM_ID"
ENV_DECISION_LEASE_SECONDS: Final = "DECISION_LEASE_SECONDS"
# The hub: its own account (acted in with the functions' own roles), the member accounts and regions it serves
# (JSON: [{"id": "111111111111", "name": "data", "regions": ["us-east-1"]}]) and the spoke roles' name prefix.
ENV_HUB_ACCOUNT_ID: Final = "HUB_ACCOUNT_ID"
ENV_MEMBER_ACCOUNTS: Final = "MEMBER_ACCOUNTS"
ENV_SPOKE_ROLE_PREFIX: Final = "SPOKE_ROLE_PREFIX"
# The notifier's fallback for a requester the CreateJob event did not bring: CloudTrail's event history
# (LookupEvents), or nothing.
ENV_REQUESTER_LOOKUP: Final = "REQUESTER_LOOKUP"
REQUESTER_LOOKUP_CLOUDTRAIL: Final = "cloudtrail"
REQUESTER_LOOKUP_OFF: Final = "off"

# Timing of the decision path. A claim is held for the lease; the decider must finish within it, and
# the queue must not redeliver a message before the lease of the claim it took has run out, or a
# redelivery of a crashed holder's click would find the claim still held.
DECIDER_TIMEOUT_SECONDS: Final = 60
DEFAULT_DECISION_LEASE_SECONDS: Final = 120
DECISIONS_QUEUE_VISIBILITY_SECONDS: Final = DECIDER_TIMEOUT_SECONDS * 6  # AWS's advice for an event source
DECISIONS_QUEUE_MAX_RECEIVES: Final = 5  # then the dead-letter queue

# The job events queue (EventBridge → SQS → notifier): a few notifiers at once, each taking the channel's
# posting turn (adapters/pacing.py), so a burst drains at Slack's pace; a failed event comes back after the
# visibility timeout (AWS's advice: six times the function's timeout), and after its receives, dead-letters.
NOTIFIER_TIMEOUT_SECONDS: Final = 60
NOTIFIER_MAX_CONCURRENCY: Final = 5
JOB_EVENTS_QUEUE_VISIBILITY_SECONDS: Final = NOTIFIER_TIMEOUT_SECONDS * 6
JOB_EVENTS_QUEUE_MAX_RECEIVES: Final = 5
# Seconds between two messages to one Slack channel (about one a second, as Slack allows).
ENV_SLACK_POST_INTERVAL_SECONDS: Final = "SLACK_POST_INTERVAL_SECONDS"

# Lambda's asynchronous invocation (the reconciliation schedule → notifier): function errors are retried
# this many times by Lambda, then the event goes to the on-failure destination; older events go there too.
NOTIFIER_ASYNC_RETRY_ATTEMPTS: Final = 2
NOTIFIER_MAX_EVENT_AGE_SECONDS: Final = 2 * 60 * 60


ENV_DECISION_STUCK_AFTER_SECONDS: Final = "DECISION_STUCK_AFTER_SECONDS"


def decision_stuck_after(
    lease: int,
    visibility_timeout: int = DECISIONS_QUEUE_VISIBILITY_SECONDS,
    max_receives: int = DECISIONS_QUEUE_MAX_RECEIVES,
) -> int:
    """When the reconciliation may finish a claim: once its message cannot be delivered again (every
    receive used, so it was deleted or dead-lettered). Sooner, it could reopen a request whose click SQS
    then redelivers and applies, after the person was told to decide again."""
    return visibility_timeout * max_receives + lease


def check_decision_timing(*, visibility_timeout: int, lease: int, function_timeout: int) -> None:
    """Raise ValueError, naming the values, unless the decision path's timing is safe:

    - the lease outlasts one decider invocation (a live holder is never taken over);
    - the queue's visibility timeout exceeds the lease plus one invocation (a redelivered message of a
      holder that died finds its claim expired and takes it over, instead of waiting behind it).
    """
    if lease <= function_timeout:
        raise ValueError(
            f"decision lease ({lease} s) must exceed the decider's timeout ({function_timeout} s): "
            "a running decider could otherwise be taken over"
        )
    if visibility_timeout <= lease + function_timeout:
        raise ValueError(
            f"decisions queue visibility timeout ({visibility_timeout} s) must exceed the decision lease "
            f"({lease} s) plus the decider's timeout ({function_timeout} s): a redelivery would otherwise "
            "find the claim still held"
        )


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
DEFAULT_SLASH_COMMAND: Final[str] = _names.DEFAULT_SLASH_COMMAND
SLASH_COMMAND_PATTERN: Final[str] = _names.SLASH_COMMAND_PATTERN
RECONCILE_MINUTES: Final[int] = _names.RECONCILE_MINUTES
DEFAULT_SPOKE_ROLE_PREFIX: Final[str] = _names.DEFAULT_SPOKE_ROLE_PREFIX
ROLE_NAME_PATTERN: Final[str] = _names.ROLE_NAME_PATTERN
SPOKE_ROLE_PREFIX_MAX: Final[int] = _names.SPOKE_ROLE_PREFIX_MAX
HUB_FUNCTIONS_ACTING_IN_SPOKES: Final[tuple[str, ...]] = _names.HUB_FUNCTIONS_ACTING_IN_SPOKES
METRIC_ACCOUNT_UNREACHABLE: Final[str] = _names.METRIC_ACCOUNT_UNREACHABLE
spoke_role_name = _names.spoke_role_name
hub_role_name = _names.hub_role_name


def product_version() -> str:
    """The product's version, as lambdas/approvals/__init__.py declares it (read as text: infra never imports
    the functions' package)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "lambdas" / "approvals" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if found is None:
        raise RuntimeError("lambdas/approvals/__init__.py declares no __version__")
    return found[1]


LIFECYCLE_TICK_EVENT: Final[dict[str, str]] = {"source": _names.SERVICE_NAME, "detail-type": _names.LIFECYCLE_TICK}
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
METRIC_DECISION_UNVERIFIED: Final[str] = _names.METRIC_DECISION_UNVERIFIED
METRIC_DUPLICATE_DECISION: Final[str] = _names.METRIC_DUPLICATE_DECISION
METRIC_DECISION_STUCK: Final[str] = _names.METRIC_DECISION_STUCK
METRIC_AUDIT_TAMPERED: Final[str] = _names.METRIC_AUDIT_TAMPERED
METRIC_FOREIGN_TEAM: Final[str] = _names.METRIC_FOREIGN_TEAM
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
OUTPUT_AUDIT_TABLE_NAME: Final = "AuditTableName"
OUTPUT_NOTIFIER_FAILURES_URL: Final = "NotifierFailuresQueueUrl"
OUTPUT_JOB_EVENTS_DLQ_URL: Final = "JobEventsDeadLetterQueueUrl"
# One of the two: the trail the stack created (createTrail), or what the CreateJob rule needs instead.
OUTPUT_REQUESTER_TRAIL_ARN: Final = "RequesterTrailArn"
OUTPUT_REQUESTER_TRAIL_NEEDED: Final = "RequesterTrailNeeded"
# The hub: its approvals bus, and the context a spoke's synth needs (JSON, for `-c spoke=...`).
OUTPUT_EVENT_BUS_ARN: Final = "ApprovalsEventBusArn"
OUTPUT_SPOKE_CONTEXT: Final = "SpokeContext"

# How many decider invocations the decisions queue's event source runs at once (its maximum concurrency,
# which reserves nothing from the account); the sandbox's queue pump runs as many.
DECIDER_MAX_CONCURRENCY: Final = 5


def hub_role_arns(hub_account_id: str, stack_name: str, hub_region: str, partition: str = "aws") -> list[str]:
    """The ARNs of the hub functions' roles that act in member accounts (names: approvals.names.hub_role_name)."""
    return [
        f"arn:{partition}:iam::{hub_account_id}:role/{hub_role_name(stack_name, function, hub_region)}"
        for function in HUB_FUNCTIONS_ACTING_IN_SPOKES
    ]


def spoke_trust_policy(
    hub_account_id: str, hub_role_arns: list[str], organization_id: str | None = None, partition: str = "aws"
) -> dict[str, Any]:
    """Who may assume a spoke role: only the hub functions' roles (by ``aws:PrincipalArn``, so the spoke deploys
    before, and survives a redeploy of, the hub), and, when given, only from inside the organisation.

    The spoke stack's role carries exactly this document, and the sandbox's STS checks AssumeRole against it.
    """
    conditions: dict[str, Any] = {"ArnEquals": {"aws:PrincipalArn": list(hub_role_arns)}}
    if organization_id:
        conditions["StringEquals"] = {"aws:PrincipalOrgID": organization_id}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{hub_account_id}:root"},
                "Action": "sts:AssumeRole",
                "Condition": conditions,
            }
        ],
    }


def spoke_permissions(
    *,
    requester_lookup: bool = True,
    job_tags: bool = False,
    job_tag_condition: tuple[str, str] | None = None,
    partition: str = "${AWS::Partition}",
    region: str = "${AWS::Region}",
    account: str = "${AWS::AccountId}",
) -> dict[str, Any]:
    """What a spoke role may do, and nothing else: read and confirm or cancel this account's jobs in this region,
    list them (ListJobs takes no resource), and, when on, read CloudTrail's event history (who created a job) and
    the jobs' tags (when the hub's policy matches on tags). ``job_tag_condition`` (key, value) limits
    UpdateJobStatus to jobs carrying that tag, as the hub's own jobTagCondition does.

    The spoke stack's role carries this document (with CloudFormation's pseudo parameters); the sandbox's S3
    emulator checks a spoke role's calls against it.
    """
    jobs = f"arn:{partition}:s3:{region}:{account}:job/*"
    update: dict[str, Any] = {
        "Sid": "ConfirmOrCancel",
        "Effect": "Allow",
        "Action": "s3:UpdateJobStatus",
        "Resource": jobs,
    }
    if job_tag_condition is not None:
        update["Condition"] = {"StringEquals": {f"aws:ResourceTag/{job_tag_condition[0]}": job_tag_condition[1]}}
    read = ["s3:DescribeJob", *(["s3:GetJobTagging"] if job_tags else [])]
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadJobs", "Effect": "Allow", "Action": read, "Resource": jobs},
        update,
        {"Sid": "ListJobs", "Effect": "Allow", "Action": "s3:ListJobs", "Resource": "*"},
    ]
    if requester_lookup:
        statements.append(
            {"Sid": "WhoCreatedAJob", "Effect": "Allow", "Action": "cloudtrail:LookupEvents", "Resource": "*"}
        )
    return {"Version": "2012-10-17", "Statement": statements}


# The hub's default stack name (the stackName setting), which a spoke derives the hub's role names from.
DEFAULT_STACK_NAME: Final = "S3BatchApprovals"
# The longest region name a role name must leave room for (the one SPOKE_ROLE_PREFIX_MAX is sized for).
LONGEST_REGION_NAME_LENGTH: Final[int] = 64 - 1 - SPOKE_ROLE_PREFIX_MAX
# The spoke stack's outputs: the role the hub assumes there, and the rule that forwards to the hub's bus.
OUTPUT_SPOKE_ROLE_ARN: Final = "SpokeRoleArn"
OUTPUT_FORWARDING_RULE_ARN: Final = "ForwardingRuleArn"
