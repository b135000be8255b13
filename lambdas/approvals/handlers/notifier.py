"""Notifier: S3 Batch Operations job events (and the reconciliation schedule) → Slack approval requests.

EventBridge → the job events queue (SQS) → ``handler`` (a few at once: the event source's maximum
concurrency) → parse the event → dedupe on jobEventId (Powertools idempotency) →
``RequestService.on_job_event`` (approvals.domain.requests). Each post waits for the channel's turn
(adapters/pacing.py), so a burst of jobs drains at Slack's pace instead of meeting its 429s.

Events it does not handle are logged, counted and acknowledged, never retried forever; AWS or Slack
failures fail the record, so SQS delivers it again after the visibility timeout and, after the
queue's maximum receives, moves it to the dead-letter queue, which alarms. The reconciliation
schedule and the lifecycle tick (every minute: reminders, escalation and expiry of pending requests,
approvals.domain.sweep) invoke the function directly (asynchronously); their failures go to the
on-failure queue.
"""

from __future__ import annotations

from approvals import coldstart

with coldstart.long_lived():  # modules load once per execution environment (approvals.coldstart)
    import json
    from typing import Any

    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency import (
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import ValidationError

    import approvals.snapstart  # noqa: F401 (SnapStart's runtime hooks register on import)
    from approvals import wiring
    from approvals.adapters.s3control import LIST_PAGE_SIZE
    from approvals.domain.decisions import Outcome
    from approvals.domain.ports import AccountUnreachable, JobNotFound, JobsUnavailable, PostingDeferred
    from approvals.domain.requests import EventOutcome, EventResult
    from approvals.models.events import CreateJobApiEvent, JobEvent
    from approvals.models.job import JobRef
    from approvals.models.records import RequestState
    from approvals.names import (
        LIFECYCLE_TICK,
        METRIC_ACCOUNT_UNREACHABLE,
        METRIC_APPROVAL_REQUESTED,
        METRIC_DECISION_STUCK,
        METRIC_DUPLICATE_EVENT,
        METRIC_EVENT_DROPPED,
        METRIC_POLICY_DECISION,
        METRIC_REMINDER_SENT,
        METRIC_REQUEST_EXPIRED,
        RECONCILE_MINUTES,
        SERVICE_NAME,
    )
    from approvals.observability import MetricUnit, logger, metrics, tracer

SCHEDULED = "Scheduled Event"
API_CALL = "AWS API Call via CloudTrail"
# One reconciliation run makes at most this many S3 Control calls (ListJobs pages and jobs followed) over every
# account and region the hub serves; the rest waits for the next run, which starts from the next place.
RECONCILE_MAX_CALLS = 300
RECONCILE_LIST_LIMIT = 5 * LIST_PAGE_SIZE  # Suspended jobs listed per place and run (5 ListJobs pages)
RECONCILE_EVERY_SECONDS = RECONCILE_MINUTES * 60


def _duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    metrics.add_metric(name=METRIC_DUPLICATE_EVENT, unit=MetricUnit.Count, value=1)
    logger.info("duplicate event ignored", idempotency_key=idempotent_data.idempotency_key)
    return response


def _once(deps: wiring.NotifierDeps, context: LambdaContext) -> Any:
    """``process`` wrapped in Powertools idempotency keyed on the event's account, region and jobEventId (a hub
    takes events of many accounts: a job ID, and so an event, is one account's and region's)."""
    config = IdempotencyConfig(
        event_key_jmespath="[account, region, detail.serviceEventDetails.jobEventId]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=24 * 3600,
        response_hook=_duplicate,
    )
    config.register_lambda_context(context)
    return idempotent_function(data_keyword_argument="event", persistence_store=deps.idempotency, config=config)(
        process
    )


def job_of(event: dict[str, Any]) -> tuple[JobRef, JobEvent]:
    """The job an event names; raises ValidationError for anything S3 could not have sent."""
    parsed = JobEvent.model_validate(event)  # an object only (Powertools' parse() would also take JSON text)
    details = parsed.detail.service_event_details
    return JobRef(account_id=parsed.account, region=parsed.region, job_id=details.job_id), parsed


def process(event: dict[str, Any]) -> dict[str, Any]:
    ref, parsed = job_of(event)
    details = parsed.detail.service_event_details
    logger.append_keys(job_id=ref.job_id, job_event_id=details.job_event_id)
    return follow(ref, event_status=details.status)


def follow(ref: JobRef, event_status: str | None = None) -> dict[str, Any]:
    try:
        result = wiring.notifier().requests.on_job_event(ref)
    except JobNotFound:
        logger.warning("job not found, event dropped", job_id=ref.job_id, reason="DescribeJob NotFound")
        metrics.add_metric(name=METRIC_EVENT_DROPPED, unit=MetricUnit.Count, value=1)
        return {"outcome": "job_not_found", "job_id": ref.job_id}
    if result.outcome == EventOutcome.POSTED:
        metrics.add_metric(name=METRIC_APPROVAL_REQUESTED, unit=MetricUnit.Count, value=1)
    status = result.job.status if result.job else None
    _log_side_effects(result)
    logger.info(
        "job event handled",
        job_id=ref.job_id,
        outcome=result.outcome.value,
        event_status=event_status,
        job_status=status,
    )
    return {"outcome": result.outcome.value, "job_id": ref.job_id, "job_status": status}


def created(event: dict[str, Any]) -> dict[str, Any]:
    """A CreateJob API-call event: who created the job, kept for its request (and shown if it is posted).

    Needs no deduplication: recording the requester, its audit record and the message update are each
    idempotent. Slack or DynamoDB failing raises, so Lambda retries it like a job event.
    """
    call = CreateJobApiEvent.model_validate(event).call()
    if call is None:
        return _dropped(event, "not a successful CreateJob call of S3 Batch Operations", "detail")
    if not wiring.common().accounts(wiring.NOTIFIER).serves(call.account_id, call.region):
        return _not_served(event, call.account_id, call.region)
    logger.append_keys(job_id=call.job_id)
    try:
        result = wiring.notifier().requests.on_create_job(call)
    except JobNotFound:
        logger.warning("job not found, event dropped", job_id=call.job_id, reason="DescribeJob NotFound")
        metrics.add_metric(name=METRIC_EVENT_DROPPED, unit=MetricUnit.Count, value=1)
        return {"outcome": "job_not_found", "job_id": call.job_id}
    _log_side_effects(result)
    logger.info("requester event handled", job_id=call.job_id, outcome=result.outcome.value)
    return {"outcome": result.outcome.value, "job_id": call.job_id}


def _log_side_effects(result: EventResult) -> None:
    if result.requester_problem:
        logger.warning("requester not looked up, retried later", problem=result.requester_problem[:500])
    decided = result.policy_decision
    if decided is not None:
        if decided.outcome == Outcome.APPLIED:
            metrics.add_metric(name=METRIC_POLICY_DECISION, unit=MetricUnit.Count, value=1)
        logger.info("policy decision", outcome=decided.outcome.value, detail=decided.detail)


def reconcile(account_id: str, region: str) -> dict[str, Any]:
    """Lost events happen: find every Suspended job and make sure it has a request, in every account and region
    the hub serves (the schedule's own, when it is no hub); and finish every decision claim its holder left past
    the lease.

    Bounded: at most RECONCILE_MAX_CALLS S3 Control calls (ListJobs pages and the DescribeJob of each job
    followed); a job whose request is pending with its creator known needs nothing and costs no S3 call. Each
    run starts one place further along, so a large account never keeps the others waiting."""
    deps = wiring.notifier()
    recovered = recover_stuck(deps)
    places = deps.common.settings.places or ((account_id, region),)
    run = int(wiring.utc_now().timestamp() // RECONCILE_EVERY_SECONDS)  # this run's number: the runs take turns
    start = run % len(places)
    budget = RECONCILE_MAX_CALLS
    outcomes: dict[str, int] = {}
    failures: list[str] = []
    suspended = 0
    for place_account, place_region in places[start:] + places[:start]:
        if budget <= 0:
            outcomes["places_deferred"] = outcomes.get("places_deferred", 0) + 1
            continue
        try:
            ids = deps.common.jobs(wiring.NOTIFIER).list_awaiting(
                place_account, place_region, limit=RECONCILE_LIST_LIMIT
            )
        except JobsUnavailable as exc:
            _unreachable_metric(exc)
            logger.error(
                "reconciliation could not list jobs", account_id=place_account, region=place_region, why=str(exc)
            )
            failures.append(f"{place_account}/{place_region}")
            continue
        budget -= max(1, -(-len(ids) // LIST_PAGE_SIZE))  # the ListJobs pages it took
        suspended += len(ids)
        for index, job_id in enumerate(ids):
            ref = JobRef(account_id=place_account, region=place_region, job_id=job_id)
            known = deps.common.store.get(ref)
            if (
                known is not None
                and known.state == RequestState.PENDING
                and (known.requester is not None or deps.requests.requesters is None)
            ):
                outcomes["pending"] = outcomes.get("pending", 0) + 1  # requested, and nothing left to learn
                continue
            if budget <= 0:
                outcomes["deferred"] = outcomes.get("deferred", 0) + len(ids) - index
                break
            budget -= 1
            try:
                outcome = follow(ref)["outcome"]
            except PostingDeferred as exc:
                # Slack's pace leaves no turn before this run must end: the next run carries on from here.
                outcomes["deferred"] = outcomes.get("deferred", 0) + len(ids) - index
                logger.info("reconciliation deferred the rest to its next run", deferred=len(ids) - index, why=str(exc))
                budget = 0
                break
            except Exception as exc:
                _unreachable_metric(exc)
                logger.exception("reconciliation failed for a job", job_id=job_id, account_id=place_account)
                failures.append(f"{place_account}/{place_region}/{job_id}")
                continue
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    logger.info(
        "reconciliation done",
        places=len(places),
        suspended_jobs=suspended,
        outcomes=outcomes,
        failures=len(failures),
        recovered=recovered,
    )
    if failures:
        raise RuntimeError(f"reconciliation failed for {len(failures)}: {', '.join(failures[:10])}")
    return {"outcome": "reconciled", "suspended_jobs": suspended, "recovered": recovered, **outcomes}


def _unreachable_metric(exc: BaseException) -> None:
    if isinstance(exc, AccountUnreachable):
        metrics.add_metric(name=METRIC_ACCOUNT_UNREACHABLE, unit=MetricUnit.Count, value=1)


def sweep() -> dict[str, Any]:
    """The lifecycle tick: remind, escalate and expire the pending requests whose next step is due."""
    result = wiring.notifier().lifecycle.run()
    reminded = result.outcomes["reminded"] + result.outcomes["escalated"]
    expired = sum(count for outcome, count in result.outcomes.items() if outcome.startswith("expired_"))
    if reminded:
        metrics.add_metric(name=METRIC_REMINDER_SENT, unit=MetricUnit.Count, value=reminded)
    if expired:
        metrics.add_metric(name=METRIC_REQUEST_EXPIRED, unit=MetricUnit.Count, value=expired)
    for error in result.errors:
        logger.warning("lifecycle step failed, due again at the next tick", error=error)
    logger.info("lifecycle sweep done", due=result.due, outcomes=dict(result.outcomes), failures=result.failures)
    if result.outcomes["account_unreachable"]:
        metrics.add_metric(
            name=METRIC_ACCOUNT_UNREACHABLE, unit=MetricUnit.Count, value=result.outcomes["account_unreachable"]
        )
    if result.failures:
        # Lambda retries the tick; the steps that failed are due again at once, the others are done.
        raise RuntimeError(f"the lifecycle sweep failed for {result.failures} of {result.due} due requests")
    return {"outcome": "swept", "due": result.due, **result.outcomes}


def recover_stuck(deps: wiring.NotifierDeps) -> int:
    """Claims left past the point where their message could still come back: each is finished."""
    results = deps.decisions.recover_stuck(deps.common.settings.decision_stuck_after_seconds)
    for result in results:
        metrics.add_metric(name=METRIC_DECISION_STUCK, unit=MetricUnit.Count, value=1)
        logger.warning(
            "stuck decision finished",
            job_id=result.request.job.job_id if result.request else None,
            outcome=result.outcome.value,
            detail=result.detail,
        )
    return len(results)


def handle(event: Any, context: LambdaContext) -> dict[str, Any]:
    wiring.common().deadline.start(context)
    if _from_queue(event):
        # A failed record comes back after the queue's visibility timeout; the others in its batch are done.
        # One processor per invocation: it keeps the batch's state, which concurrent invocations must not share.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return dict(process_partial_response(event=event, record_handler=queued, processor=processor, context=context))
    return dispatch(event, context)


def _from_queue(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def queued(record: SQSRecord, lambda_context: LambdaContext) -> dict[str, Any]:
    """One event from the job events queue, whose body is the EventBridge event as the rule matched it."""
    try:
        event = json.loads(record.body)
    except (ValueError, TypeError, RecursionError) as exc:
        return _dropped(None, f"the queued message is not JSON ({type(exc).__name__})", "body")
    if isinstance(event, dict) and event.get("detail-type") in (SCHEDULED, LIFECYCLE_TICK):
        return _dropped(event, "a schedule event on the job events queue", "detail-type")
    try:
        return dispatch(event, lambda_context)
    except AccountUnreachable as exc:
        metrics.add_metric(name=METRIC_ACCOUNT_UNREACHABLE, unit=MetricUnit.Count, value=1)
        logger.error("the hub cannot act in the job's account; the queue delivers it again", why=str(exc))
        _report_unreachable(event, str(exc))  # said once per job (RequestService.report_unreachable)
        raise
    except Exception:
        # The batch processor marks the record failed (SQS delivers it again) but logs nothing above DEBUG:
        # say what failed here, so a Slack or AWS failure shows in the log at once, not only as a DLQ alarm.
        logger.exception("event failed, the queue delivers it again", message_id=record.message_id)
        raise


def _report_unreachable(event: Any, problem: str) -> None:
    """Best effort: a notice in the channel that a job may wait where the hub cannot act."""
    try:
        if event.get("detail-type") == API_CALL:
            call = CreateJobApiEvent.model_validate(event).call()
            if call is None:
                return
            ref = JobRef(account_id=call.account_id, region=call.region, job_id=call.job_id)
        else:
            ref, _ = job_of(event)
        wiring.notifier().requests.report_unreachable(ref, problem)
    except Exception:
        logger.exception("the notice that the hub cannot act in an account was not posted")


def dispatch(event: Any, context: LambdaContext) -> dict[str, Any]:
    """An EventBridge event: a schedule's (reconciliation, lifecycle tick), a CreateJob call or a job event."""
    if isinstance(event, dict) and event.get("detail-type") == LIFECYCLE_TICK and event.get("source") == SERVICE_NAME:
        return sweep()
    if isinstance(event, dict) and event.get("detail-type") == SCHEDULED and event.get("source") == "aws.events":
        try:
            where = JobRef(account_id=event.get("account"), region=event.get("region"), job_id="reconcile")
        except (ValidationError, TypeError):
            return _dropped(event, "the schedule event names no valid account and region", "account")
        return reconcile(where.account_id, where.region)
    if not isinstance(event, dict):  # Lambda hands over a JSON object; anything else is no S3 event
        return _dropped(event, "the event is not a JSON object", "")
    if event.get("detail-type") == API_CALL:
        try:
            return created(event)
        except ValidationError as exc:
            first = exc.errors()[0]
            return _dropped(event, first["msg"], ".".join(str(p) for p in first["loc"]))
        except (ValueError, TypeError, RecursionError) as exc:
            return _dropped(event, type(exc).__name__, "")
    try:
        ref, _ = job_of(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        return _dropped(event, first["msg"], ".".join(str(p) for p in first["loc"]))
    except (ValueError, TypeError, RecursionError) as exc:
        return _dropped(event, type(exc).__name__, "")
    if not wiring.common().accounts(wiring.NOTIFIER).serves(ref.account_id, ref.region):
        return _not_served(event, ref.account_id, ref.region)
    return _once(wiring.notifier(), context)(event=event)  # type: ignore[no-any-return]


def _not_served(event: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """An event of an account and region this hub does not serve: the bus policy admits the organisation, the
    hub acts only where its settings say (MEMBER_ACCOUNTS). Never acted on, never retried."""
    logger.warning("event of an account this hub does not serve", account_id=account_id, region=region)
    return _dropped(event, f"account {account_id} in {region} is not served by this hub", "account")


def _dropped(event: object, reason: str, field: str) -> dict[str, Any]:
    """An event S3 could not have sent: logged (safely, whatever its shape), counted, acknowledged."""
    detail = event.get("detail") if isinstance(event, dict) else None
    name = detail.get("eventName") if isinstance(detail, dict) else None
    logger.warning(
        "event dropped", reason=reason, field=field[:200], event_name=name[:64] if isinstance(name, str) else None
    )
    metrics.add_metric(name=METRIC_EVENT_DROPPED, unit=MetricUnit.Count, value=1)
    return {"outcome": "dropped", "reason": reason}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
