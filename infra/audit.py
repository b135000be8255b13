"""Audit trail and operations: the retained audit log group and its writer (fed by the audit table's
stream), saved Logs Insights queries, alarms to an SNS topic, and a dashboard.

Audit records are JSON lines written by the audit writer (Powertools Logger) with these top-level
fields: schema_version, event_type, time, job_id, job_arn, account_id, region, operation,
object_count, actor_id, actor_name, actor_team, action, reason, status_before, status_after,
status_update_reason, slack_channel, slack_message_ts, request_id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import ArnFormat, Aws, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag
from infra.constants import (
    AUDIT_TABLE_SORT_KEY,
    AUDIT_WRITER_HANDLER,
    METRIC_APPROVAL_REQUESTED,
    METRIC_APPROVED,
    METRIC_AUDIT_TAMPERED,
    METRIC_CANCELLED,
    METRIC_DECISION_FAILED,
    METRIC_DECISION_STUCK,
    METRIC_DECISION_UNVERIFIED,
    METRIC_DUPLICATE_DECISION,
    METRIC_DUPLICATE_EVENT,
    METRIC_EVENT_DROPPED,
    METRIC_FOREIGN_TEAM,
    METRIC_REFUSED,
    METRIC_SIGNATURE_REJECTED,
    METRIC_TIME_TO_DECISION,
    METRICS_NAMESPACE,
    SERVICE_NAME,
)
from infra.lambda_defaults import LambdaDefaults
from infra.queues import dead_letter_queue
from infra.settings import InfraSettings

AUDIT_ITEM_PREFIX = "AUDIT#"
FIVE_MINUTES = Duration.minutes(5)
SIGNATURE_REJECTED_THRESHOLD = 10

# Every change to an audit item reaches the writer: an INSERT is a new record; a MODIFY (an overwrite by
# PutItem, which IAM cannot refuse without refusing inserts) or a REMOVE is tampering, which it logs and
# counts (AuditTampered, alarmed below).
AUDIT_STREAM_FILTER = {
    "dynamodb": {"Keys": {AUDIT_TABLE_SORT_KEY: {"S": lambda_.FilterRule.begins_with(AUDIT_ITEM_PREFIX)}}},
}

# Product metrics whose every occurrence needs a person: (metric, alarm ID, description).
INTEGRITY_ALARMS: tuple[tuple[str, str, str], ...] = (
    (
        METRIC_DECISION_UNVERIFIED,
        "DecisionUnverified",
        "Work reached the decisions queue without a valid Slack signature; something other than the "
        "callback sent it. The decider refused it; find the sender.",
    ),
    (
        METRIC_AUDIT_TAMPERED,
        "AuditTampered",
        "An audit item was overwritten or deleted; the audit log group holds what it said before "
        "(event audit_item_tampered).",
    ),
    (
        METRIC_DECISION_STUCK,
        "DecisionStuck",
        "A decision claim outlived its lease (its decider died) and the reconciliation finished it; "
        "check that the job ended as the person decided.",
    ),
)

LIST_STREAMS_ACKNOWLEDGMENT = nag.acknowledgment(
    "IAM5[Resource::*]",
    "dynamodb:ListStreams, which the stream event source grants, supports no resource-level "
    "permission (as with X-Ray).",
)

AUDIT_FIELDS = [
    "time",
    "event_type",
    "job_id",
    "action",
    "actor_id",
    "actor_name",
    "status_before",
    "status_after",
    "reason",
]

# name -> query; 'JOB_ID' and 'USER_ID' are placeholders to replace in the console.
AUDIT_QUERIES: dict[str, logs.QueryString] = {
    "decisions for a job": logs.QueryString(
        fields=AUDIT_FIELDS, filter_statements=["job_id = 'JOB_ID'"], sort="time asc"
    ),
    "decisions by a person": logs.QueryString(
        fields=AUDIT_FIELDS, filter_statements=["actor_id = 'USER_ID'"], sort="time desc"
    ),
    "refused attempts": logs.QueryString(
        fields=[*AUDIT_FIELDS, "actor_team", "slack_channel"],
        filter_statements=["event_type = 'decision_refused'"],
        sort="time desc",
    ),
    "last 50 decisions": logs.QueryString(
        fields=AUDIT_FIELDS, filter_statements=["event_type = 'decision_taken'"], sort="time desc", limit=50
    ),
}


class AuditTrail(Construct):
    """Copies each AUDIT# item from the audit table's stream into a retained CloudWatch log group, and
    reports any overwrite or removal of one."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InfraSettings,
        defaults: LambdaDefaults,
        table: dynamodb.ITable,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)

        self.key: kms.Key | None = _audit_log_key(self) if settings.audit_log_kms_encryption else None
        self.log_group = logs.LogGroup(
            self,
            "AuditLogs",
            retention=settings.audit_log_retention,
            encryption_key=self.key,
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.dead_letter_queue: sqs.Queue = dead_letter_queue(
            self, "AuditDeadLetterQueue", used_by="the audit writer's stream source"
        )
        # Its log group IS the audit log group: the audit records are this function's log lines.
        self.writer: lambda_.Function = defaults.function(
            self,
            "Writer",
            handler=AUDIT_WRITER_HANDLER,
            description="Writes each new audit item to the audit log group and reports changed or deleted ones",
            timeout=Duration.seconds(30),
            memory_size=256,
            environment=environment,
            log_group=self.log_group,
            # No START/END/REPORT lines between the audit records.
            system_log_level=lambda_.SystemLogLevel.WARN,
        )
        nag.acknowledge(self.writer.role, LIST_STREAMS_ACKNOWLEDGMENT)  # type: ignore[arg-type]
        # The stream mapping invokes the live alias when the writer has SnapStart (only published versions
        # are snapshotted). It is made under the function, with the ID DynamoEventSource would give it, so
        # its logical ID stays the same whichever it invokes: switching SnapStart on or off then updates the
        # mapping in place, keeping its position in the stream. A new mapping would start again at
        # TRIM_HORIZON and write up to 24 hours of audit records a second time.
        entry = defaults.entry(self.writer)
        self.stream_mapping = lambda_.EventSourceMapping(
            self.writer,
            f"DynamoDBEventSource:{Names.node_unique_id(table.node)}",
            target=entry,
            event_source_arn=table.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=100,
            retry_attempts=10,
            bisect_batch_on_error=True,
            on_failure=event_sources.SqsDlq(self.dead_letter_queue),
            filters=[lambda_.FilterCriteria.filter(AUDIT_STREAM_FILTER)],
        )
        table.grant_stream_read(entry)

        self.queries = [
            logs.QueryDefinition(
                self,
                "Query" + name.title().replace(" ", ""),
                query_definition_name=f"{SERVICE_NAME}/{name}",
                query_string=query,
                log_groups=[self.log_group],
            )
            for name, query in AUDIT_QUERIES.items()
        ]


def _audit_log_key(scope: Construct) -> kms.Key:
    key = kms.Key(
        scope,
        "AuditLogKey",
        description=f"{SERVICE_NAME} audit log group",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
    stack = Stack.of(scope)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogs",
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    return key


@dataclass(frozen=True)
class Monitored:
    """What the alarms and the dashboard watch, by display name."""

    functions: Mapping[str, lambda_.IFunction]
    dead_letter_queues: Mapping[str, sqs.IQueue]
    api: apigateway.RestApi
    rules: Mapping[str, events.IRule]
    # The custom bus a rule listens on, by the rule's display name (none: the default bus). EventBridge's
    # metrics of a rule on a custom bus carry the bus's name as a dimension too.
    rule_buses: Mapping[str, str] = field(default_factory=dict)


def product_metric(name: str, statistic: str = "Sum", period: Duration = FIVE_MINUTES) -> cloudwatch.Metric:
    """A metric the functions emit with Powertools (EMF): namespace METRICS_NAMESPACE, dimension service."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=period,
    )


def _rule_dimensions(rule: events.IRule, bus_name: str | None) -> dict[str, str]:
    """A rule's metric dimensions: its name, and its bus's unless it is on the default bus."""
    return {"EventBusName": bus_name, "RuleName": rule.rule_name} if bus_name else {"RuleName": rule.rule_name}


class Monitoring(Construct):
    """Alarms to an encrypted SNS topic (optionally mailed) and one dashboard."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings, monitored: Monitored) -> None:
        super().__init__(scope, construct_id)

        # A customer managed key: CloudWatch cannot publish to a topic under the AWS managed aws/sns key.
        # Nothing stays encrypted under it (SNS keeps no messages), so it goes with the stack (its deletion is
        # scheduled, as KMS requires) instead of costing a month's key fee for ever after an uninstall.
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{SERVICE_NAME} alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name=f"{SERVICE_NAME} alarms", master_key=self.topic_key, enforce_ssl=True
        )
        # The topic policy CDK writes replaces SNS's default one, so CloudWatch needs its own statement.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
                    },
                },
            )
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

        self.alarms: list[cloudwatch.Alarm] = []
        for name, queue in monitored.dead_letter_queues.items():
            self._alarm(
                f"{name}Messages",
                queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
                threshold=0,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                description=(
                    f"{name}: messages are waiting in this dead-letter queue; inspect them "
                    "(README: what is retried where)."
                ),
            )
        for name, function in monitored.functions.items():
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                description=f"The {name} function failed at least once in 5 minutes; see its log group.",
            )
        self._alarm(
            "Api5xx",
            monitored.api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            threshold=1,
            description="The Slack endpoint answered 5XX at least once in 5 minutes; Slack users saw an error.",
        )
        self._alarm(
            "SignatureRejected",
            product_metric(METRIC_SIGNATURE_REJECTED),
            threshold=SIGNATURE_REJECTED_THRESHOLD,
            description="At least 10 requests with a bad Slack signature in 5 minutes: a wrong signing "
            "secret after rotation, or someone probing the endpoint.",
        )
        self._alarm(
            "DecisionFailed",
            product_metric(METRIC_DECISION_FAILED),
            threshold=1,
            description="A decision could not be carried out (UpdateJobStatus failed); the job still waits.",
        )
        for metric_name, construct_id, description in INTEGRITY_ALARMS:
            self._alarm(
                construct_id,
                product_metric(metric_name),
                threshold=0,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                description=description,
            )

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", default_interval=Duration.days(7), widgets=self._widgets(monitored)
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        action = cloudwatch_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)
        return alarm

    @staticmethod
    def _widgets(monitored: Monitored) -> list[list[cloudwatch.IWidget]]:
        functions = monitored.functions.items()

        def per_function(title: str, metric: str, statistic: str) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=title,
                width=8,
                left=[
                    function.metric(metric, statistic=statistic, period=FIVE_MINUTES, label=name)
                    for name, function in functions
                ],
            )

        api = monitored.api
        return [
            [
                cloudwatch.GraphWidget(
                    title="Approval requests and decisions",
                    width=8,
                    left=[
                        product_metric(METRIC_APPROVAL_REQUESTED),
                        product_metric(METRIC_APPROVED),
                        product_metric(METRIC_CANCELLED),
                    ],
                ),
                cloudwatch.GraphWidget(
                    title="Refused, rejected and failed",
                    width=8,
                    left=[
                        product_metric(METRIC_REFUSED),
                        product_metric(METRIC_SIGNATURE_REJECTED),
                        product_metric(METRIC_DECISION_FAILED),
                    ],
                ),
                cloudwatch.GraphWidget(
                    title="Time to decision (seconds)",
                    width=8,
                    left=[
                        product_metric(METRIC_TIME_TO_DECISION, statistic="p50"),
                        product_metric(METRIC_TIME_TO_DECISION, statistic="p90"),
                        product_metric(METRIC_TIME_TO_DECISION, statistic="Maximum"),
                    ],
                ),
            ],
            [
                cloudwatch.GraphWidget(
                    title="Job events",
                    width=8,
                    left=[
                        cloudwatch.Metric(
                            namespace="AWS/Events",
                            metric_name="TriggeredRules",
                            dimensions_map=_rule_dimensions(rule, monitored.rule_buses.get(name)),
                            statistic="Sum",
                            period=FIVE_MINUTES,
                            label=name,
                        )
                        for name, rule in monitored.rules.items()
                    ],
                    right=[product_metric(METRIC_EVENT_DROPPED), product_metric(METRIC_DUPLICATE_EVENT)],
                ),
                cloudwatch.GraphWidget(
                    title="Dead-letter queue depth",
                    width=8,
                    left=[
                        queue.metric_approximate_number_of_messages_visible(
                            period=FIVE_MINUTES, statistic="Maximum", label=name
                        )
                        for name, queue in monitored.dead_letter_queues.items()
                    ],
                ),
                cloudwatch.GraphWidget(
                    title="Slack endpoint",
                    width=8,
                    left=[
                        api.metric_count(period=FIVE_MINUTES, statistic="Sum"),
                        api.metric_client_error(period=FIVE_MINUTES, statistic="Sum"),
                        api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
                    ],
                    right=[api.metric_latency(period=FIVE_MINUTES, statistic="p90")],
                ),
            ],
            [
                per_function("Lambda duration p90 (ms)", "Duration", "p90"),
                per_function("Lambda errors", "Errors", "Sum"),
                per_function("Lambda throttles", "Throttles", "Sum"),
            ],
            [
                cloudwatch.GraphWidget(
                    title="Integrity (each one alarms)",
                    width=12,
                    left=[product_metric(metric_name) for metric_name, _, _ in INTEGRITY_ALARMS],
                ),
                cloudwatch.GraphWidget(
                    title="Refused workspaces and repeated clicks",
                    width=12,
                    left=[product_metric(METRIC_FOREIGN_TEAM), product_metric(METRIC_DUPLICATE_DECISION)],
                ),
            ],
        ]
