"""The Slack side: the interactivity, Events API and slash command endpoints, the callback that acknowledges
them within Slack's 3 s, and the decider that carries out a decision from the decisions queue (and
publishes Home tabs and answers slash commands)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag, permissions
from infra.constants import (
    CALLBACK_HANDLER,
    DECIDER_HANDLER,
    DECIDER_MAX_CONCURRENCY,
    DECIDER_TIMEOUT_SECONDS,
    DECISIONS_QUEUE_MAX_RECEIVES,
    DECISIONS_QUEUE_VISIBILITY_SECONDS,
    ENV_APPROVER_GROUP_IDS,
    ENV_APPROVER_USER_IDS,
    ENV_DECISION_LEASE_SECONDS,
    ENV_DECISIONS_QUEUE_URL,
    ENV_SLACK_TEAM_ID,
    ENV_SLASH_COMMAND,
    SLACK_COMMANDS_PATH,
    SLACK_EVENTS_PATH,
    SLACK_INTERACTIONS_PATH,
    check_decision_timing,
)
from infra.lambda_defaults import LambdaDefaults
from infra.queues import dead_letter_queue
from infra.settings import InfraSettings
from infra.storage import Storage

STAGE_NAME = "prod"
DECIDER_TIMEOUT = Duration.seconds(DECIDER_TIMEOUT_SECONDS)
DECISIONS_QUEUE_VISIBILITY = Duration.seconds(DECISIONS_QUEUE_VISIBILITY_SECONDS)

# TLS on the API's default (execute-api) endpoint: the strongest enhanced policy API Gateway offers a
# regional REST API that still admits TLS 1.2: TLS 1.3, and TLS 1.2 only with forward-secret,
# post-quantum-hybrid key exchange. Slack documents TLS 1.2 as its floor, not TLS 1.3; with the TLS 1.3-only
# policy (SecurityPolicy_TLS13_1_3_2025_09) a Slack client that cannot negotiate 1.3 would fail every
# click in the handshake, before any request reached the API or its logs. An enhanced
# ("SecurityPolicy_…") policy requires an endpoint access mode; STRICT also rejects requests whose SNI
# host does not match the API, or that arrive through another endpoint type. cfn-lint's bundled schema
# (1.58) types both properties as plain strings, so it neither rejects nor checks these values.
API_SECURITY_POLICY = "SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09"
API_ENDPOINT_ACCESS_MODE = "STRICT"

API_ACKNOWLEDGMENTS = (
    nag.acknowledgment(
        "APIG2",
        "Slack posts a signed form body; the callback verifies the signature and parses it, "
        "which an API Gateway request model cannot do.",
    ),
    nag.acknowledgment(
        "APIG3",
        "No WAF: every request must carry a valid Slack signature and the stage is throttled.",
    ),
    nag.acknowledgment(
        "APIG4",
        "Slack cannot send AWS or Cognito credentials; it signs each request and the callback "
        "verifies the signature before doing anything.",
    ),
    nag.acknowledgment(
        "COG4",
        "Slack cannot use a Cognito user pool; requests are authenticated by Slack's signature.",
    ),
    nag.acknowledgment(
        "APIG6",
        "Access logs (JSON, retained) and the callback's logs cover every request; execution logs "
        "would add a log group outside the stack with no retention.",
    ),
    nag.acknowledgment(
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
        "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-documented policy for the account-level "
        "role API Gateway needs to write access logs.",
    ),
)


class SlackApi(Construct):
    """POST /slack/interactions -> callback (verify, ack) -> decisions queue -> decider (UpdateJobStatus)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InfraSettings,
        defaults: LambdaDefaults,
        storage: Storage,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)

        # The values the queue and the decider are built with, checked together (settings checked the
        # lease against the same constants already; this catches a change to the constructs).
        check_decision_timing(
            visibility_timeout=int(DECISIONS_QUEUE_VISIBILITY.to_seconds()),
            lease=settings.decision_lease_seconds,
            function_timeout=int(DECIDER_TIMEOUT.to_seconds()),
        )

        self.decisions_dead_letter_queue: sqs.Queue = dead_letter_queue(self, "DecisionsDeadLetterQueue")
        self.decisions_queue = sqs.Queue(
            self,
            "DecisionsQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS's advice for a Lambda event source (six times the function's timeout), and longer than
            # a claim's lease plus one invocation, so a redelivery finds a dead holder's claim expired.
            visibility_timeout=DECISIONS_QUEUE_VISIBILITY,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=DECISIONS_QUEUE_MAX_RECEIVES, queue=self.decisions_dead_letter_queue
            ),
        )

        slack_environment = {
            **environment,
            ENV_DECISIONS_QUEUE_URL: self.decisions_queue.queue_url,
            ENV_APPROVER_USER_IDS: ",".join(settings.approver_user_ids),
            ENV_APPROVER_GROUP_IDS: ",".join(settings.approver_group_ids),
            ENV_SLACK_TEAM_ID: ",".join(settings.slack_team_ids),
            ENV_SLASH_COMMAND: settings.slash_command,
        }

        self.callback: lambda_.Function = defaults.function(
            self,
            "Callback",
            handler=CALLBACK_HANDLER,
            description="Verifies Slack interactivity requests, acknowledges them and queues decisions",
            timeout=Duration.seconds(10),
            # More memory means more CPU: a faster cold start inside Slack's 3 s.
            memory_size=1024,
            environment=slack_environment,
        )
        storage.grant_callback(self.callback)
        self.decisions_queue.grant_send_messages(self.callback)
        # Only the callback may queue work, whatever another principal's own policy allows (the decider
        # still verifies each message's Slack signature). This also refuses a redrive from the dead-letter
        # queue, on purpose: a dead-lettered decision is older than the decider accepts (1 h) by the time
        # anyone looks, and its claim is finished by the reconciliation; the person decides again.
        self.decisions_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheCallbackSends",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sqs:SendMessage"],
                resources=[self.decisions_queue.queue_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": self.callback.role.role_arn}},  # type: ignore[union-attr]
            )
        )

        self.decider: lambda_.Function = defaults.function(
            self,
            "Decider",
            handler=DECIDER_HANDLER,
            description="Carries out a queued decision with UpdateJobStatus and updates the Slack message",
            timeout=DECIDER_TIMEOUT,
            environment={**slack_environment, ENV_DECISION_LEASE_SECONDS: str(settings.decision_lease_seconds)},
        )
        # Also the approver's queue: Query on the Home tab's indexes; its own HOME# and SLACKDELIVERY# items
        # are written with the GetItem and UpdateItem it has on the table already (adapters/queries.py).
        storage.grant_decider(self.decider)
        self.decider.add_to_role_policy(permissions.describe_job(self))
        self.decider.add_to_role_policy(permissions.update_job_status(self, settings.job_tag))
        nag.acknowledge(self.decider.role, permissions.JOB_ARN_ACKNOWLEDGMENT)  # type: ignore[arg-type]
        # The live alias when the decider has SnapStart (only published versions are snapshotted).
        defaults.entry(self.decider).add_event_source(
            # Bounded without reserving: at most 5 decisions at once keeps Slack's and S3's rate limits
            # out of reach, and needs nothing from the account's unreserved concurrency pool.
            event_sources.SqsEventSource(
                self.decisions_queue,
                batch_size=1,
                report_batch_item_failures=True,
                max_concurrency=DECIDER_MAX_CONCURRENCY,
            )
        )

        # Access logs need the region's account-level API Gateway CloudWatch role. Creating it
        # (AWS::ApiGateway::Account) replaces that setting for every API of the account in the region, and it
        # is kept when the stack is deleted, so it is opt-in (apiGatewayCloudWatchRole); apiAccessLogs turns
        # access logs on where the region has the role already. Without either, a stage with access logs
        # would fail to deploy, so it has none (the function logs every request it refuses).
        self.access_logs: logs.LogGroup | None = None
        access: dict[str, object] = {}
        if settings.access_logs:
            self.access_logs = logs.LogGroup(
                self,
                "AccessLogs",
                retention=settings.log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            )
            access = {
                "access_log_destination": apigateway.LogGroupLogDestination(self.access_logs),
                "access_log_format": apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            }
        self.api = apigateway.RestApi(
            self,
            "Api",
            rest_api_name=f"{Stack.of(self).stack_name}-slack",
            description="Slack interactivity endpoint for S3 Batch Operations approvals",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            cloud_watch_role=settings.api_gateway_cloudwatch_role,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=settings.api_throttle_rate_limit,
                throttling_burst_limit=settings.api_throttle_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                **access,  # type: ignore[arg-type]
            ),
            # binary_media_types stays unset: Slack's form bodies arrive as text. The callback honours
            # isBase64Encoded anyway, so setting it later would not break signature checks.
        )
        nag.acknowledge(self.api, *API_ACKNOWLEDGMENTS)
        if not settings.access_logs:
            nag.acknowledge(
                self.api,
                nag.acknowledgment(
                    "APIG1",
                    "Access logs need the region's account-level API Gateway CloudWatch role, which replaces "
                    "the setting for every API of the account: off unless apiGatewayCloudWatchRole or "
                    "apiAccessLogs says so. The callback logs every request it refuses.",
                ),
            )
        # The RestApi L2 of this aws-cdk-lib does not expose these two properties; its CfnRestApi does.
        cfn_api: apigateway.CfnRestApi = self.api.node.default_child  # type: ignore[assignment]
        cfn_api.security_policy = API_SECURITY_POLICY
        cfn_api.endpoint_access_mode = API_ENDPOINT_ACCESS_MODE
        # The stack outputs the one URL Slack needs; drop RestApi's generic "Endpoint" output.
        self.api.node.try_remove_child("Endpoint")

        # Request size: API Gateway caps payloads at 10 MB and has no smaller body limit (a request
        # validator checks shape, not size), so the callback itself rejects bodies over 64 KB.
        # Proxy integration without a mapping template: the body reaches the function byte for byte,
        # which the signature check needs. With SnapStart the integration (and its invoke permission) names
        # the callback's live alias.
        integration = apigateway.LambdaIntegration(defaults.entry(self.callback), proxy=True)
        interactions = self.api.root.resource_for_path(SLACK_INTERACTIONS_PATH)
        self.interactions_method = interactions.add_method("POST", integration)
        # The Events API (app_home_opened, url_verification) and the slash command: the same callback, the
        # same stage (throttling, access logs, TLS policy), the same signature check.
        self.events_method = self.api.root.resource_for_path(SLACK_EVENTS_PATH).add_method("POST", integration)
        self.commands_method = self.api.root.resource_for_path(SLACK_COMMANDS_PATH).add_method("POST", integration)

    @property
    def events_url(self) -> str:
        """The Events API Request URL (https://…/prod/slack/events)."""
        return self.api.url_for_path("/" + SLACK_EVENTS_PATH)

    @property
    def commands_url(self) -> str:
        """The slash command's Request URL (https://…/prod/slack/commands)."""
        return self.api.url_for_path("/" + SLACK_COMMANDS_PATH)

    @property
    def interactions_url(self) -> str:
        """The Request URL to give Slack (https://…/prod/slack/interactions)."""
        return self.api.url_for_path("/" + SLACK_INTERACTIONS_PATH)
