from __future__ import annotations

import json
from typing import Any

from infra.audit import AUDIT_QUERIES
from infra.constants import (
    AUDIT_WRITER_HANDLER,
    METRIC_APPROVAL_REQUESTED,
    METRIC_APPROVED,
    METRIC_AUDIT_TAMPERED,
    METRIC_CANCELLED,
    METRIC_DECISION_FAILED,
    METRIC_DECISION_STUCK,
    METRIC_DECISION_UNVERIFIED,
    METRIC_DUPLICATE_DECISION,
    METRIC_DUPLICATE_EVENT,
    METRIC_EVENT_DROPPED,
    METRIC_FOREIGN_TEAM,
    METRIC_REFUSED,
    METRIC_SIGNATURE_REJECTED,
    METRIC_TIME_TO_DECISION,
    METRICS_NAMESPACE,
    SERVICE_NAME,
)
from tests.infra.conftest import Synth

# Inserts, overwrites and removals alike: the writer logs the first and reports the others as tampering.
AUDIT_STREAM_PATTERN = {"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "AUDIT#"}]}}}}
INTEGRITY_METRICS = [METRIC_DECISION_UNVERIFIED, METRIC_AUDIT_TAMPERED, METRIC_DECISION_STUCK]


def _alarms(synth: Synth) -> list[dict[str, Any]]:
    return synth.props("AWS::CloudWatch::Alarm")


def _alarm_on(synth: Synth, metric_name: str, **dimension: Any) -> list[dict[str, Any]]:
    wanted = [{"Name": k, "Value": v} for k, v in dimension.items()]
    return [a for a in _alarms(synth) if a["MetricName"] == metric_name and all(d in a["Dimensions"] for d in wanted)]


def test_the_audit_log_group_keeps_records_400_days_and_outlives_the_stack(default_synth: Synth) -> None:
    # given
    group = default_synth.resource(default_synth.stack.audit.log_group)

    # then
    assert group["Properties"]["RetentionInDays"] == 400
    assert group["DeletionPolicy"] == "Retain"
    assert group["UpdateReplacePolicy"] == "Retain"
    assert "KmsKeyId" not in group["Properties"]
    assert default_synth.resources("AWS::KMS::Key").keys() == {
        default_synth.logical_id(default_synth.stack.monitoring.topic_key)
    }


def test_the_audit_log_group_can_be_encrypted_with_a_rotating_key_logs_may_use(custom_synth: Synth) -> None:
    # given
    audit = custom_synth.stack.audit
    group = custom_synth.resource(audit.log_group)["Properties"]
    key = custom_synth.resource(audit.key)
    [statement] = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowCloudWatchLogs"]

    # then
    assert group["KmsKeyId"] == {"Fn::GetAtt": [custom_synth.logical_id(audit.key), "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    assert statement["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    assert "kms:GenerateDataKey*" in statement["Action"]
    assert "kms:EncryptionContext:aws:logs:arn" in statement["Condition"]["ArnLike"]


def test_the_audit_writer_logs_into_the_audit_log_group_without_platform_lines(default_synth: Synth) -> None:
    # given
    writer = default_synth.function_props(AUDIT_WRITER_HANDLER)

    # then
    assert writer["LoggingConfig"] == {
        "ApplicationLogLevel": "INFO",
        "LogFormat": "JSON",
        "LogGroup": {"Ref": default_synth.logical_id(default_synth.stack.audit.log_group)},
        "SystemLogLevel": "WARN",
    }


def test_every_change_to_an_audit_item_reaches_the_writer_from_the_audit_tables_stream(default_synth: Synth) -> None:
    # given
    stack = default_synth.stack
    writer_id = default_synth.logical_id(stack.audit.writer)
    [mapping] = [
        p for p in default_synth.props("AWS::Lambda::EventSourceMapping") if p["FunctionName"] == {"Ref": writer_id}
    ]
    [only_filter] = mapping["FilterCriteria"]["Filters"]

    # then
    assert mapping["EventSourceArn"] == {
        "Fn::GetAtt": [default_synth.logical_id(stack.storage.audit_table), "StreamArn"]
    }
    assert json.loads(only_filter["Pattern"]) == AUDIT_STREAM_PATTERN
    assert "eventName" not in json.loads(only_filter["Pattern"]), "MODIFY and REMOVE must reach it too"
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == 100
    assert mapping["MaximumRetryAttempts"] == 10
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [default_synth.logical_id(stack.audit.dead_letter_queue), "Arn"]}}
    }


def test_there_are_four_saved_queries_over_the_audit_log_group(default_synth: Synth) -> None:
    # given
    audit_group = {"Ref": default_synth.logical_id(default_synth.stack.audit.log_group)}
    queries = {p["Name"]: p for p in default_synth.props("AWS::Logs::QueryDefinition")}

    # then
    assert set(queries) == {f"{SERVICE_NAME}/{name}" for name in AUDIT_QUERIES}
    assert all(q["LogGroupNames"] == [audit_group] for q in queries.values())
    text = {name.removeprefix(f"{SERVICE_NAME}/"): q["QueryString"] for name, q in queries.items()}
    assert "filter job_id = 'JOB_ID'" in text["decisions for a job"]
    assert "filter actor_id = 'USER_ID'" in text["decisions by a person"]
    assert "filter event_type = 'decision_refused'" in text["refused attempts"]
    last_50 = text["last 50 decisions"]
    assert "filter event_type = 'decision_taken'" in last_50
    assert "sort time desc" in last_50
    assert "limit 50" in last_50


