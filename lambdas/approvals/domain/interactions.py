"""What a verified Slack interaction asks for: plain functions from payload models to actions.

No network here. The callback handler performs what these return, inside Slack's 3-second ack.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from pydantic import TypeAdapter, ValidationError

from approvals.models.job import JobRef
from approvals.models.slack import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    MAX_PRIVATE_METADATA,
    REASON_BLOCK_ID,
    REASON_INPUT_ACTION_ID,
    REASON_MODAL_CALLBACK_ID,
    BlockActionsPayload,
    ButtonValue,
    DecisionCommand,
    InteractionPayload,
    ModalMetadata,
    RefusalCommand,
    SlackChannel,
    SlackUser,
    ViewClosedPayload,
    ViewSubmissionPayload,
)

_payloads: TypeAdapter[Any] = TypeAdapter(InteractionPayload)


class BadInteraction(Exception):
    """The interaction cannot be acted on; the message says what was wrong (safe to show)."""


class ForeignTeam(BadInteraction):
    """Signed by Slack, but sent by someone from a workspace this app does not serve (Slack Connect)."""


@dataclass(frozen=True)
class Queue:
    """Queue this decision for the decider; answer Slack with an empty 200."""

    command: DecisionCommand


@dataclass(frozen=True)
class OpenReasonModal:
    """Open the cancel-reason modal with this trigger (within the 3 seconds)."""

    trigger_id: str
    metadata: ModalMetadata
    command: DecisionCommand  # what to queue instead when the user is certainly not an approver


@dataclass(frozen=True)
class ModalErrors:
    """Answer the modal submission with field errors (the modal stays open)."""

    errors: dict[str, str]


@dataclass(frozen=True)
class Nothing:
    """Acknowledge and do nothing (e.g. the modal was closed)."""


Action = Queue | OpenReasonModal | ModalErrors | Nothing


def form_payload(body: str) -> str:
    """The ``payload`` field of a verified form body."""
    try:
        fields = parse_qs(body, keep_blank_values=True, max_num_fields=20, errors="strict")
    except ValueError:  # too many fields, or percent-escapes that are not UTF-8
        raise BadInteraction("the form has too many fields or is not UTF-8") from None
    return (fields.get("payload") or [""])[0]


def read(body: str, teams: tuple[str, ...], correlation_id: str | None) -> Action:
    """What a verified request body asks for: the callback and the decider both read a request this way.

    Raises ForeignTeam for a person outside ``teams`` (before anything else is read), BadInteraction for
    anything else that cannot be acted on.
    """
    data = _json_object(form_payload(body))
    check_team(data, teams)
    return interpret(_validated(_unicode(data)), correlation_id=correlation_id)


def _json_object(form: str | None) -> dict[str, Any]:
    if not form:
        raise BadInteraction("the request has no payload field")
    try:
        data = json.loads(form)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BadInteraction("the payload is not JSON") from None
    if not isinstance(data, dict) or "type" not in data:
        raise BadInteraction("the payload has no type")
    return data


def _unicode(data: dict[str, Any]) -> dict[str, Any]:
    """A JSON escape such as "\\ud800" decodes to a lone surrogate: text no store or API downstream accepts."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadInteraction("the payload holds text that is not valid Unicode") from None
    return data


def check_team(data: dict[str, Any], teams: tuple[str, ...]) -> None:
    """Only people of the served workspace (or Enterprise Grid org) may act.

    The person's home is ``user.team_id`` (an ``E…`` ID for an Enterprise Grid org), else ``team.id``. In a
    Slack Connect channel people from other organisations can click; their home is not ours.
    """
    user = data.get("user")
    team = data.get("team")
    home = user.get("team_id") if isinstance(user, dict) else None
    if home is None and isinstance(team, dict):
        home = team.get("id")
    if not isinstance(home, str) or home not in teams:
        shown = home[:32] if isinstance(home, str) else "none"
        raise ForeignTeam(f"this app serves another Slack workspace (the request came from {shown!r})")


def parse_payload(form_payload: str | None) -> BlockActionsPayload | ViewSubmissionPayload | ViewClosedPayload:
    return _validated(_unicode(_json_object(form_payload)))


def _validated(data: dict[str, Any]) -> BlockActionsPayload | ViewSubmissionPayload | ViewClosedPayload:
    try:
        return _payloads.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "union_tag_invalid":
            raise BadInteraction(f"unsupported payload type {data.get('type')!r}") from None
        raise BadInteraction(f"malformed payload at {where}: {first['msg']}") from None


