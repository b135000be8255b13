"""State: the requests table (one REQUEST item per job plus its AUDIT# items), the idempotency table and
the Slack secret."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constants import (
    IDEMPOTENCY_TABLE_PARTITION_KEY,
    IDEMPOTENCY_TABLE_TTL_ATTRIBUTE,
    REQUESTS_TABLE_PARTITION_KEY,
    REQUESTS_TABLE_SORT_KEY,
    REQUESTS_TABLE_TTL_ATTRIBUTE,
)
from infra.settings import InfraSettings


class Storage(Construct):
    """The tables and the (imported) Slack secret.

    The secret is not created here, so its value never passes through CloudFormation. Create it once
    per account and region before the first deploy::

        aws secretsmanager create-secret --name s3-batch-approvals/slack \\
            --secret-string '{"bot_token":"xoxb-…","signing_secret":"…"}'

    (use the name set in the ``slackSecretName`` context setting if you changed it).
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings) -> None:
        super().__init__(scope, construct_id)

        self.requests_table = dynamodb.Table(
            self,
            "RequestsTable",
            partition_key=dynamodb.Attribute(name=REQUESTS_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=REQUESTS_TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=REQUESTS_TABLE_TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # The audit writer reads new AUDIT# items from the stream.
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            # Decisions and their audit records outlive the stack.
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name=IDEMPOTENCY_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=IDEMPOTENCY_TABLE_TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # Short-lived Powertools records: nothing to keep.
            removal_policy=RemovalPolicy.DESTROY,
        )

        self.slack_secret = secretsmanager.Secret.from_secret_name_v2(self, "SlackSecret", settings.slack_secret_name)

    def grant_notifier(self, grantee: iam.IGrantable) -> None:
        """The notifier reads the Slack secret, keeps request records and dedupes events."""
        self.slack_secret.grant_read(grantee)
        self.requests_table.grant_read_write_data(grantee)
        self.idempotency_table.grant_read_write_data(grantee)

    def grant_callback(self, grantee: iam.IGrantable) -> None:
        """The callback only verifies signatures: it reads the secret and touches no table."""
        self.slack_secret.grant_read(grantee)

    def grant_decider(self, grantee: iam.IGrantable) -> None:
        """The decider reads the Slack secret and claims, records and audits decisions."""
        self.slack_secret.grant_read(grantee)
        self.requests_table.grant_read_write_data(grantee)
