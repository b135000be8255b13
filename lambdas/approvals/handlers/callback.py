"""Callback: Slack interactivity (POST /slack/interactions) → verified, parsed, queued, acked in time.

API Gateway → ``handler`` → verify Slack's signature over the raw body (nothing is read before
that) → parse the payload (approvals.domain.interactions) → queue a DecisionCommand to SQS, or open
the cancel-reason modal → HTTP 200 within Slack's 3 seconds. The decider function applies the
decision (approvals.handlers.decider → approvals.domain.decisions).
"""

from __future__ import annotations

from approvals import coldstart

with coldstart.long_lived():  # modules load once per execution environment (approvals.coldstart)
    import base64
    import binascii
    import json
    from dataclasses import dataclass
    from typing import Any
    from urllib.parse import parse_qs

    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from botocore.exceptions import BotoCoreError, ClientError

    from approvals import wiring
    from approvals.adapters.secrets import SecretError
    from approvals.adapters.signature import InvalidSignature
    from approvals.domain.authorisation import known_refusal
    from approvals.domain.interactions import (
        BadInteraction,
        ModalErrors,
        OpenReasonModal,
        Queue,
        interpret,
        parse_payload,
        refusal,
    )
    from approvals.domain.ports import ChatUnavailable
    from approvals.models.slack import DecisionCommand, NoticeCommand, RefusalCommand
    from approvals.names import METRIC_SIGNATURE_REJECTED
    from approvals.observability import MetricUnit, logger, metrics

ROUTE = ("POST", "/slack/interactions")
MAX_BODY_BYTES = 64 * 1024  # Slack payloads are a few KB; API Gateway itself allows 10 MB


@dataclass(frozen=True)
class Request:
    """The parts of API Gateway's proxy event the callback reads (Powertools' event classes cost
    about 18 ms of cold start, so the few fields are read here)."""

    method: str
    resource: str
    body: str
    headers: dict[str, str]
    request_id: str | None
    source_ip: str | None

    @classmethod
    def of(cls, event: dict[str, Any]) -> Request:
        body = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(body, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise BadInteraction("the body is not valid base64 UTF-8") from None
        context = event.get("requestContext") or {}
        return cls(
            method=str(event.get("httpMethod") or ""),
            resource=str(event.get("resource") or event.get("path") or ""),
            body=body,
            headers={str(k): str(v) for k, v in (event.get("headers") or {}).items()},
            request_id=context.get("requestId"),
            source_ip=(context.get("identity") or {}).get("sourceIp"),
        )


class QueueUnavailable(Exception):
    pass


class NotFound(Exception):
    pass


class TooLarge(Exception):
    pass


def interactions(event: Request) -> dict[str, Any]:
    if (event.method, event.resource) != ROUTE:
        raise NotFound(f"{event.method} {event.resource}")
    deps = wiring.callback()
    body = event.body  # base64-decoded when API Gateway flagged isBase64Encoded
    if len(body.encode()) > MAX_BODY_BYTES:
        raise TooLarge()
    deps.verifier.verify(body, event.headers)  # nothing about the request is read before this passes

    form = ""
    try:
        try:
            fields = parse_qs(body, keep_blank_values=True, max_num_fields=20)
        except ValueError:
            raise BadInteraction("the form has too many fields") from None
        form = (fields.get("payload") or [""])[0]
        action = interpret(parse_payload(form), correlation_id=event.request_id)
    except BadInteraction as exc:
        _record_refusal(deps, refusal(form, str(exc), event.request_id))  # signed by Slack: worth an audit record
        raise

    if isinstance(action, Queue):
        _enqueue(deps, action.command)
    elif isinstance(action, ModalErrors):
        return _response(200, json.dumps({"response_action": "errors", "errors": action.errors}), "application/json")
    elif isinstance(action, OpenReasonModal):
        _open_reason_modal(deps, action)
    return _response(200, "")


def _record_refusal(deps: wiring.CallbackDeps, work: RefusalCommand) -> None:
    """Best effort: the 400 answer stands even if the refusal cannot be queued."""
    try:
        _enqueue(deps, work)
    except QueueUnavailable:
        logger.warning("refusal not recorded", reason=work.reason)


def _open_reason_modal(deps: wiring.CallbackDeps, action: OpenReasonModal) -> None:
    from approvals.domain import message  # only Cancel clicks render the modal

    command = action.command
    if known_refusal(command.actor.user_id, deps.common.approvers, deps.chat.cached_group_members):
        _enqueue(deps, command)  # the decider refuses it, records it and tells the person
        return
    try:
        view = message.render_reason_modal(action.metadata, command.job.job_id)
    except message.MessageTooLarge:
        reason = "the click names a channel or message too long to carry into the form"
        _record_refusal(
            deps,
            RefusalCommand(reason=reason, actor=command.actor, job=command.job, correlation_id=command.correlation_id),
        )
        raise BadInteraction(reason) from None
    try:
        deps.chat.open_modal(action.trigger_id, view)
    except ChatUnavailable as exc:
        logger.warning("reason modal not opened", job_id=command.job.job_id, reason=str(exc))
        if command.channel:
            notice = NoticeCommand(
                job=command.job,
                actor=command.actor,
                channel=command.channel,
                text=message.modal_failed_text(command.job.job_id),
                correlation_id=command.correlation_id,
            )
            _enqueue(deps, notice)


def _enqueue(deps: wiring.CallbackDeps, work: DecisionCommand | NoticeCommand | RefusalCommand) -> None:
    try:
        deps.sqs.send_message(QueueUrl=deps.queue_url, MessageBody=work.model_dump_json())
    except (ClientError, BotoCoreError) as exc:
        raise QueueUnavailable(type(exc).__name__) from exc
    logger.info(
        "work queued",
        kind=work.kind,
        job_id=work.job.job_id if work.job else None,
        user_id=work.actor.user_id if work.actor else None,
        decision=getattr(work, "decision", None),
    )


def _response(status: int, body: str, content_type: str = "text/plain") -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": content_type}, "body": body, "isBase64Encoded": False}


def _error_response(exc: Exception, event: Request | None) -> dict[str, Any]:
    """Every refusal becomes a response here, and only here."""
    if isinstance(exc, InvalidSignature):
        logger.warning("signature rejected", reason=exc.reason, source_ip=event.source_ip if event else None)
        metrics.add_metric(name=METRIC_SIGNATURE_REJECTED, unit=MetricUnit.Count, value=1)
        return _response(401, "")
    if isinstance(exc, BadInteraction):
        logger.warning("interaction refused", reason=str(exc))
        return _response(400, f"Request not understood: {exc}")
    if isinstance(exc, TooLarge):
        return _response(413, "Request body too large.")
    if isinstance(exc, NotFound):
        return _response(404, "Not found.")
    if isinstance(exc, QueueUnavailable):
        logger.error("decision not queued", reason=str(exc))
        return _response(503, "The decision could not be queued; nothing was changed. Please try again.")
    assert isinstance(exc, SecretError)
    logger.error("slack secret unusable", reason=str(exc))
    return _response(500, "")


def handle(raw: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wiring.common().deadline.start(context)
    event = None
    try:
        event = Request.of(raw)
        return interactions(event)
    except (InvalidSignature, BadInteraction, TooLarge, NotFound, QueueUnavailable, SecretError) as exc:
        return _error_response(exc, event)


# No X-Ray SDK here: Lambda's active tracing still records every invocation, and the SDK would add
# about 90 ms to a cold start that must answer Slack within 3 seconds. The decider is traced fully.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
