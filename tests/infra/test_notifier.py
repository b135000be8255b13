from __future__ import annotations

import json

from infra.constants import (
    CREATE_JOB_CALL_PATTERN,
    JOB_EVENT_PATTERN,
    JOB_EVENTS_QUEUE_MAX_RECEIVES,
    JOB_EVENTS_QUEUE_VISIBILITY_SECONDS,
    LIFECYCLE_TICK_EVENT,
    NOTIFIER_ASYNC_RETRY_ATTEMPTS,
    NOTIFIER_HANDLER,
    NOTIFIER_MAX_CONCURRENCY,
    NOTIFIER_MAX_EVENT_AGE_SECONDS,
    NOTIFIER_TIMEOUT_SECONDS,
    OUTPUT_JOB_EVENTS_DLQ_URL,
    OUTPUT_NOTIFIER_FAILURES_URL,
)
from tests.infra.conftest import Synth, as_list


def _rule(synth: Synth, rule: object) -> dict:
    return synth.resource(rule)["Properties"]


def test_job_events_rule_matches_exactly_the_documented_pattern(default_synth: Synth) -> None:
    # given
    rule = _rule(default_synth, default_synth.stack.notifier.job_events_rule)

    # then
    assert rule["EventPattern"] == JOB_EVENT_PATTERN
    assert rule["State"] == "ENABLED"
    assert rule["EventBusName"] == {"Ref": default_synth.logical_id(default_synth.stack.hub.bus)}, (
        "the rule listens on the hub's approvals bus (the default bus forwards to it)"
    )


def test_job_events_go_on_the_job_events_queue_with_retries_for_two_hours_then_a_dead_letter_queue(
    default_synth: Synth,
) -> None:
    # given
    notifier = default_synth.stack.notifier
    [target] = _rule(default_synth, notifier.job_events_rule)["Targets"]

    # then
    assert target["Arn"] == {"Fn::GetAtt": [default_synth.logical_id(notifier.job_events_queue), "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 7200}
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [default_synth.logical_id(notifier.dead_letter_queue), "Arn"]}
    }


