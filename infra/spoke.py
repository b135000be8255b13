"""The spoke stack: one per member account and region, light on purpose (README "Many accounts and regions").

Two things, and nothing else: a rule on the default bus that forwards this account's and region's S3 Batch
Operations job events and CreateJob calls to the hub's approvals bus, and the role the hub's notifier and decider
assume to read, confirm, cancel and list the jobs here (approvals.names.spoke_role_name).

One template serves every account and region: the stack has no environment, no assets and no Lambda, and it is
synthesized without a bootstrap stack (BootstraplessSynthesizer), so CloudFormation StackSets with
service-managed permissions can deploy it across an organisation. ``make spoke-template`` writes it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Aws, BootstraplessSynthesizer, CfnOutput, Duration, Environment, Fn, Stack, Stage
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import nag
from infra.constants import (
    OUTPUT_FORWARDING_RULE_ARN,
    OUTPUT_SPOKE_ROLE_ARN,
    SERVICE_NAME,
    product_version,
    spoke_permissions,
    spoke_role_name,
    spoke_trust_policy,
)
from infra.hub import forward_to_bus
from infra.queues import dead_letter_queue
from infra.settings import ROOT, InfraSettingsError, SpokeSettings, cdk_json_context, context_overrides

# The longest a hub session in a spoke lasts (the hub's credentials are refreshed before they expire).
SPOKE_SESSION = Duration.hours(1)
SPOKE_ROLE_POLICY_NAME = "ActOnThisAccountsJobs"

SPOKE_ROLE_ACKNOWLEDGMENTS = (
    nag.acknowledgment(
        "IAM5[Resource::arn:<AWS::Partition>:s3:<AWS::Region>:<AWS::AccountId>:job/*]",
        "S3 Batch Operations job IDs are created at run time, so the hub's role names this account's job ARNs "
        "in this region.",
    ),
    nag.acknowledgment(
        "IAM5[Resource::*]",
        "s3:ListJobs and cloudtrail:LookupEvents support no resource-level permission (the Service Authorization "
        "Reference lists no resource type for either), so they need Resource '*'.",
    ),
)


def _sub(document: Any) -> Any:
    """``document`` with each string that names a CloudFormation pseudo parameter (``${AWS::Region}``) as an
    Fn::Sub, so CloudFormation resolves it in the account and region a StackSet deploys to."""
    if isinstance(document, dict):
        return {key: _sub(value) for key, value in document.items()}
    if isinstance(document, list):
        return [_sub(value) for value in document]
    if isinstance(document, str) and "${" in document:
        return Fn.sub(document)
    return document


class SpokeStack(Stack):
    """Forwards this account's and region's job events to the hub and lets the hub act on its jobs."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: SpokeSettings) -> None:
        super().__init__(
            scope,
            construct_id,
            description="S3 Batch Operations approvals: forwards job events to the hub and lets the hub act on jobs",
            synthesizer=BootstraplessSynthesizer(),
            analytics_reporting=False,
        )
        self.settings = settings
        hub_bus = events.EventBus.from_event_bus_arn(self, "HubBus", settings.hub_event_bus_arn)

        # Events EventBridge could not put on the hub's bus after its retries (the hub down, a policy that
        # no longer admits this account): kept 14 days, and alarmed.
        self.dead_letter_queue = dead_letter_queue(
            self, "ForwardDeadLetterQueue", used_by="the rule that forwards job events to the hub"
        )
        self.forward_rule = forward_to_bus(
            self,
            "ForwardRule",
            bus=hub_bus,
            dead_letter_queue=self.dead_letter_queue,
            description="S3 Batch Operations job events and CreateJob calls of this account and region, to the hub",
        )
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "ForwardDeadLetterQueueMessages",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=(
                "Job events of this account and region did not reach the hub's approvals bus; the hub's "
                "reconciliation still finds waiting jobs, later. Inspect the dead-letter queue."
            ),
        )

        # The role the hub assumes: trusted by the hub's notifier and decider roles only, allowed exactly
        # spoke_permissions (the sandbox checks its calls against the same documents).
        self.trust_policy = spoke_trust_policy(
            settings.hub_account_id, settings.hub_role_arns, settings.organization_id, settings.hub_partition
        )
        self.permissions = spoke_permissions(
            requester_lookup=settings.requester_lookup, job_tags=settings.job_tags, job_tag_condition=settings.job_tag
        )
        self.role = iam.CfnRole(
            self,
            "HubRole",
            role_name=spoke_role_name(settings.spoke_role_prefix, Aws.REGION),
            description=f"{SERVICE_NAME}: the hub acts on this account's S3 Batch Operations jobs in this region",
            assume_role_policy_document=self.trust_policy,
            max_session_duration=int(SPOKE_SESSION.to_seconds()),
            policies=[
                iam.CfnRole.PolicyProperty(policy_name=SPOKE_ROLE_POLICY_NAME, policy_document=_sub(self.permissions))
            ],
        )
        nag.acknowledge(self.role, *SPOKE_ROLE_ACKNOWLEDGMENTS)

        CfnOutput(self, OUTPUT_SPOKE_ROLE_ARN, value=self.role.attr_arn, description="The role the hub assumes here")
        CfnOutput(
            self,
            OUTPUT_FORWARDING_RULE_ARN,
            value=self.forward_rule.rule_arn,
            description="The rule that forwards this account's and region's job events to the hub",
        )


