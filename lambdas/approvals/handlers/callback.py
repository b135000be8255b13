"""Callback: Slack's requests → verified, parsed, queued, acked within Slack's 3 seconds. Three routes:

- ``POST /slack/interactions`` (interactivity): verify Slack's signature over the raw body (nothing is
  read before that) → read the payload (approvals.domain.interactions: the workspace first, then the
  action) → queue the request exactly as Slack signed it (models.slack.SignedSlackRequest) to SQS, or
  open the cancel-reason modal. The decider verifies the signature again and applies the decision
  (approvals.handlers.decider → approvals.domain.work → domain.decisions).
- ``POST /slack/events`` (Events API): verify → ``url_verification`` is answered with its challenge;
  ``app_home_opened`` (Home tab) is queued for the decider, which publishes the person's Home view. Slack
  retries an event it thinks was lost (``X-Slack-Retry-Num``); every delivery is queued and the decider
  handles each ``event_id`` once (a conditional write), so a retry is never processed twice.
- ``POST /slack/commands`` (the slash command): verify → read the form (approvals.domain.home) → queue;
  the decider answers through the command's response_url, ephemerally.
"""

from __future__ import annotations

from approvals import coldstart

with coldstart.long_lived():  # modules load once per execution environment (approvals.coldstart)
    import base64
    import json
    from dataclasses import dataclass
    from typing import Any

    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from botocore.exceptions import BotoCoreError, ClientError
    from pydantic import TypeAdapter, ValidationError

    import approvals.snapstart  # noqa: F401 (SnapStart's runtime hooks register on import)
    from approvals import wiring
    from approvals.adapters.secrets import SecretError
    from approvals.adapters.signature import InvalidSignature
    from approvals.domain.authorisation import known_refusal
    from approvals.domain.interactions import (
        BadInteraction,
        ForeignTeam,
        ModalErrors,
        OpenReasonModal,
        Queue,
        read,
    )
    from approvals.domain.ports import ChatUnavailable
    from approvals.models.slack import MAX_BODY_BYTES, CorrelationId, Intent, SignedSlackRequest
    from approvals.names import METRIC_FOREIGN_TEAM, METRIC_SIGNATURE_REJECTED
    from approvals.observability import MetricUnit, logger, metrics

ROUTE = ("POST", "/slack/interactions")
EVENTS_ROUTE = ("POST", "/slack/events")
COMMANDS_ROUTE = ("POST", "/slack/commands")
_correlation_id: TypeAdapter[str] = TypeAdapter(CorrelationId)


class MalformedEvent(Exception):
    """The event is not one API Gateway's proxy integration sends; the message says what was wrong."""


