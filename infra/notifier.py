"""Job events and reconciliation: EventBridge rules that invoke the notifier, which posts to Slack."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag, permissions
from infra.constants import (
    CREATE_JOB_CALL_PATTERN,
    JOB_EVENT_PATTERN,
    JOB_EVENTS_QUEUE_MAX_RECEIVES,
    JOB_EVENTS_QUEUE_VISIBILITY_SECONDS,
    LIFECYCLE_TICK_EVENT,
    LIFECYCLE_TICK_MINUTES,
    NOTIFIER_ASYNC_RETRY_ATTEMPTS,
    NOTIFIER_HANDLER,
    NOTIFIER_MAX_CONCURRENCY,
    NOTIFIER_MAX_EVENT_AGE_SECONDS,
    NOTIFIER_TIMEOUT_SECONDS,
    RECONCILE_MINUTES,
)
from infra.lambda_defaults import LambdaDefaults
from infra.queues import dead_letter_queue
from infra.storage import Storage

RECONCILE_EVERY = Duration.minutes(RECONCILE_MINUTES)
LIFECYCLE_EVERY = Duration.minutes(LIFECYCLE_TICK_MINUTES)
# EventBridge's delivery of AWS events (job events, CreateJob calls) to the notifier.
EVENT_RETRY_ATTEMPTS = 8
EVENT_MAX_AGE = Duration.hours(2)


def event_pattern(pattern: Mapping[str, object]) -> events.EventPattern:
    """The CDK form of a rule pattern written the way EventBridge documents it."""
    return events.EventPattern(
        source=list(pattern["source"]),  # type: ignore[call-overload]
        detail_type=list(pattern["detail-type"]),  # type: ignore[call-overload]
        detail=dict(pattern["detail"]),  # type: ignore[call-overload]
    )


class Notifier(Construct):
    """Posts an approval request to Slack when a job waits for confirmation.

    Four triggers reach the same function: S3 Batch Operations job events (delivered best effort), the
    CreateJob calls that say who created a job (only where a trail records management events), a
    schedule every 15 minutes that reconciles with ListJobs so a lost event delays a request instead of
    losing it, and the lifecycle tick every minute (reminders, escalation, expiry). The handler tells
    them apart by the event's detail-type.

    The two event rules (on the hub's approvals bus, which every account's and region's events reach: infra/hub.py)
    put their events on the job events queue, which at most
    ``NOTIFIER_MAX_CONCURRENCY`` notifiers drain at once: with each post waiting for the channel's turn
    (adapters/pacing.py), 200 jobs suspended in one second are posted at Slack's pace of about one a
    second, none lost and none meeting a 429. Three queues catch what goes wrong: the rule targets'
    dead-letter queue holds events EventBridge could not put on the queue; the job events dead-letter
    queue, events the notifier kept failing on (after ``JOB_EVENTS_QUEUE_MAX_RECEIVES`` receives); the
    function's on-failure destination, schedule runs Lambda gave up on.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        defaults: LambdaDefaults,
        storage: Storage,
        environment: Mapping[str, str],
        event_bus: events.IEventBus | None = None,
        deciding_rules: tuple[str, ...] = (),
        job_tag: tuple[str, str] | None = None,
    ) -> None:
        """``event_bus``: where the job events and CreateJob calls arrive (the hub's approvals bus; None: the
        default bus); ``deciding_rules``: the policy's rules whose action is deny or approve, or whose expiry
        cancels the job (none: the notifier never changes a job); ``job_tag``: the jobTagCondition its
        UpdateJobStatus is limited to, as the decider's."""
        super().__init__(scope, construct_id)

        self.function: lambda_.Function = defaults.function(
            self,
            "Function",
            handler=NOTIFIER_HANDLER,
            description="Posts an approval request to Slack for each S3 Batch Operations job awaiting confirmation",
            timeout=Duration.seconds(NOTIFIER_TIMEOUT_SECONDS),
            memory_size=512,
            environment=environment,
        )
        # What invokes it: its live alias when it has SnapStart, else the function itself.
        self.entry = defaults.entry(self.function)
        storage.grant_notifier(self.function)
        self.function.add_to_role_policy(permissions.describe_job(self))
        # The notifier evaluates the approval policy, whose tags matcher reads the job's tags.
        self.function.add_to_role_policy(permissions.get_job_tagging(self))
        self.function.add_to_role_policy(permissions.list_jobs())
        if deciding_rules:
            # A policy rule that denies or approves, and an expiry that cancels, decide here, through the
            # decider's own exactly-once path (models/slack.py SystemOrigin): only then may the notifier
            # change a job.
            self.function.add_to_role_policy(permissions.update_job_status(self, job_tag))
        nag.acknowledge(
            self.function.role,  # type: ignore[arg-type]
            permissions.JOB_ARN_ACKNOWLEDGMENT,
            permissions.LIST_JOBS_ACKNOWLEDGMENT,
        )

        # Events EventBridge could not deliver after its retries.
        self.dead_letter_queue: sqs.Queue = dead_letter_queue(
            self, "EventDeadLetterQueue", used_by="the notifier's EventBridge targets"
        )

        # Schedule runs Lambda accepted but the function failed on after Lambda's retries, or that aged out.
        self.failure_queue: sqs.Queue = dead_letter_queue(
            self, "NotifierFailureQueue", used_by="the notifier's asynchronous invocations (on-failure destination)"
        )

        # Job events and CreateJob calls, drained by a few notifiers at once.
        self.job_events_dead_letter_queue: sqs.Queue = dead_letter_queue(self, "JobEventsDeadLetterQueue")
        self.job_events_queue = sqs.Queue(
            self,
            "JobEventsQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(JOB_EVENTS_QUEUE_VISIBILITY_SECONDS),
            # S3 gives up on a Suspended job after weeks; the events stay as long as SQS keeps anything.
            retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=JOB_EVENTS_QUEUE_MAX_RECEIVES, queue=self.job_events_dead_letter_queue
            ),
        )
        self.entry.add_event_source(
            event_sources.SqsEventSource(
                self.job_events_queue,
                batch_size=1,
                report_batch_item_failures=True,
                max_concurrency=NOTIFIER_MAX_CONCURRENCY,
            )
        )
        self.entry.configure_async_invoke(
            retry_attempts=NOTIFIER_ASYNC_RETRY_ATTEMPTS,
            max_event_age=Duration.seconds(NOTIFIER_MAX_EVENT_AGE_SECONDS),
            on_failure=destinations.SqsDestination(self.failure_queue),
        )

        self.job_events_rule = events.Rule(
            self,
            "JobEventsRule",
            description="S3 Batch Operations job created or status changed (CloudTrail service events)",
            event_bus=event_bus,
            event_pattern=event_pattern(JOB_EVENT_PATTERN),
            targets=[self._event_target()],
        )

        # Who created a job: the CreateJob call, delivered only where a trail records management events.
        # Same target settings as the job events: the notifier tells the two apart by detail-type.
        self.create_job_calls_rule = events.Rule(
            self,
            "CreateJobCallsRule",
            description="S3 Batch Operations CreateJob calls (CloudTrail management events): who created a job",
            event_bus=event_bus,
            event_pattern=event_pattern(CREATE_JOB_CALL_PATTERN),
            targets=[self._event_target()],
        )

        self.reconcile_rule = self._schedule(
            "ReconcileSchedule", "Reconcile with ListJobs in case a job event was lost", RECONCILE_EVERY
        )

        # Reminders, escalation and expiry (approvals.domain.sweep): every minute, the due requests. A tick
        # that fails is retried by Lambda, then parked on the on-failure queue (alarmed); nothing is lost
        # meanwhile, as the due steps stay due in the state index for the next tick.
        self.lifecycle_rule = self._schedule(
            "LifecycleSchedule",
            "Remind, escalate and expire pending approval requests whose next step is due",
            LIFECYCLE_EVERY,
            event=events.RuleTargetInput.from_object(dict(LIFECYCLE_TICK_EVENT)),
        )

    def _schedule(
        self, construct_id: str, description: str, every: Duration, event: events.RuleTargetInput | None = None
    ) -> events.Rule:
        """A schedule that invokes the notifier (asynchronously) with ``event``, else EventBridge's own
        Scheduled Event; an undelivered run is superseded by the next one, so it is given up after ``every``."""
        return events.Rule(
            self,
            construct_id,
            description=description,
            schedule=events.Schedule.rate(every),
            targets=[
                targets.LambdaFunction(
                    self.entry,
                    event=event,
                    retry_attempts=2,
                    max_event_age=every,
                    dead_letter_queue=self.dead_letter_queue,
                )
            ],
        )

    def _event_target(self) -> targets.SqsQueue:
        """How an AWS event reaches the notifier: on the job events queue; EventBridge retries putting it
        there for two hours, then parks it in the event dead-letter queue."""
        return targets.SqsQueue(
            self.job_events_queue,
            retry_attempts=EVENT_RETRY_ATTEMPTS,
            max_event_age=EVENT_MAX_AGE,
            dead_letter_queue=self.dead_letter_queue,
        )
