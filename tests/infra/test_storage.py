from __future__ import annotations

from infra.constants import (
    IDEMPOTENCY_TABLE_PARTITION_KEY,
    IDEMPOTENCY_TABLE_TTL_ATTRIBUTE,
    REQUESTS_TABLE_PARTITION_KEY,
    REQUESTS_TABLE_SORT_KEY,
    REQUESTS_TABLE_TTL_ATTRIBUTE,
)
from tests.infra.conftest import Synth


def test_the_requests_table_is_keyed_by_pk_and_sk_on_demand(default_synth: Synth) -> None:
    # given
    table = default_synth.resource(default_synth.stack.storage.requests_table)["Properties"]

    # then
    assert table["KeySchema"] == [
        {"AttributeName": REQUESTS_TABLE_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": REQUESTS_TABLE_SORT_KEY, "KeyType": "RANGE"},
    ]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": REQUESTS_TABLE_PARTITION_KEY, "AttributeType": "S"},
        {"AttributeName": REQUESTS_TABLE_SORT_KEY, "AttributeType": "S"},
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"


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


def test_the_requests_table_streams_new_images_for_the_audit_writer(default_synth: Synth) -> None:
    table = default_synth.resource(default_synth.stack.storage.requests_table)["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


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