def _job_from_button(value: str | None) -> JobRef:
    if not value:
        raise BadInteraction("the button carries no job")
    try:
        return ButtonValue.model_validate_json(value).to_ref()
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise BadInteraction(f"the button names no valid job: {msg}") from None


def refusal(form_payload: str | None, reason: str, correlation_id: str | None) -> RefusalCommand:
    """What can be told, best effort, about who sent a request we refuse and which job it named."""
    data: Any = {}
    with contextlib.suppress(ValueError, RecursionError):
        data = json.loads(form_payload or "{}")
    data = data if isinstance(data, dict) else {}
    actor = job = channel = None
    with contextlib.suppress(ValidationError, TypeError, AttributeError):
        actor = SlackUser.model_validate(data.get("user")).actor()
    with contextlib.suppress(BadInteraction, TypeError, AttributeError, IndexError, KeyError):
        job = _job_from_button(data["actions"][0].get("value"))
    with contextlib.suppress(ValidationError, TypeError, AttributeError):
        channel = SlackChannel.model_validate(data.get("channel")).id
    with contextlib.suppress(ValidationError, TypeError, AttributeError, ValueError):
        meta = ModalMetadata.model_validate_json((data.get("view") or {}).get("private_metadata") or "")
        job, channel = job or meta.job, channel or meta.channel
    return RefusalCommand(reason=reason[:500], actor=actor, job=job, channel=channel, correlation_id=correlation_id)


def interpret(
    payload: BlockActionsPayload | ViewSubmissionPayload | ViewClosedPayload, correlation_id: str | None
) -> Action:
    if isinstance(payload, ViewClosedPayload):
        return Nothing()
    if isinstance(payload, BlockActionsPayload):
        return _button(payload, correlation_id)
    return _submission(payload, correlation_id)


def _button(payload: BlockActionsPayload, correlation_id: str | None) -> Action:
    action = payload.actions[0]
    if action.action_id not in {APPROVE_ACTION_ID, CANCEL_ACTION_ID}:
        raise BadInteraction(f"unknown action {action.action_id[:64]!r}")
    ref = _job_from_button(action.value)
    actor = payload.user.actor()
    if payload.team and payload.team.id and not actor.team_id:
        actor = actor.model_copy(update={"team_id": payload.team.id})
    channel = payload.channel.id if payload.channel else None
    ts = payload.message.ts if payload.message else None
    decision = "approve" if action.action_id == APPROVE_ACTION_ID else "cancel"
    command = DecisionCommand(
        job=ref,
        decision=decision,
        actor=actor,
        decision_id=f"{actor.user_id}:{action.action_ts or ts}",
        channel=channel,
        message_ts=ts,
        correlation_id=correlation_id,
    )
    if decision == "approve":
        return Queue(command)
    if not payload.trigger_id:
        raise BadInteraction("the click carries no trigger_id to open the reason form")
    metadata = ModalMetadata(job=ref, channel=channel, message_ts=ts)
    if len(metadata.encode()) > MAX_PRIVATE_METADATA:
        raise BadInteraction("the click names a channel or message too long to carry into the form")
    return OpenReasonModal(payload.trigger_id, metadata, command)


def _submission(payload: ViewSubmissionPayload, correlation_id: str | None) -> Action:
    view = payload.view
    if view.callback_id != REASON_MODAL_CALLBACK_ID:
        raise BadInteraction(f"unknown form {str(view.callback_id)[:64]!r}")
    try:
        meta = ModalMetadata.model_validate_json(view.private_metadata)
    except ValidationError:
        raise BadInteraction("the form names no valid job") from None
    from approvals.domain import message  # the form's limits and wording live with the form itself

    field = view.state.values.get(REASON_BLOCK_ID, {}).get(REASON_INPUT_ACTION_ID, {})
    value = field.get("value")
    if value is not None and not isinstance(value, str):
        raise BadInteraction("the reason is not text")
    reason = (value or "").strip()
    if not reason:
        return ModalErrors(message.reason_required_error())
    if len(reason) > message.REASON_MAX_LENGTH:
        return ModalErrors({REASON_BLOCK_ID: f"Please keep the reason to {message.REASON_MAX_LENGTH} characters."})
    actor = payload.user.actor()
    if payload.team and payload.team.id and not actor.team_id:
        actor = actor.model_copy(update={"team_id": payload.team.id})
    command = DecisionCommand(
        job=meta.job,
        decision="cancel",
        actor=actor,
        reason=reason,
        decision_id=f"{actor.user_id}:{view.id}",
        channel=meta.channel,
        message_ts=meta.message_ts,
        correlation_id=correlation_id,
    )
    return Queue(command)
