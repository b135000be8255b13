"""The stack composes the constructs; ``build_app`` is the one way to build it (app.py and tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Annotations, App, CfnOutput, Stack
from constructs import Construct

from infra import nag
from infra.audit import AuditTrail, Monitored, Monitoring
from infra.constants import (
    ENV_AUDIT_TABLE_NAME,
    ENV_DECISION_LEASE_SECONDS,
    ENV_DECISION_STUCK_AFTER_SECONDS,
    ENV_IDEMPOTENCY_TABLE_NAME,
    ENV_LARGE_JOB_THRESHOLD,
    ENV_REQUESTER_LOOKUP,
    ENV_REQUESTS_TABLE_NAME,
    ENV_SLACK_CHANNEL_ID,
    ENV_SLACK_SECRET_NAME,
    ENV_SLASH_COMMAND,
    OUTPUT_ALARM_TOPIC_ARN,
    OUTPUT_AUDIT_DLQ_URL,
    OUTPUT_AUDIT_LOG_GROUP_NAME,
    OUTPUT_AUDIT_TABLE_NAME,
    OUTPUT_DECISIONS_DLQ_URL,
    OUTPUT_DECISIONS_QUEUE_URL,
    OUTPUT_EVENT_BUS_ARN,
    OUTPUT_EVENT_DLQ_URL,
    OUTPUT_IDEMPOTENCY_TABLE_NAME,
    OUTPUT_JOB_EVENTS_DLQ_URL,
    OUTPUT_NOTIFIER_FAILURES_URL,
    OUTPUT_REQUESTER_TRAIL_ARN,
    OUTPUT_REQUESTER_TRAIL_NEEDED,
    OUTPUT_REQUESTS_TABLE_NAME,
    OUTPUT_SLACK_INTERACTIVITY_URL,
    OUTPUT_SPOKE_CONTEXT,
    SERVICE_NAME,
    decision_stuck_after,
    product_version,
)
from infra.hub import Hub, hub_environment
from infra.lambda_defaults import LambdaDefaults
from infra.notifier import Notifier
from infra.requesters import RequesterCapture
from infra.settings import InfraSettings
from infra.slack_api import SlackApi
from infra.storage import Storage

# Said by a stack output when the stack creates no trail.
TRAIL_NEEDED = (
    "CreateJob events reach EventBridge only where a CloudTrail trail records write management events in this "
    "region (an organisation trail counts). Without one, the requester comes from CloudTrail's event history "
    "(requesterLookup), minutes later."
)


PLACEHOLDER_WARNING = "s3-batch-approvals:notReadyToDeploy"


class ApprovalsStack(Stack):
    """Slack sign-off for S3 Batch Operations jobs that wait for confirmation."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Human sign-off from Slack before an Amazon S3 Batch Operations job runs",
        )
        self.settings = settings
        # A deployment nobody can use (the placeholder channel or workspace, nobody to approve) is said loudly
        # at every synth; `make deploy` refuses it (infra/deploy_guard.py).
        for problem in settings.placeholders():
            Annotations.of(self).add_warning_v2(PLACEHOLDER_WARNING, f"Not ready to deploy: {problem}.")

        self.storage = Storage(self, "Storage", settings=settings)
        # The approvals bus every served account and region forwards its job events to (infra/hub.py).
        self.hub = Hub(self, "Hub", settings=settings)
        self.defaults = LambdaDefaults(self, "LambdaDefaults", settings=settings)
        # What every function's settings model reads (approvals.config.Settings requires the table names
        # of all of them; a name grants nothing: each role gets only its own actions).
        environment = {
            ENV_SLACK_SECRET_NAME: settings.slack_secret_name,
            ENV_SLACK_CHANNEL_ID: settings.slack_channel_id,
            ENV_REQUESTS_TABLE_NAME: self.storage.requests_table.table_name,
            ENV_AUDIT_TABLE_NAME: self.storage.audit_table.table_name,
            ENV_IDEMPOTENCY_TABLE_NAME: self.storage.idempotency_table.table_name,
            ENV_LARGE_JOB_THRESHOLD: str(settings.large_job_threshold),
            # The Home views every function refreshes name the slash command.
            ENV_SLASH_COMMAND: settings.slash_command,
            # Which account is the hub's own, and which member accounts and regions it acts in (spoke roles).
            **hub_environment(settings),
        }

        self.notifier = Notifier(
            self,
            "Notifier",
            defaults=self.defaults,
            storage=self.storage,
            # The reconciliation finishes decision claims held past the point where their message could still
            # come back from the decisions queue.
            environment={
                **environment,
                ENV_DECISION_LEASE_SECONDS: str(settings.decision_lease_seconds),
                ENV_DECISION_STUCK_AFTER_SECONDS: str(decision_stuck_after(settings.decision_lease_seconds)),
                ENV_REQUESTER_LOOKUP: settings.requester_lookup_mode,
            },
            event_bus=self.hub.bus,
            # Rules that decide themselves (deny, approve) and rules whose expiry cancels the job.
            deciding_rules=tuple(
                rule.name
                for rule in settings.policy.rules
                if rule.action != "require_approval" or rule.expiry.action == "cancel"
            ),
            job_tag=settings.job_tag,
        )
        # The hub account's own events, from its default bus (a single-account deployment needs no spoke).
        self.forward_rule = self.hub.forward_from_default_bus(dead_letter_queue=self.notifier.dead_letter_queue)
        self.requesters = RequesterCapture(self, "Requesters", settings=settings, notifier=self.notifier)
        self.slack_api = SlackApi(
            self,
            "SlackApi",
            settings=settings,
            defaults=self.defaults,
            storage=self.storage,
            environment=environment,
        )
        # The two functions that act on jobs, in member accounts through their spoke roles.
        self.hub.grant_assume_spoke_roles(self.notifier.function, self.slack_api.decider)
        self.audit = AuditTrail(
            self,
            "Audit",
            settings=settings,
            defaults=self.defaults,
            table=self.storage.audit_table,
            environment=environment,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            monitored=Monitored(
                # The functions, not their live aliases (snapStart): Lambda's metrics by function name
                # aggregate every version and alias, so errors and throttles through an alias alarm here.
                functions={
                    "Notifier": self.notifier.function,
                    "Callback": self.slack_api.callback,
                    "Decider": self.slack_api.decider,
                    "AuditWriter": self.audit.writer,
                },
                dead_letter_queues={
                    "EventDeadLetterQueue": self.notifier.dead_letter_queue,
                    "NotifierFailureQueue": self.notifier.failure_queue,
                    "JobEventsDeadLetterQueue": self.notifier.job_events_dead_letter_queue,
                    "DecisionsDeadLetterQueue": self.slack_api.decisions_dead_letter_queue,
                    "AuditDeadLetterQueue": self.audit.dead_letter_queue,
                },
                api=self.slack_api.api,
                rules={
                    "Forwarded to the approvals bus": self.forward_rule,
                    "Job events": self.notifier.job_events_rule,
                    "CreateJob calls": self.notifier.create_job_calls_rule,
                    "Reconcile schedule": self.notifier.reconcile_rule,
                },
                rule_buses={
                    "Job events": self.hub.bus.event_bus_name,
                    "CreateJob calls": self.hub.bus.event_bus_name,
                },
            ),
        )

        outputs = {
            OUTPUT_SLACK_INTERACTIVITY_URL: (
                self.slack_api.interactions_url,
                "Paste into the Slack app's Interactivity Request URL (or run make slack-manifest)",
            ),
            OUTPUT_REQUESTS_TABLE_NAME: (self.storage.requests_table.table_name, "Approval requests, one per job"),
            OUTPUT_AUDIT_TABLE_NAME: (self.storage.audit_table.table_name, "Audit records (insert-only)"),
            OUTPUT_IDEMPOTENCY_TABLE_NAME: (self.storage.idempotency_table.table_name, "Powertools idempotency"),
            OUTPUT_DECISIONS_QUEUE_URL: (self.slack_api.decisions_queue.queue_url, "Decisions to carry out"),
            OUTPUT_DECISIONS_DLQ_URL: (
                self.slack_api.decisions_dead_letter_queue.queue_url,
                "Decisions that failed 5 times",
            ),
            OUTPUT_EVENT_DLQ_URL: (self.notifier.dead_letter_queue.queue_url, "Undelivered job events"),
            OUTPUT_JOB_EVENTS_DLQ_URL: (
                self.notifier.job_events_dead_letter_queue.queue_url,
                "Job events and CreateJob calls the notifier failed on 5 times",
            ),
            OUTPUT_NOTIFIER_FAILURES_URL: (
                self.notifier.failure_queue.queue_url,
                "Reconciliation runs the notifier failed on after Lambda's retries",
            ),
            OUTPUT_AUDIT_DLQ_URL: (self.audit.dead_letter_queue.queue_url, "Audit stream batches that failed"),
            OUTPUT_AUDIT_LOG_GROUP_NAME: (self.audit.log_group.log_group_name, "The audit trail"),
            OUTPUT_ALARM_TOPIC_ARN: (self.monitoring.topic.topic_arn, "Subscribe to receive alarms"),
            OUTPUT_EVENT_BUS_ARN: (
                self.hub.bus.event_bus_arn,
                "The approvals bus: each spoke's rule forwards its account's and region's job events here",
            ),
            OUTPUT_SPOKE_CONTEXT: (
                self.hub.spoke_context(),
                "The spoke stack's settings: pass as -c spoke='<this>' (or make spoke-template SPOKE='<this>')",
            ),
        }
        if self.requesters.trail is not None:
            outputs[OUTPUT_REQUESTER_TRAIL_ARN] = (
                self.requesters.trail.trail_arn,
                "The trail that puts CreateJob calls on EventBridge (who created a job)",
            )
        else:
            outputs[OUTPUT_REQUESTER_TRAIL_NEEDED] = (
                TRAIL_NEEDED,
                "The CreateJob rule receives events only from a trail; createTrail=true makes one",
            )
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)


def build_app(context: Mapping[str, Any], *, outdir: str | None = None) -> tuple[App, ApprovalsStack]:
    """Build the app with cdk-nag's AWS Solutions checks registered: an unacknowledged finding makes
    ``app.synth()`` raise.

    ``context`` is usually cdk.json's context plus overrides; the CDK CLI's own context (cdk.json and
    ``-c``) takes precedence when it runs the app. Raises ``InfraSettingsError`` naming a bad setting.
    """
    app = App(context=dict(context), outdir=outdir)
    settings = InfraSettings.from_context(app.node.try_get_context)
    stack = ApprovalsStack(app, settings.stack_name, settings=settings)
    stack.tags.set_tag("service", SERVICE_NAME)
    stack.tags.set_tag("version", product_version())
    nag.add_checks(app)
    return app, stack
