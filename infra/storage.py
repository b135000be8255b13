"""State: the requests table (one REQUEST item per job), the insert-only audit table, the idempotency
table and the Slack secret."""

from __future__ import annotations

from typing import Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constants import (
    AUDIT_TABLE_PARTITION_KEY,
    AUDIT_TABLE_SORT_KEY,
    IDEMPOTENCY_TABLE_PARTITION_KEY,
    IDEMPOTENCY_TABLE_TTL_ATTRIBUTE,
    REQUESTS_DECIDING_INDEX,
    REQUESTS_INDEXES,
    REQUESTS_STATE_INDEX,
    REQUESTS_TABLE_PARTITION_KEY,
    REQUESTS_TABLE_SORT_KEY,
    REQUESTS_TABLE_TTL_ATTRIBUTE,
)
from infra.settings import InfraSettings

# What nobody (no function, no person, no service) may do to an audit item: change or remove it.
# PutItem stays allowed, because IAM cannot tell an insert from an overwrite of an existing key. The
# functions insert with ConditionExpression attribute_not_exists, and the audit writer sees every
# overwrite (MODIFY) or removal (REMOVE) on the table's stream, logs it and counts AuditTampered, which
# alarms. (Changing this policy itself needs dynamodb:PutResourcePolicy, which CloudFormation uses.)
AUDIT_DENIED_ACTIONS: Final = (
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLDelete",
    "dynamodb:PartiQLUpdate",
)

# The actions each function needs, table by table (the adapters' calls, nothing more).
REQUEST_ITEM_ACTIONS: Final = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
DECISION_ACTIONS: Final = ("dynamodb:GetItem", "dynamodb:UpdateItem")
AUDIT_INSERT_ACTIONS: Final = ("dynamodb:PutItem",)
# What Powertools' DynamoDBPersistenceLayer calls.
IDEMPOTENCY_ACTIONS: Final = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


def _audit_table_policy() -> iam.PolicyDocument:
    # Resource "*" in a table's resource policy means this table: the policy cannot name the table's own
    # ARN (CloudFormation would see a circular reference with a generated table name).
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="AuditItemsAreInsertOnly",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(AUDIT_DENIED_ACTIONS),
                resources=["*"],
            )
        ]
    )


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
            # Decisions outlive the stack.
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Sparse: an item carries an index's keys only while it belongs there (a claim held; open, decided, a
        # job's creator), so each lookup is one Query over what is there, never a Scan.
        for index_name, partition, sort in REQUESTS_INDEXES:
            self.requests_table.add_global_secondary_index(
                index_name=index_name,
                partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        self.audit_table = dynamodb.Table(
            self,
            "AuditTable",
            partition_key=dynamodb.Attribute(name=AUDIT_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=AUDIT_TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # No TTL: audit records are kept. Old images let the audit writer log what a change replaced.
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            resource_policy=_audit_table_policy(),
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

    @property
    def deciding_index_arn(self) -> str:
        return self.index_arn(REQUESTS_DECIDING_INDEX)

    def index_arn(self, index_name: str) -> str:
        return f"{self.requests_table.table_arn}/index/{index_name}"

    def grant_notifier(self, grantee: iam.IGrantable) -> None:
        """The notifier reads the Slack secret, keeps request records, finds stuck claims through the
        deciding index and due reminders and expiries through the state index, inserts audit records and
        dedupes events."""
        self.slack_secret.grant_read(grantee)
        _allow(grantee, REQUEST_ITEM_ACTIONS, self.requests_table.table_arn)
        _allow(grantee, ("dynamodb:Query",), self.deciding_index_arn)
        _allow(grantee, ("dynamodb:Query",), self.index_arn(REQUESTS_STATE_INDEX))
        _allow(grantee, AUDIT_INSERT_ACTIONS, self.audit_table.table_arn)
        _allow(grantee, IDEMPOTENCY_ACTIONS, self.idempotency_table.table_arn)

    def grant_callback(self, grantee: iam.IGrantable) -> None:
        """The callback only verifies signatures: it reads the secret and touches no table."""
        self.slack_secret.grant_read(grantee)

    def grant_decider(self, grantee: iam.IGrantable) -> None:
        """The decider reads the Slack secret, claims and records decisions, inserts audit records, and reads
        the state index behind the Home tab and the slash command (open requests, by requester, decided)."""
        self.slack_secret.grant_read(grantee)
        _allow(grantee, DECISION_ACTIONS, self.requests_table.table_arn)
        _allow(grantee, ("dynamodb:Query",), self.index_arn(REQUESTS_STATE_INDEX))
        _allow(grantee, AUDIT_INSERT_ACTIONS, self.audit_table.table_arn)


def _allow(grantee: iam.IGrantable, actions: tuple[str, ...], resource_arn: str) -> None:
    """Exactly ``actions`` on exactly one ARN (grant_* helpers would add ``index/*`` once a table has one)."""
    iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[resource_arn])
