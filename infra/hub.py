"""The hub (README "Many accounts and regions"): the approvals event bus every account's and region's job events
reach, and what the hub's functions need to act in the member accounts (their spoke roles, their names in the
environment).

Events come to the bus two ways: the hub account's own default bus forwards them (``forward_from_default_bus``:
a single-account deployment keeps working with no spoke), and each spoke's rule puts them there from its account
and region (infra/spoke.py), admitted by the bus's resource policy: the organisation (``organizationId``), else
each listed member account.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnCondition, Duration, Fn, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constants import (
    ENV_HUB_ACCOUNT_ID,
    ENV_MEMBER_ACCOUNTS,
    ENV_SPOKE_ROLE_PREFIX,
    FORWARDED_EVENT_PATTERN,
    HUB_FUNCTIONS_ACTING_IN_SPOKES,
    hub_event_bus_name,
    hub_role_name,
    spoke_role_name,
)
from infra.notifier import EVENT_MAX_AGE, EVENT_RETRY_ATTEMPTS, event_pattern
from infra.settings import InfraSettings


def organization_statement_sid(stack_name: str) -> str:
    """The bus policy's statement for the organisation. EventBridge requires a statement ID (CDK prefixes "cdk-")
    and CloudFormation takes it as the policy's physical ID (aws/aws-cdk#29627), so it names the stack: a second
    hub in the account and region (staging beside production) gets statements of its own."""
    return f"{stack_name}-Organization"


def account_statement_sid(stack_name: str, account_id: str) -> str:
    """The bus policy's statement for one listed member account (at most 4 + 40 + 1 + 12 characters of 64)."""
    return f"{stack_name}-{account_id}"


def forward_to_bus(
    scope: Construct,
    construct_id: str,
    *,
    bus: events.IEventBus,
    dead_letter_queue: sqs.IQueue,
    description: str,
    retry_attempts: int = EVENT_RETRY_ATTEMPTS,
    max_event_age: Duration = EVENT_MAX_AGE,
) -> events.Rule:
    """A rule on this account's default bus that puts every FORWARDED_EVENT_PATTERN event on ``bus`` (through
    the role CDK makes, allowed events:PutEvents on that bus only), retried, then parked in ``dead_letter_queue``.

    CDK's EventBus target takes no retry policy (its docs say "not supported"; aws/aws-cdk#28735), while
    CloudFormation's rule target property does, so it is set on the template; without it EventBridge would retry
    for 24 hours before the dead-letter queue.
    """
    rule = events.Rule(
        scope,
        construct_id,
        description=description,
        event_pattern=event_pattern(FORWARDED_EVENT_PATTERN),
        targets=[targets.EventBus(bus, dead_letter_queue=dead_letter_queue)],
    )
    cfn_rule = rule.node.default_child
    assert isinstance(cfn_rule, events.CfnRule)
    cfn_rule.add_property_override(
        "Targets.0.RetryPolicy",
        {"MaximumRetryAttempts": retry_attempts, "MaximumEventAgeInSeconds": int(max_event_age.to_seconds())},
    )
    return rule


def spoke_role_arns(settings: InfraSettings, *, hub_account: str, hub_region: str) -> list[str]:
    """The spoke role of every listed member (account, region), a member listed without regions in the hub's own
    region. The hub's own (account, region) needs none (its functions' roles act there), but is known only when
    neither is a token, so it is left out only then; otherwise its ARN names a role the hub's own account has no
    reason to hold, and grants nothing more."""
    concrete = not Token.is_unresolved(hub_account) and not Token.is_unresolved(hub_region)
    arns = []
    for member in settings.member_accounts:
        for region in member.regions or (hub_region,):
            if concrete and (member.id, region) == (hub_account, hub_region):
                continue
            role = spoke_role_name(settings.spoke_role_prefix, region)
            arns.append(f"arn:{Aws.PARTITION}:iam::{member.id}:role/{role}")
    return arns


def hub_environment(settings: InfraSettings) -> dict[str, str]:
    """What every function reads to tell the hub's own jobs from a member's (approvals.config.Settings)."""
    environment = {ENV_HUB_ACCOUNT_ID: Aws.ACCOUNT_ID, ENV_SPOKE_ROLE_PREFIX: settings.spoke_role_prefix}
    if settings.member_accounts:
        environment[ENV_MEMBER_ACCOUNTS] = settings.member_accounts_json
    return environment


