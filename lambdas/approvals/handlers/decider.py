"""Decider: queued Slack requests (SQS) → verified again → ``DecisionService`` → UpdateJobStatus, once;
or, for an app_home_opened event or a slash command, ``HomeService`` → views.publish or the response_url.

``handle_record`` hands each message body to ``approvals.domain.work.QueuedWork``, which checks Slack's
signature over the queued request before reading anything in it. A record that raises, or whose
delivery cannot act yet (the same click is being applied by another delivery), is reported as a batch
item failure, so SQS redelivers it after the visibility timeout and, after the queue's maxReceiveCount,
moves it to the dead-letter queue, which alarms. A message that is not a verifiable Slack request is
refused as unverified, recorded and counted (an alarm watches), and not retried.
"""

from __future__ import annotations

from approvals import coldstart

with coldstart.long_lived():  # modules load once per execution environment (approvals.coldstart)
    from typing import Any

    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    import approvals.snapstart  # noqa: F401 (SnapStart's runtime hooks register on import)
    from approvals import wiring
    from approvals.domain.decisions import DecisionResult, Outcome
    from approvals.domain.home import HomeResult
    from approvals.names import (
        METRIC_APPROVED,
        METRIC_CANCELLED,
        METRIC_DECISION_FAILED,
        METRIC_DECISION_UNVERIFIED,
        METRIC_DUPLICATE_DECISION,
        METRIC_DUPLICATE_EVENT,
        METRIC_NOTICE_FAILED,
        METRIC_REFUSED,
        METRIC_REQUESTER_REFUSED,
        METRIC_TIME_TO_DECISION,
        METRIC_VOTE_RECORDED,
    )
    from approvals.observability import MetricUnit, logger, metrics, tracer


def _processor() -> BatchProcessor:
    """One per invocation: a processor keeps its batch's records and failures, which concurrent invocations
    in one process (the sandbox runs several, as Lambda runs several environments) must not share.

    A batch whose every record failed normally fails the invocation (Powertools' default), which counts as
    a function error and alarms. A held duplicate is no error: it only has to come back later, so a batch
    that failed only with RetryLater returns its batchItemFailures instead (see ``handle``).
    """
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(Exception):
    """This delivery cannot act yet; SQS brings it back after the visibility timeout."""


def handle_record(record: SQSRecord) -> dict[str, Any]:
    deps = wiring.decider()
    result = deps.work.handle(record.body, on_read=logger.set_correlation_id)
    if isinstance(result, HomeResult):  # the Home tab or a slash command: best effort, never retried
        _observe_home(result)
        return {"outcome": result.outcome}
    _observe(result)
    if result.retry_later:
        raise RetryLater(f"{result.outcome.value}: {result.detail or 'the claim is held'}")
    return {"outcome": result.outcome.value, "s3_status": result.s3_status}


def _observe(result: DecisionResult) -> None:
    request = result.request
    if result.outcome == Outcome.APPLIED:
        decision = request.decision if request else None
        metrics.add_metric(
            name=METRIC_APPROVED if decision == "approve" else METRIC_CANCELLED, unit=MetricUnit.Count, value=1
        )
        if request is not None and request.decided_at is not None:
            waited = (request.decided_at - request.requested_at).total_seconds()
            metrics.add_metric(name=METRIC_TIME_TO_DECISION, unit=MetricUnit.Seconds, value=max(0.0, waited))
    elif result.outcome == Outcome.FAILED:
        metrics.add_metric(name=METRIC_DECISION_FAILED, unit=MetricUnit.Count, value=1)
    elif result.outcome == Outcome.UNVERIFIED:
        metrics.add_metric(name=METRIC_DECISION_UNVERIFIED, unit=MetricUnit.Count, value=1)
        logger.error("unverified work refused", detail=result.detail)
    elif result.outcome == Outcome.DUPLICATE:
        metrics.add_metric(name=METRIC_DUPLICATE_DECISION, unit=MetricUnit.Count, value=1)
    elif result.outcome == Outcome.VOTE_RECORDED:
        metrics.add_metric(name=METRIC_VOTE_RECORDED, unit=MetricUnit.Count, value=1)
    elif result.refused:
        metrics.add_metric(name=METRIC_REFUSED, unit=MetricUnit.Count, value=1)
        if result.outcome == Outcome.REQUESTER:
            metrics.add_metric(name=METRIC_REQUESTER_REFUSED, unit=MetricUnit.Count, value=1)
    if result.notices_failed:
        metrics.add_metric(name=METRIC_NOTICE_FAILED, unit=MetricUnit.Count, value=result.notices_failed)
    logger.info(
        "decision handled",
        outcome=result.outcome.value,
        job_id=request.job.job_id if request else None,
        decision=request.decision if request else None,
        s3_status=result.s3_status,
        detail=result.detail,
        retry_later=result.retry_later,
    )


def _observe_home(result: HomeResult) -> None:
    if result.outcome == "duplicate":
        metrics.add_metric(name=METRIC_DUPLICATE_EVENT, unit=MetricUnit.Count, value=1)
    if result.failures:
        metrics.add_metric(name=METRIC_NOTICE_FAILED, unit=MetricUnit.Count, value=result.failures)
        logger.warning("home or command reply not delivered", detail=result.detail)
    logger.info("home work handled", outcome=result.outcome, detail=result.detail)


def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wiring.common().deadline.start(context)
    processor = _processor()
    response = process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
    errors = [info for info in processor.exceptions if not isinstance(info[1], RetryLater)]
    if errors and len(processor.exceptions) == len(processor.records):
        raise BatchProcessingError(msg=f"All {len(processor.records)} records failed.", child_exceptions=errors)
    return dict(response)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