def test_every_dead_letter_queue_alarms_on_its_first_message(default_synth: Synth) -> None:
    stack = default_synth.stack
    queues = [
        stack.notifier.dead_letter_queue,
        stack.notifier.failure_queue,
        stack.slack_api.decisions_dead_letter_queue,
        stack.audit.dead_letter_queue,
    ]
    for queue in queues:
        # when
        queue_name = {"Fn::GetAtt": [default_synth.logical_id(queue), "QueueName"]}
        [alarm] = _alarm_on(default_synth, "ApproximateNumberOfMessagesVisible", QueueName=queue_name)

        # then
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Statistic"] == "Maximum"


def test_every_function_alarms_on_an_error(default_synth: Synth) -> None:
    stack = default_synth.stack
    for function in [stack.notifier.function, stack.slack_api.callback, stack.slack_api.decider, stack.audit.writer]:
        # when
        [alarm] = _alarm_on(default_synth, "Errors", FunctionName={"Ref": default_synth.logical_id(function)})

        # then
        assert alarm["Namespace"] == "AWS/Lambda"
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)


def test_the_api_alarms_on_a_server_error(default_synth: Synth) -> None:
    [alarm] = _alarm_on(default_synth, "5XXError")
    assert alarm["Namespace"] == "AWS/ApiGateway"
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Statistic"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
        "Sum",
    )


def test_product_alarms_watch_signature_rejections_and_failed_decisions(default_synth: Synth) -> None:
    # given
    [rejected] = _alarm_on(default_synth, METRIC_SIGNATURE_REJECTED)
    [failed] = _alarm_on(default_synth, METRIC_DECISION_FAILED)

    # then
    for alarm in (rejected, failed):
        assert alarm["Namespace"] == METRICS_NAMESPACE
        assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE_NAME}]
        assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert rejected["Threshold"] == 10
    assert failed["Threshold"] == 1


def test_any_unverified_decision_tampered_audit_item_or_stuck_decision_alarms(default_synth: Synth) -> None:
    # given
    topic = {"Ref": default_synth.logical_id(default_synth.stack.monitoring.topic)}

    for metric_name in INTEGRITY_METRICS:
        # when
        [alarm] = _alarm_on(default_synth, metric_name)

        # then
        assert alarm["Namespace"] == METRICS_NAMESPACE
        assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE_NAME}]
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        assert alarm["AlarmActions"] == [topic]


def test_alarms_stay_quiet_without_data_explain_themselves_and_notify_the_topic(default_synth: Synth) -> None:
    # given
    topic = {"Ref": default_synth.logical_id(default_synth.stack.monitoring.topic)}
    alarms = _alarms(default_synth)

    # then
    # dead-letter queues + functions + the API + product metrics + integrity metrics
    assert len(alarms) == 5 + 4 + 1 + 2 + 3
    for alarm in alarms:
        assert alarm["TreatMissingData"] == "notBreaching"
        assert len(alarm["AlarmDescription"]) > 30
        assert alarm["AlarmActions"] == [topic]
        assert alarm["OKActions"] == [topic]


def test_the_alarm_topic_is_encrypted_tls_only_and_open_to_cloudwatch(default_synth: Synth) -> None:
    # given
    monitoring = default_synth.stack.monitoring
    topic_id = default_synth.logical_id(monitoring.topic)
    [topic] = default_synth.props("AWS::SNS::Topic")
    [policy] = default_synth.props("AWS::SNS::TopicPolicy")
    statements = policy["PolicyDocument"]["Statement"]
    key = default_synth.resource(monitoring.topic_key)["Properties"]

    # then
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [default_synth.logical_id(monitoring.topic_key), "Arn"]}
    assert policy["Topics"] == [{"Ref": topic_id}]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    [publish] = [s for s in statements if s.get("Sid") == "AllowCloudWatchAlarmsPublish"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    assert key["EnableKeyRotation"] is True
    [use] = [s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowCloudWatchAlarms"]
    assert use["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert default_synth.props("AWS::SNS::Subscription") == []


def test_an_alarm_email_subscribes_to_the_topic(custom_synth: Synth) -> None:
    [subscription] = custom_synth.props("AWS::SNS::Subscription")
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == "oncall@example.com"


def test_the_dashboard_shows_product_metrics_queues_and_each_functions_health(default_synth: Synth) -> None:
    # given
    [dashboard] = default_synth.props("AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["DashboardBody"])

    # then
    for metric in (
        METRIC_APPROVAL_REQUESTED,
        METRIC_APPROVED,
        METRIC_CANCELLED,
        METRIC_REFUSED,
        METRIC_SIGNATURE_REJECTED,
        METRIC_DECISION_FAILED,
        METRIC_TIME_TO_DECISION,
        METRIC_EVENT_DROPPED,
        METRIC_DUPLICATE_EVENT,
        *INTEGRITY_METRICS,
        METRIC_FOREIGN_TEAM,
        METRIC_DUPLICATE_DECISION,
        "ApproximateNumberOfMessagesVisible",
        "Duration",
        "Errors",
        "Throttles",
        "5XXError",
    ):
        assert f'\\"{metric}\\"' in body, metric
    for function in ("Notifier", "Callback", "Decider", "AuditWriter"):
        assert f'\\"label\\":\\"{function}\\"' in body, function


def test_the_alarm_topics_key_goes_with_the_stack_and_the_audit_logs_key_stays(custom_synth: Synth) -> None:
    # given (auditLogKmsEncryption on)
    resources = custom_synth.json["Resources"]
    topic_key = resources[custom_synth.logical_id(custom_synth.stack.monitoring.topic_key)]
    audit_keys = [r for r in resources.values() if r["Type"] == "AWS::KMS::Key" and r is not topic_key]

    # then: nothing stays encrypted under the topic's key; the audit log must stay readable
    assert topic_key["DeletionPolicy"] == "Delete"
    assert [key["DeletionPolicy"] for key in audit_keys] == ["Retain"]