class Hub(Construct):
    """The approvals bus and its resource policy; the forwarding rule from the default bus; the grants that let
    the notifier and the decider assume the members' spoke roles."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        stack = Stack.of(self)
        # Named, so that a spoke can target it by ARN before the hub is deployed (and the SpokeContext output).
        self.bus = events.EventBus(
            self,
            "Bus",
            event_bus_name=hub_event_bus_name(stack.stack_name),
            description="S3 Batch Operations job events and CreateJob calls from every account and region served",
        )
        self.bus_policies: list[events.CfnEventBusPolicy] = []
        if settings.organization_id:
            self._admit(
                organization_statement_sid(stack.stack_name),
                iam.StarPrincipal(),
                conditions={"StringEquals": {"aws:PrincipalOrgID": settings.organization_id}},
            )
        else:
            for member in settings.member_accounts:
                policy = self._admit(
                    account_statement_sid(stack.stack_name, member.id), iam.AccountPrincipal(member.id)
                )
                # The hub's own account needs no statement (it puts events with its own role's permission), and
                # is a token at synth: CloudFormation leaves the statement out when the account is the hub's.
                policy.cfn_options.condition = CfnCondition(
                    self,
                    f"IsNotHub{member.id}",
                    expression=Fn.condition_not(Fn.condition_equals(member.id, Aws.ACCOUNT_ID)),
                )
        self.forward_rule: events.Rule | None = None

    def _admit(
        self, sid: str, principal: iam.IPrincipal, conditions: dict[str, object] | None = None
    ) -> events.CfnEventBusPolicy:
        """One statement of the bus's resource policy: ``principal`` may put events on the bus."""
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[principal],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions=conditions,
            )
        )
        policy = self.bus.node.find_child(f"cdk-{sid}").node.default_child
        assert isinstance(policy, events.CfnEventBusPolicy)
        self.bus_policies.append(policy)
        return policy

    def forward_from_default_bus(self, *, dead_letter_queue: sqs.IQueue) -> events.Rule:
        """The hub account's own job events and CreateJob calls, from its default bus to the approvals bus."""
        self.forward_rule = forward_to_bus(
            self,
            "ForwardRule",
            bus=self.bus,
            dead_letter_queue=dead_letter_queue,
            description="S3 Batch Operations job events and CreateJob calls of this account, to the approvals bus",
        )
        return self.forward_rule

    def spoke_role_arns(self) -> list[str]:
        stack = Stack.of(self)
        return spoke_role_arns(self.settings, hub_account=stack.account, hub_region=stack.region)

    def grant_assume_spoke_roles(self, *grantees: iam.IGrantable) -> None:
        """sts:AssumeRole on exactly the members' spoke roles (nothing when no member is listed)."""
        arns = self.spoke_role_arns()
        if not arns:
            return
        for grantee in grantees:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=arns)
            )

    def spoke_context(self) -> str:
        """The SpokeContext output: the JSON a spoke's synth takes as ``-c spoke='…'`` (settings.SpokeSettings)."""
        stack = Stack.of(self)
        context: dict[str, object] = {
            "hubEventBusArn": self.bus.event_bus_arn,
            "hubRoleNames": [
                hub_role_name(stack.stack_name, function, Aws.REGION) for function in HUB_FUNCTIONS_ACTING_IN_SPOKES
            ],
        }
        if self.settings.organization_id:
            context["organizationId"] = self.settings.organization_id
        context["spokeRolePrefix"] = self.settings.spoke_role_prefix
        # What the hub's own role is allowed and limited to, so that a spoke grants the same: who created a job
        # (the history lookup), the tags the policy matches on, and the tag UpdateJobStatus is limited to.
        context["requesterLookup"] = self.settings.requester_lookup
        context["jobTags"] = any(rule.match.tags for rule in self.settings.policy.rules)
        if self.settings.job_tag_condition:
            context["jobTagCondition"] = self.settings.job_tag_condition
        return stack.to_json_string(context)
