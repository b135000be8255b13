"""Job events and reconciliation: EventBridge rules that invoke the notifier, which posts to Slack."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag, permissions
from infra.constants import JOB_EVENT_PATTERN, NOTIFIER_HANDLER
from infra.lambda_defaults import LambdaDefaults
from infra.queues import dead_letter_queue
from infra.storage import Storage

RECONCILE_EVERY = Duration.minutes(15)


def event_pattern(pattern: Mapping[str, object]) -> events.EventPattern:
    """The CDK form of a rule pattern written the way EventBridge documents it."""
    return events.EventPattern(
        source=list(pattern["source"]),  # type: ignore[call-overload]
        detail_type=list(pattern["detail-type"]),  # type: ignore[call-overload]
        detail=dict(pattern["detail"]),  # type: ignore[call-overload]
    )


class Notifier(Construct):
    """Posts an approval request to Slack when a job waits for confirmation.

    Two triggers reach the same function: S3 Batch Operations job events (delivered best effort), and a
    schedule every 15 minutes that reconciles with ListJobs so a lost event delays a request instead of
    losing it. The handler tells them apart by the event's detail-type.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        defaults: LambdaDefaults,
        storage: Storage,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)

        self.function: lambda_.Function = defaults.function(
            self,
            "Function",
            handler=NOTIFIER_HANDLER,
            description="Posts an approval request to Slack for each S3 Batch Operations job awaiting confirmation",
            timeout=Duration.seconds(60),
            memory_size=512,
            environment=environment,
        )
        storage.grant_notifier(self.function)
        self.function.add_to_role_policy(permissions.describe_job(self))
        self.function.add_to_role_policy(permissions.list_jobs())
        nag.acknowledge(
            self.function.role,  # type: ignore[arg-type]
            permissions.JOB_ARN_ACKNOWLEDGMENT,
            permissions.LIST_JOBS_ACKNOWLEDGMENT,
        )

        # Events EventBridge could not deliver after its retries.
        self.dead_letter_queue: sqs.Queue = dead_letter_queue(
            self, "EventDeadLetterQueue", used_by="the notifier's EventBridge targets"
        )

        self.job_events_rule = events.Rule(
            self,
            "JobEventsRule",
            description="S3 Batch Operations job created or status changed (CloudTrail service events)",
            event_pattern=event_pattern(JOB_EVENT_PATTERN),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=8,
                    max_event_age=Duration.hours(2),
                    dead_letter_queue=self.dead_letter_queue,
                )
            ],
        )

        self.reconcile_rule = events.Rule(
            self,
            "ReconcileSchedule",
            description="Reconcile with ListJobs in case a job event was lost",
            schedule=events.Schedule.rate(RECONCILE_EVERY),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=2,
                    # A later run supersedes an undelivered one.
                    max_event_age=RECONCILE_EVERY,
                    dead_letter_queue=self.dead_letter_queue,
                )
            ],
        )