@dataclass(frozen=True)
class Request:
    """The parts of API Gateway's proxy event the callback reads (Powertools' event classes cost
    about 18 ms of cold start, so the few fields are read here), each checked for its shape."""

    method: str
    resource: str
    body: str
    headers: dict[str, str]
    request_id: str | None
    source_ip: str | None

    @classmethod
    def of(cls, event: object) -> Request:
        if not isinstance(event, dict):
            raise MalformedEvent("the event is not an object")
        body = event.get("body") or ""
        if not isinstance(body, str):
            raise MalformedEvent("the body is not text")
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(body, validate=True).decode("utf-8")
            except ValueError:  # not base64, not ASCII, or not UTF-8 once decoded
                raise BadInteraction("the body is not valid base64 UTF-8") from None
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no bytes Slack could have signed
            raise BadInteraction("the body is not valid UTF-8") from None
        raw_headers = event.get("headers")
        headers = (
            {k: v for k, v in raw_headers.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(raw_headers, dict)
            else {}
        )
        context = event.get("requestContext")
        context = context if isinstance(context, dict) else {}
        identity = context.get("identity")
        source_ip = identity.get("sourceIp") if isinstance(identity, dict) else None
        return cls(
            method=str(event.get("httpMethod") or ""),
            resource=str(event.get("resource") or event.get("path") or ""),
            body=body,
            headers=headers,
            request_id=_request_id(context.get("requestId")),
            source_ip=source_ip if isinstance(source_ip, str) else None,
        )


def _request_id(value: object) -> str | None:
    if value is None:
        return None
    try:
        return _correlation_id.validate_python(value)
    except ValidationError:
        raise MalformedEvent("requestContext.requestId is not a request ID") from None


class QueueUnavailable(Exception):
    pass


class NotFound(Exception):
    pass


class TooLarge(Exception):
    pass


def _verified(event: Request) -> wiring.CallbackDeps:
    """The callback's dependencies, once Slack's signature over the body checks out."""
    deps = wiring.callback()
    if len(event.body.encode()) > MAX_BODY_BYTES:
        raise TooLarge()
    deps.verifier.verify(event.body, event.headers)  # nothing about the request is read before this passes
    return deps


def route(event: Request) -> dict[str, Any]:
    """One route per Slack entry point; anything else is not found."""
    target = {ROUTE: interactions, EVENTS_ROUTE: events, COMMANDS_ROUTE: commands}.get((event.method, event.resource))
    if target is None:
        raise NotFound(f"{event.method} {event.resource}")
    return target(event)


def events(event: Request) -> dict[str, Any]:
    """The Events API: the challenge, or app_home_opened queued for the decider; every event acked at once."""
    deps = _verified(event)
    from approvals.domain import home  # only Events API requests and commands load the Home tab's code

    action = home.read_event(event.body, deps.teams)
    if isinstance(action, home.Challenge):
        return _response(200, json.dumps({"challenge": action.challenge}), "application/json")
    if isinstance(action, home.HomeOpened):
        lowered = {k.lower(): v for k, v in event.headers.items()}
        retry = lowered.get("x-slack-retry-num")
        if retry:  # queued anyway: the first delivery may have failed before it was queued
            logger.info("event retried by slack", retry=retry[:4], reason=lowered.get("x-slack-retry-reason", "")[:40])
        _enqueue(deps, "home", event)
    return _response(200, "")


def commands(event: Request) -> dict[str, Any]:
    """The slash command: queued for the decider, which answers through its response_url; acked empty."""
    deps = _verified(event)
    from approvals.domain import home

    cfg = deps.common.settings
    try:
        home.read_command(event.body, deps.teams, cfg.slash_command, cfg.response_url_prefixes)
    except ForeignTeam:
        raise
    except BadInteraction as exc:  # Slack shows a 4xx as a bare "failed": say why, to the person only
        logger.warning("command refused", reason=str(exc))
        reply = {"response_type": "ephemeral", "text": f"Sorry, this command could not be handled: {exc}."}
        return _response(200, json.dumps(reply), "application/json")
    _enqueue(deps, "command", event)
    return _response(200, "")


def interactions(event: Request) -> dict[str, Any]:
    if (event.method, event.resource) != ROUTE:
        raise NotFound(f"{event.method} {event.resource}")
    deps = _verified(event)

    try:
        action = read(event.body, deps.teams, correlation_id=event.request_id)
    except BadInteraction:
        _record_refusal(deps, event)  # signed by Slack: worth an audit record (the decider re-reads why)
        raise

    if isinstance(action, Queue):
        _enqueue(deps, "decide", event)
    elif isinstance(action, ModalErrors):
        return _response(200, json.dumps({"response_action": "errors", "errors": action.errors}), "application/json")
    elif isinstance(action, OpenReasonModal):
        _open_reason_modal(deps, action, event)
    return _response(200, "")


def _record_refusal(deps: wiring.CallbackDeps, event: Request) -> None:
    """Best effort: the 4xx answer stands even if the refusal cannot be queued."""
    try:
        _enqueue(deps, "invalid", event)
    except QueueUnavailable:
        logger.warning("refusal not recorded")


def _open_reason_modal(deps: wiring.CallbackDeps, action: OpenReasonModal, event: Request) -> None:
    from approvals.domain import message  # only Cancel clicks render the modal

    command = action.command
    if known_refusal(command.actor.user_id, deps.common.anyone_who_may_decide, deps.chat.cached_group_members):
        _enqueue(deps, "refuse_cancel", event)  # the decider refuses it, records it and tells the person
        return
    try:
        deps.chat.open_modal(action.trigger_id, message.render_reason_modal(action.metadata, command.job.job_id))
    except ChatUnavailable as exc:
        logger.warning("reason modal not opened", job_id=command.job.job_id, reason=str(exc))
        if command.channel:
            _enqueue(deps, "modal_failed", event)


def _enqueue(deps: wiring.CallbackDeps, intent: Intent, event: Request) -> None:
    """Queue the request exactly as Slack signed it: the decider verifies the signature again."""
    lowered = {k.lower(): v for k, v in event.headers.items()}
    work = SignedSlackRequest(
        intent=intent,
        body=event.body,
        timestamp=lowered["x-slack-request-timestamp"],
        signature=lowered["x-slack-signature"],
        correlation_id=event.request_id,
    )
    try:
        deps.sqs.send_message(QueueUrl=deps.queue_url, MessageBody=work.model_dump_json())
    except (ClientError, BotoCoreError) as exc:
        raise QueueUnavailable(type(exc).__name__) from exc
    logger.info("work queued", intent=intent)


def _response(status: int, body: str, content_type: str = "text/plain") -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": content_type}, "body": body, "isBase64Encoded": False}


def _error_response(exc: Exception, event: Request | None) -> dict[str, Any]:
    """Every refusal becomes a response here, and only here."""
    if isinstance(exc, InvalidSignature):
        logger.warning("signature rejected", reason=exc.reason, source_ip=event.source_ip if event else None)
        metrics.add_metric(name=METRIC_SIGNATURE_REJECTED, unit=MetricUnit.Count, value=1)
        return _response(401, "")
    if isinstance(exc, ForeignTeam):
        logger.warning("request from another Slack workspace refused", reason=str(exc))
        metrics.add_metric(name=METRIC_FOREIGN_TEAM, unit=MetricUnit.Count, value=1)
        return _response(403, f"Request refused: {exc}")
    if isinstance(exc, MalformedEvent):
        logger.warning("malformed event refused", reason=str(exc))
        return _response(400, f"Malformed request: {exc}")
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


def handle(raw: Any, context: LambdaContext) -> dict[str, Any]:
    wiring.common().deadline.start(context)
    event = None
    try:
        event = Request.of(raw)
        return route(event)
    except (InvalidSignature, BadInteraction, MalformedEvent, TooLarge, NotFound, QueueUnavailable, SecretError) as exc:
        return _error_response(exc, event)


# No X-Ray SDK here: Lambda's active tracing still records every invocation, and the SDK would add
# about 90 ms to a cold start that must answer Slack within 3 seconds. The decider is traced fully.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
