from __future__ import annotations

from infra.constants import (
    AUDIT_TABLE_PARTITION_KEY,
    AUDIT_TABLE_SORT_KEY,
    IDEMPOTENCY_TABLE_PARTITION_KEY,
    IDEMPOTENCY_TABLE_TTL_ATTRIBUTE,
    OUTPUT_AUDIT_TABLE_NAME,
    REQUESTS_DECIDING_INDEX,
    REQUESTS_INDEXES,
    REQUESTS_TABLE_PARTITION_KEY,
    REQUESTS_TABLE_SORT_KEY,
    REQUESTS_TABLE_TTL_ATTRIBUTE,
)
from tests.infra.conftest import Synth, as_list

AUDIT_DENIED = {
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLDelete",
    "dynamodb:PartiQLUpdate",
}


def test_the_requests_table_is_keyed_by_pk_and_sk_on_demand(default_synth: Synth) -> None:
    # given
    table = default_synth.resource(default_synth.stack.storage.requests_table)["Properties"]

    # then
    assert table["KeySchema"] == [
        {"AttributeName": REQUESTS_TABLE_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": REQUESTS_TABLE_SORT_KEY, "KeyType": "RANGE"},
    ]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": name, "AttributeType": "S"}
        for name in (
            REQUESTS_TABLE_PARTITION_KEY,
            REQUESTS_TABLE_SORT_KEY,
            "deciding",
            "deciding_since",
            "listed",
            "listed_at",
        )
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_two_sparse_indexes_find_claims_in_progress_and_open_decided_and_created_requests(
    default_synth: Synth,
) -> None:
    # given
    table = default_synth.resource(default_synth.stack.storage.requests_table)["Properties"]

    # then: each lookup (stuck claims, the lifecycle sweep, the Home tab and the slash command) is one Query;
    # one index for all but stuck claims, so that an upgrade adds one (CloudFormation adds one per update)
    assert table["GlobalSecondaryIndexes"] == [
        {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": partition, "KeyType": "HASH"},
                {"AttributeName": sort, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for name, partition, sort in (
            (REQUESTS_DECIDING_INDEX, "deciding", "deciding_since"),
            ("StateIndex", "listed", "listed_at"),
        )
    ]
    assert [index[0] for index in REQUESTS_INDEXES] == [i["IndexName"] for i in table["GlobalSecondaryIndexes"]]


def test_the_requests_table_survives_mistakes_and_expires_old_items(default_synth: Synth) -> None:
    # given
    resource = default_synth.resource(default_synth.stack.storage.requests_table)
    table = resource["Properties"]

    # then
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionProtectionEnabled"] is True
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"
    assert table["TimeToLiveSpecification"] == {"AttributeName": REQUESTS_TABLE_TTL_ATTRIBUTE, "Enabled": True}
    # AWS-managed KMS encryption (the aws/dynamodb key).
    assert table["SSESpecification"] == {"SSEEnabled": True}


def test_the_requests_table_has_no_stream_now_that_audit_records_live_elsewhere(default_synth: Synth) -> None:
    table = default_synth.resource(default_synth.stack.storage.requests_table)["Properties"]
    assert "StreamSpecification" not in table


def test_the_audit_table_keeps_every_record_and_streams_old_and_new_images(default_synth: Synth) -> None:
    # given
    resource = default_synth.resource(default_synth.stack.storage.audit_table)
    table = resource["Properties"]

    # then
    assert table["KeySchema"] == [
        {"AttributeName": AUDIT_TABLE_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": AUDIT_TABLE_SORT_KEY, "KeyType": "RANGE"},
    ]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": AUDIT_TABLE_PARTITION_KEY, "AttributeType": "S"},
        {"AttributeName": AUDIT_TABLE_SORT_KEY, "AttributeType": "S"},
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionProtectionEnabled"] is True
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert "TimeToLiveSpecification" not in table, "audit records never expire"
    assert "GlobalSecondaryIndexes" not in table
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_audit_tables_resource_policy_denies_everyone_every_change_but_insert(default_synth: Synth) -> None:
    # given
    table = default_synth.resource(default_synth.stack.storage.audit_table)["Properties"]
    [deny] = table["ResourcePolicy"]["PolicyDocument"]["Statement"]

    # then
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    assert set(as_list(deny["Action"])) == AUDIT_DENIED
    assert deny["Resource"] == "*", "in a table's resource policy '*' is the table itself"
    assert "Condition" not in deny, "no one is exempt"
    assert "dynamodb:PutItem" not in as_list(deny["Action"]), "inserts stay possible"


def test_the_other_tables_have_no_resource_policy(default_synth: Synth) -> None:
    storage = default_synth.stack.storage
    for table in (storage.requests_table, storage.idempotency_table):
        assert "ResourcePolicy" not in default_synth.resource(table)["Properties"]


def test_the_stack_outputs_the_audit_table_name(default_synth: Synth) -> None:
    output = default_synth.json["Outputs"][OUTPUT_AUDIT_TABLE_NAME]
    assert output["Value"] == {"Ref": default_synth.logical_id(default_synth.stack.storage.audit_table)}


def test_the_idempotency_table_is_what_powertools_expects(default_synth: Synth) -> None:
    # given
    resource = default_synth.resource(default_synth.stack.storage.idempotency_table)
    table = resource["Properties"]

    # then
    assert table["KeySchema"] == [{"AttributeName": IDEMPOTENCY_TABLE_PARTITION_KEY, "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": IDEMPOTENCY_TABLE_TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert resource["DeletionPolicy"] == "Delete"


def test_the_slack_secret_is_imported_by_name_and_only_read(default_synth: Synth) -> None:
    # given
    stack = default_synth.stack
    assert default_synth.resources("AWS::SecretsManager::Secret") == {}

    for function in [stack.notifier.function, stack.slack_api.callback, stack.slack_api.decider]:
        # when
        [statement] = [
            s for s in default_synth.role_statements(function) if "secretsmanager:GetSecretValue" in s["Action"]
        ]

        # then
        assert statement["Action"] == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
        parts = statement["Resource"]["Fn::Join"][1]
        assert parts[-1] == ":secret:s3-batch-approvals/slack-??????"
    assert not any("secretsmanager" in str(s) for s in default_synth.role_statements(stack.audit.writer))
