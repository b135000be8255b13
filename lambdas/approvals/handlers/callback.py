"""Callback: Slack interactivity (POST /slack/interactions) → verified, parsed, queued, acked in time.

API Gateway → ``handler`` → verify Slack's signature over the raw body (nothing is read before
that) → parse the payload (approvals.domain.interactions) → queue a DecisionCommand to SQS, or open
the cancel-reason modal → HTTP 200 within Slack's 3 seconds. The decider function applies the
decision (approvals.handlers.decider → approvals.domain.decisions).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from approvals import wiring
from approvals.adapters.secrets import SecretError
from approvals.adapters.signature import InvalidSignature
from approvals.domain import message
from approvals.domain.authorisation import known_refusal
from approvals.domain.interactions import (
    BadInteraction,
    ModalErrors,
    Nothing,
    OpenReasonModal,
    Queue,
    interpret,
    parse_payload,
)
from approvals.domain.ports import ChatUnavailable
from approvals.models.slack import DecisionCommand, NoticeCommand
from approvals.names import METRIC_SIGNATURE_REJECTED
from approvals.observability import MetricUnit, logger, metrics, tracer

MAX_BODY_BYTES = 64 * 1024  # Slack payloads are a few KB; API Gateway itself allows 10 MB
app = APIGatewayRestResolver()


class QueueUnavailable(Exception):
    pass


@app.post("/slack/interactions")
def interactions() -> Response[Any]:
    deps = wiring.callback()
    event = app.current_event
    body = event.decoded_body or ""  # base64-decoded when API Gateway flags isBase64Encoded
    if len(body.encode()) > MAX_BODY_BYTES:
        return _text(413, "Request body too large.")
    deps.verifier.verify(body, event.headers)  # raises InvalidSignature → 401

    fields = parse_qs(body, keep_blank_values=True, max_num_fields=20)
    payload = parse_payload((fields.get("payload") or [None])[0])
    action = interpret(payload, correlation_id=event.request_context.request_id)

    if isinstance(action, Queue):
        _enqueue(deps, action.command)
        return _empty()
    if isinstance(action, ModalErrors):
        return Response(200, content_types.APPLICATION_JSON, {"response_action": "errors", "errors": action.errors})
    if isinstance(action, OpenReasonModal):
        _open_reason_modal(deps, action)
        return _empty()
    assert isinstance(action, Nothing)
    return _empty()


def _open_reason_modal(deps: wiring.CallbackDeps, action: OpenReasonModal) -> None:
    command = action.command
    cached = deps.chat.cached_group_members
    if known_refusal(command.actor.user_id, deps.common.approvers, cached):
        _enqueue(deps, command)  # the decider refuses it, records it and tells the person
        return
    try:
        deps.chat.open_modal(action.trigger_id, message.render_reason_modal(action.metadata, command.job.job_id))
    except ChatUnavailable as exc:
        logger.warning("reason modal not opened", job_id=command.job.job_id, reason=str(exc))
        if command.channel:
            _enqueue(
                deps,
                NoticeCommand(
                    job=command.job,
                    actor=command.actor,
                    channel=command.channel,
                    text=message.modal_failed_text(command.job.job_id),
                    correlation_id=command.correlation_id,
                ),
            )


def _enqueue(deps: wiring.CallbackDeps, work: DecisionCommand | NoticeCommand) -> None:
    try:
        deps.sqs.send_message(QueueUrl=deps.queue_url, MessageBody=work.model_dump_json())
    except (ClientError, BotoCoreError) as exc:
        raise QueueUnavailable(type(exc).__name__) from exc
    logger.info(
        "work queued",
        kind=work.kind,
        job_id=work.job.job_id,
        user_id=work.actor.user_id,
        decision=getattr(work, "decision", None),
    )


def _empty() -> Response[Any]:
    return Response(200, content_types.TEXT_PLAIN, "")


def _text(status: int, text: str) -> Response[Any]:
    return Response(status, content_types.TEXT_PLAIN, text)


# -- errors become responses here, and only here ---------------------------------------------------


@app.exception_handler(InvalidSignature)
def _unauthorised(exc: InvalidSignature) -> Response[Any]:
    logger.warning(
        "signature rejected", reason=exc.reason, source_ip=app.current_event.request_context.identity.source_ip
    )
    metrics.add_metric(name=METRIC_SIGNATURE_REJECTED, unit=MetricUnit.Count, value=1)
    return _text(401, "")


@app.exception_handler(BadInteraction)
def _bad_request(exc: BadInteraction) -> Response[Any]:
    logger.warning("interaction refused", reason=str(exc))
    return _text(400, f"Request not understood: {exc}")


@app.exception_handler(QueueUnavailable)
def _queue_down(exc: QueueUnavailable) -> Response[Any]:
    logger.error("decision not queued", reason=str(exc))
    return _text(503, "The decision could not be queued; nothing was changed. Please try again.")


@app.exception_handler(SecretError)
def _misconfigured(exc: SecretError) -> Response[Any]:
    logger.error("slack secret unusable", reason=str(exc))
    return _text(500, "")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wiring.common().deadline.start(context)
    return app.resolve(event, context)
