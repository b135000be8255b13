"""Decider: queued decisions (SQS) → ``DecisionService.apply`` → UpdateJobStatus, exactly once.

A record that raises is reported as a batch item failure, so SQS redelivers it (the service
resumes safely) and, after the queue's maxReceiveCount, moves it to the dead-letter queue, which
alarms. A record that cannot be parsed is logged and counted, not retried.
"""

from __future__ import annotations

from approvals import coldstart

with coldstart.long_lived():  # modules load once per execution environment (approvals.coldstart)
    from typing import Any

    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import TypeAdapter, ValidationError

    from approvals import wiring
    from approvals.domain.decisions import DecisionResult, Outcome
    from approvals.models.slack import DecisionCommand, NoticeCommand, QueuedWork, RefusalCommand
    from approvals.names import (
        METRIC_APPROVED,
        METRIC_CANCELLED,
        METRIC_DECISION_FAILED,
        METRIC_EVENT_DROPPED,
        METRIC_NOTICE_FAILED,
        METRIC_REFUSED,
        METRIC_TIME_TO_DECISION,
    )
    from approvals.observability import MetricUnit, logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)
_work: TypeAdapter[Any] = TypeAdapter(QueuedWork)


def handle_record(record: SQSRecord) -> dict[str, Any] | None:
    try:
        work = _work.validate_json(record.body)
    except ValidationError as exc:
        logger.error("queued work dropped", reason=exc.errors()[0]["msg"], message_id=record.message_id)
        metrics.add_metric(name=METRIC_EVENT_DROPPED, unit=MetricUnit.Count, value=1)
        return None
    deps = wiring.decider()
    logger.set_correlation_id(work.correlation_id)  # the callback's API Gateway request ID
    if isinstance(work, NoticeCommand):
        deps.chat.ephemeral(work.channel, work.actor.user_id, work.text)
        return {"notice": "sent"}
    if isinstance(work, RefusalCommand):
        result = deps.decisions.refuse_invalid(work)
        metrics.add_metric(name=METRIC_REFUSED, unit=MetricUnit.Count, value=1)
        logger.info("invalid request recorded", reason=work.reason, user_id=work.actor.user_id if work.actor else None)
        return {"outcome": result.outcome.value}
    assert isinstance(work, DecisionCommand)
    logger.append_keys(job_id=work.job.job_id)
    result = deps.decisions.apply(work)
    _observe(work, result)
    return {"outcome": result.outcome.value, "s3_status": result.s3_status}


def _observe(command: DecisionCommand, result: DecisionResult) -> None:
    if result.outcome == Outcome.APPLIED:
        metrics.add_metric(
            name=METRIC_APPROVED if command.decision == "approve" else METRIC_CANCELLED, unit=MetricUnit.Count, value=1
        )
        if result.request is not None and result.request.decided_at is not None:
            waited = (result.request.decided_at - result.request.requested_at).total_seconds()
            metrics.add_metric(name=METRIC_TIME_TO_DECISION, unit=MetricUnit.Seconds, value=max(0.0, waited))
    elif result.outcome == Outcome.FAILED:
        metrics.add_metric(name=METRIC_DECISION_FAILED, unit=MetricUnit.Count, value=1)
    elif result.refused:
        metrics.add_metric(name=METRIC_REFUSED, unit=MetricUnit.Count, value=1)
    if result.notices_failed:
        metrics.add_metric(name=METRIC_NOTICE_FAILED, unit=MetricUnit.Count, value=result.notices_failed)
    logger.info(
        "decision handled",
        outcome=result.outcome.value,
        decision=command.decision,
        user_id=command.actor.user_id,
        s3_status=result.s3_status,
        detail=result.detail,
    )


def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wiring.common().deadline.start(context)
    response = process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
    return dict(response)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