class SpokeStage(Stage):
    """The spoke as a CDK stage of one member account and region, for an organisation that deploys with CDK
    Pipelines (or several ``cdk deploy``s) instead of StackSets: one stage per account and region, each with the
    same settings (the hub's SpokeContext).

    ``SpokeStage(app, "analytics-us-west-2", env=Environment(account="210987654321", region="us-west-2"),
    settings=settings)``; a pipeline adds it with ``pipeline.add_stage(stage)``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, env: Environment, settings: SpokeSettings) -> None:
        super().__init__(scope, construct_id, env=env)
        self.spoke = add_spoke_stack(self, settings)


def add_spoke_stack(app: Construct, settings: SpokeSettings) -> SpokeStack:
    stack = SpokeStack(app, settings.stack_name, settings=settings)
    stack.tags.set_tag("service", SERVICE_NAME)
    stack.tags.set_tag("version", product_version())
    return stack


def build_spoke_app(context: Mapping[str, Any], *, outdir: str | None = None) -> tuple[App, SpokeStack]:
    """An app with the spoke stack only, cdk-nag's checks registered (as infra.stack.build_app). Raises
    ``InfraSettingsError`` naming a bad setting, or saying that the ``spoke`` context is missing."""
    app = App(context=dict(context), outdir=outdir)
    settings = SpokeSettings.from_context(app.node.try_get_context)
    if settings is None:
        raise InfraSettingsError(
            "context setting 'spoke' is missing: set it in cdk.json or pass -c spoke='{\"hubEventBusArn\": \"…\"}' "
            "(the hub's SpokeContext output)"
        )
    stack = add_spoke_stack(app, settings)
    nag.add_checks(app)
    return app, stack


def main(argv: list[str]) -> int:
    """``python -m infra.spoke [-c spoke='{…}'] [--outdir DIR]``: write the spoke's template (make spoke-template)."""
    outdir = str(ROOT / "cdk.out")
    if "--outdir" in argv:
        at = argv.index("--outdir")
        outdir = argv[at + 1] if at + 1 < len(argv) else outdir
        argv = argv[:at] + argv[at + 2 :]
    try:
        context = {**cdk_json_context(), **context_overrides(argv)}
        app, stack = build_spoke_app(context, outdir=outdir)
    except InfraSettingsError as exc:
        for problem in str(exc).splitlines():
            print(f"error: {problem}", file=sys.stderr)
        return 2
    app.synth()
    template = Path(outdir) / stack.template_file
    print(f"{template} (the spoke stack {stack.stack_name}; for CloudFormation StackSets, or cdk deploy)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