def test_a_schedule_reconciles_every_15_minutes_through_the_same_notifier(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    rule = _rule(default_synth, notifier.reconcile_rule)
    [target] = rule["Targets"]

    # then
    assert rule["ScheduleExpression"] == "rate(15 minutes)"
    assert "EventPattern" not in rule
    assert target["Arn"] == {"Fn::GetAtt": [default_synth.logical_id(notifier.function), "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 900
    assert "DeadLetterConfig" in target


def test_a_schedule_ticks_the_lifecycle_every_minute_through_the_same_notifier(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    rule = _rule(default_synth, notifier.lifecycle_rule)
    [target] = rule["Targets"]

    # then: the notifier's tick (reminders, escalation, expiry), retried, then parked where an alarm watches
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == "ENABLED"
    assert (
        json.loads(target["Input"])
        == LIFECYCLE_TICK_EVENT
        == {
            "source": "s3-batch-approvals",
            "detail-type": "Lifecycle Tick",
        }
    )
    assert target["Arn"] == {"Fn::GetAtt": [default_synth.logical_id(notifier.function), "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60}
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [default_synth.logical_id(notifier.dead_letter_queue), "Arn"]}
    }


def test_the_event_dead_letter_queue_is_encrypted_tls_only_and_keeps_events_14_days(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    queue = notifier.dead_letter_queue
    queue_id = default_synth.logical_id(queue)
    [policy] = [p for p in default_synth.props("AWS::SQS::QueuePolicy") if {"Ref": queue_id} in p["Queues"]]
    statements = policy["PolicyDocument"]["Statement"]

    # then
    assert default_synth.resource(queue)["Properties"] == {
        "MessageRetentionPeriod": 14 * 24 * 3600,
        "SqsManagedSseEnabled": True,
    }
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    assert {s["Principal"]["Service"] for s in allowed} == {"events.amazonaws.com"}
    assert {s["Action"] for s in allowed} == {"sqs:SendMessage"}
    rules = [
        notifier.job_events_rule,
        notifier.create_job_calls_rule,
        notifier.reconcile_rule,
        notifier.lifecycle_rule,
        default_synth.stack.forward_rule,  # the default bus's forwarding to the hub's bus
    ]
    assert [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in allowed] == [
        {"Fn::GetAtt": [default_synth.logical_id(rule), "Arn"]} for rule in rules
    ]


def test_the_notifier_has_a_minute_half_a_gigabyte_and_no_reserved_concurrency(default_synth: Synth) -> None:
    # given
    function = default_synth.function_props(NOTIFIER_HANDLER)

    # then
    assert function["Timeout"] == 60
    assert function["MemorySize"] == 512
    assert "ReservedConcurrentExecutions" not in function


def test_the_notifier_may_describe_and_list_jobs(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier.function
    actions = default_synth.actions_of(notifier)

    # then (it changes a job only for a policy rule that denies or approves: tests/infra/test_iam.py)
    assert {"s3:DescribeJob", "s3:ListJobs", "secretsmanager:GetSecretValue", "dynamodb:PutItem"} <= actions


def test_lambda_retries_a_failing_notifier_then_sends_the_event_to_its_failure_queue(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    [config] = default_synth.props("AWS::Lambda::EventInvokeConfig")

    # then
    assert (NOTIFIER_ASYNC_RETRY_ATTEMPTS, NOTIFIER_MAX_EVENT_AGE_SECONDS) == (2, 7200)
    assert config == {
        "FunctionName": {"Ref": default_synth.logical_id(notifier.function)},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": NOTIFIER_ASYNC_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": NOTIFIER_MAX_EVENT_AGE_SECONDS,
        "DestinationConfig": {
            "OnFailure": {"Destination": {"Fn::GetAtt": [default_synth.logical_id(notifier.failure_queue), "Arn"]}}
        },
    }


def test_the_failure_queue_is_encrypted_tls_only_alarmed_and_output(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    queue_id = default_synth.logical_id(notifier.failure_queue)
    [policy] = [p for p in default_synth.props("AWS::SQS::QueuePolicy") if {"Ref": queue_id} in p["Queues"]]
    [deny] = policy["PolicyDocument"]["Statement"]
    queue_name = {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
    alarms = [a for a in default_synth.props("AWS::CloudWatch::Alarm") if queue_name in a.get("Dimensions", [])]
    [send] = [s for s in default_synth.role_statements(notifier.function) if "sqs:SendMessage" in as_list(s["Action"])]

    # then
    assert notifier.failure_queue is not notifier.dead_letter_queue
    assert default_synth.resource(notifier.failure_queue)["Properties"] == {
        "MessageRetentionPeriod": 14 * 24 * 3600,
        "SqsManagedSseEnabled": True,
    }
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    assert [a["MetricName"] for a in alarms] == ["ApproximateNumberOfMessagesVisible"]
    assert send["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert default_synth.json["Outputs"][OUTPUT_NOTIFIER_FAILURES_URL]["Value"] == {"Ref": queue_id}


def test_a_few_notifiers_at_once_drain_the_job_events_queue_one_event_each(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    queue_arn = {"Fn::GetAtt": [default_synth.logical_id(notifier.job_events_queue), "Arn"]}

    # when
    [mapping] = [m for m in default_synth.props("AWS::Lambda::EventSourceMapping") if m["EventSourceArn"] == queue_arn]

    # then: bounded consumers, so the channel's turns are never taken far ahead (adapters/pacing.py)
    assert mapping["FunctionName"] == {"Ref": default_synth.logical_id(notifier.function)}
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": NOTIFIER_MAX_CONCURRENCY}
    assert 2 <= NOTIFIER_MAX_CONCURRENCY <= 10


def test_a_failing_event_comes_back_then_dead_letters_where_an_alarm_watches(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    queue = default_synth.resource(notifier.job_events_queue)["Properties"]
    dlq_id = default_synth.logical_id(notifier.job_events_dead_letter_queue)

    # then
    assert queue["VisibilityTimeout"] == JOB_EVENTS_QUEUE_VISIBILITY_SECONDS >= 6 * NOTIFIER_TIMEOUT_SECONDS
    assert default_synth.resource(notifier.function)["Properties"]["Timeout"] == NOTIFIER_TIMEOUT_SECONDS
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": JOB_EVENTS_QUEUE_MAX_RECEIVES,
    }
    assert queue["SqsManagedSseEnabled"] is True
    alarmed = {
        str(dim["Value"])
        for alarm in default_synth.props("AWS::CloudWatch::Alarm")
        for dim in alarm.get("Dimensions", [])
    }
    assert any(dlq_id in value for value in alarmed), "an alarm watches the job events dead-letter queue"
    assert OUTPUT_JOB_EVENTS_DLQ_URL in default_synth.json["Outputs"]


def test_only_the_two_event_rules_may_put_events_on_the_job_events_queue(default_synth: Synth) -> None:
    # given
    notifier = default_synth.stack.notifier
    queue_id = default_synth.logical_id(notifier.job_events_queue)
    [policy] = [p for p in default_synth.props("AWS::SQS::QueuePolicy") if {"Ref": queue_id} in p["Queues"]]
    rules = {
        default_synth.logical_id(notifier.job_events_rule),
        default_synth.logical_id(notifier.create_job_calls_rule),
    }

    # when
    allowed = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]

    # then
    assert {s["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for s in allowed} == rules
    assert all(
        as_list(s["Action"]) == ["sqs:SendMessage"] or "sqs:SendMessage" in as_list(s["Action"]) for s in allowed
    )
    assert all(
        set(as_list(s["Action"])) <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"} for s in allowed
    )
    assert CREATE_JOB_CALL_PATTERN != JOB_EVENT_PATTERN
