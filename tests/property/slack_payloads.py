"""Slack interaction payloads for the property tests: samples, their mutations, and what each one asks for.

``read_body`` is the oracle: an independent reading of a request body by the rules Slack and this app
document (models/slack.py's identifier shapes, S3 Control's job reference syntax, the interactions
module's docstrings), written without the product's models. It says what the callback must answer and
queue, and what the decider may act on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, quote_plus

from hypothesis import strategies as st

from tests.helpers import load_event
from tests.property.strategies import (
    ANY_CHARACTER,
    Encoded,
    awkward_text,
    deep_json_text,
    deep_values,
    depth,
    json_values,
    mutated,
    near_misses,
    render,
)

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
SERVED_TEAM = "T0APPROVE"
CHANNEL = "C0APPROVALS"
MESSAGE_TS = "1700000000.000100"
ALICE = "UALICE001"  # a named approver
GINA = "UGINA0001"  # an approver through the user group
MALLORY = "UMALLORY1"  # nobody's approver
GRID_USER = "W0GRIDUSER1"  # an Enterprise Grid user, nobody's approver
GROUP = "S0APPROVERS"
PEOPLE = (ALICE, GINA, MALLORY, GRID_USER)
ACCOUNT_ID, REGION = "123456789012", "us-east-1"
PENDING_JOB = "job-pending-0001"  # the decider tests put a fresh pending job's ID in its place
REASON_MAX_LENGTH = 132  # what the cancel form accepts (domain/message.py)
MAX_BODY_BYTES = 64 * 1024
PYDANTIC_JSON_MAX_DEPTH = 201  # pydantic's JSON parser refuses documents nested deeper (measured)

USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")
TEAM_ID = re.compile(r"[TE][A-Z0-9]{2,31}")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,31}")
SLACK_TS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,8})?")
VIEW_ID = re.compile(r"V[A-Z0-9]{2,31}")
TRIGGER_ID = re.compile(r"[0-9A-Za-z._-]{1,255}")
# A job reference as S3 Control spells one.
ACCOUNT = re.compile(r"[0-9]{12}")
AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
JOB_ID = re.compile(r"[A-Za-z0-9_-]{5,36}")
# What approvals.models.job.JobRef once accepted besides (re.match with "$" and Unicode "\d"): one
# trailing newline, and decimal digits of any script. A request naming such a ref is not judged by the
# broad properties (Reading.certain is False); test_callback_properties pins its refusal in its own test.
LOOSE_ACCOUNT = re.compile(r"\d{12}\n?")
LOOSE_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}\n?")
LOOSE_JOB_ID = re.compile(r"[A-Za-z0-9_-]{5,36}\n?")


# -- the oracle ------------------------------------------------------------------------------------


class Kind(StrEnum):
    DECIDE = "decide"  # an Approve click or a submitted cancel form
    CANCEL_CLICK = "cancel_click"  # a Cancel click: the reason form opens (or is refused, or fails)
    NOTHING = "nothing"  # acknowledged, nothing to do (the form was closed)
    FORM_ERRORS = "form_errors"  # the form stays open with an error (reason empty or too long)
    BAD = "bad"  # signed, but cannot be acted on: 400
    FOREIGN = "foreign"  # signed, but from another workspace: 403


@dataclass(frozen=True)
class Reading:
    kind: Kind
    certain: bool = True  # False where the product is knowingly looser than this oracle
    job: tuple[str, str, str] | None = None
    user: str | None = None
    decision: str | None = None
    channel: str | None = None
    reason: str | None = None


BAD = Reading(Kind.BAD)


def unicode(text: str) -> bool:
    """True for text that is valid Unicode (no lone surrogates), so it has a UTF-8 encoding."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any, max_length: int) -> bool:
    """A length-bounded string field (pydantic refuses lone surrogates in constrained strings)."""
    return isinstance(value, str) and unicode(value) and len(value) <= max_length


def _id(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _optional(obj: dict[str, Any], key: str, check: Callable[[Any], bool]) -> bool:
    """Absent and null both mean "not given"."""
    return obj.get(key) is None or check(obj[key])


def all_unicode(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str) and not unicode(node):
            return False
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


_UNREADABLE = object()


def _embedded_json(text: str) -> Any:
    """A JSON document carried in a string field, as pydantic's parser reads it."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return _UNREADABLE
    if not all_unicode(doc) or depth(doc) > PYDANTIC_JSON_MAX_DEPTH:
        return _UNREADABLE
    return doc


def job_ref(doc: Any) -> tuple[tuple[str, str, str], bool] | None:
    """The job a ``{account_id, region, job_id}`` object names, and whether S3 could accept it; None if the
    product refuses it too."""
    if not isinstance(doc, dict):
        return None
    parts = doc.get("account_id"), doc.get("region"), doc.get("job_id")
    if not all(isinstance(p, str) for p in parts):
        return None
    account, region, job = parts
    if ACCOUNT.fullmatch(account) and AWS_REGION.fullmatch(region) and JOB_ID.fullmatch(job):
        return (account, region, job), True
    if LOOSE_ACCOUNT.fullmatch(account) and LOOSE_REGION.fullmatch(region) and LOOSE_JOB_ID.fullmatch(job):
        return (account, region, job), False
    return None


def _user(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _id(value.get("id"), USER_ID)
        and _optional(value, "username", lambda v: _text(v, 255))
        and _optional(value, "name", lambda v: _text(v, 255))
        and _optional(value, "team_id", lambda v: _id(v, TEAM_ID))
    )


def _team(data: dict[str, Any]) -> bool:
    return _optional(data, "team", lambda t: isinstance(t, dict) and _optional(t, "id", lambda v: _id(v, TEAM_ID)))


def _action(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _text(value.get("action_id"), 255)
        and _optional(value, "block_id", lambda v: _text(v, 255))
        and _optional(value, "value", lambda v: _text(v, 2000))
        and _optional(value, "action_ts", lambda v: _id(v, SLACK_TS))
    )


def _block_actions(data: dict[str, Any]) -> Reading:
    actions = data.get("actions")
    if not (
        _user(data.get("user"))
        and _team(data)
        and _optional(data, "channel", lambda c: isinstance(c, dict) and _id(c.get("id"), CHANNEL_ID))
        and _optional(data, "message", lambda m: isinstance(m, dict) and _id(m.get("ts"), SLACK_TS))
        and _optional(data, "trigger_id", lambda v: _id(v, TRIGGER_ID))
        and isinstance(actions, list)
        and 1 <= len(actions) <= 25
        and all(_action(a) for a in actions)
    ):
        return BAD
    assert isinstance(actions, list)
    action_id, value = actions[0]["action_id"], actions[0].get("value")
    if action_id not in {"approve_job", "cancel_job"} or not value:
        return BAD
    named = job_ref(_embedded_json(value))
    if named is None:
        return BAD
    if action_id == "cancel_job" and not data.get("trigger_id"):
        return BAD
    channel = data["channel"]["id"] if data.get("channel") else None
    return Reading(
        Kind.DECIDE if action_id == "approve_job" else Kind.CANCEL_CLICK,
        certain=named[1],
        job=named[0],
        user=data["user"]["id"],
        decision="approve" if action_id == "approve_job" else "cancel",
        channel=channel,
    )


def _state_values(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(block, dict) and all(isinstance(field, dict) for field in block.values()) for block in value.values()
    )


def _modal_metadata(text: str) -> tuple[tuple[str, str, str], bool, str | None] | None:
    doc = _embedded_json(text)
    if not (
        isinstance(doc, dict)
        and _optional(doc, "channel", lambda v: _id(v, CHANNEL_ID))
        and _optional(doc, "message_ts", lambda v: _id(v, SLACK_TS))
    ):
        return None
    named = job_ref(doc.get("job"))
    return None if named is None else (named[0], named[1], doc.get("channel"))


def _view_submission(data: dict[str, Any]) -> Reading:
    view = data.get("view")
    if not (
        _user(data.get("user"))
        and _team(data)
        and isinstance(view, dict)
        and _id(view.get("id"), VIEW_ID)
        and _optional(view, "callback_id", lambda v: _text(v, 255))
        and ("private_metadata" not in view or _text(view["private_metadata"], 3000))
        and (
            "state" not in view
            or (
                isinstance(view["state"], dict)
                and ("values" not in view["state"] or _state_values(view["state"]["values"]))
            )
        )
    ):
        return BAD
    assert isinstance(view, dict)
    if view.get("callback_id") != "cancel_reason":
        return BAD
    meta = _modal_metadata(view.get("private_metadata", ""))
    if meta is None:
        return BAD
    values = view.get("state", {}).get("values", {})
    value = values.get("reason", {}).get("reason_input", {}).get("value")
    if value is not None and not isinstance(value, str):
        return BAD
    reason = (value or "").strip()
    if not reason or len(reason) > REASON_MAX_LENGTH:
        return Reading(Kind.FORM_ERRORS)
    # A reason with a lone surrogate (a "\ud800" escape in the JSON) is not judged here
    # (test_callback_properties pins its refusal in its own test).
    return Reading(
        Kind.DECIDE,
        certain=meta[1] and unicode(reason),
        job=meta[0],
        user=data["user"]["id"],
        decision="cancel",
        channel=meta[2],
        reason=reason,
    )


def read_payload(text: str, teams: tuple[str, ...] = (SERVED_TEAM,)) -> Reading:
    """What the ``payload`` field of a signed request asks for."""
    if not text:
        return BAD
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return BAD
    if not isinstance(data, dict) or "type" not in data:
        return BAD
    user, team = data.get("user"), data.get("team")
    home = user.get("team_id") if isinstance(user, dict) else None
    if home is None and isinstance(team, dict):
        home = team.get("id")
    if not (isinstance(home, str) and home in teams):
        return Reading(Kind.FOREIGN)
    if not all_unicode(data):  # a lone surrogate anywhere: refused once the workspace is known
        return BAD
    kind = data["type"]
    if kind == "block_actions":
        return _block_actions(data)
    if kind == "view_submission":
        return _view_submission(data)
    if kind == "view_closed":
        return Reading(Kind.NOTHING) if _user(data.get("user")) else BAD
    return BAD


def read_body(body: str) -> Reading:
    """What a signed form body (``payload=<json>``, at most 20 fields, UTF-8 escapes) asks for."""
    try:
        fields = parse_qs(body, keep_blank_values=True, max_num_fields=20, errors="strict")
    except ValueError:
        return BAD
    return read_payload((fields.get("payload") or [""])[0])


def slack_signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 signature, computed here from its documented recipe (not with slack_sdk)."""
    base = f"v0:{timestamp}:".encode() + body.encode("utf-8", "surrogatepass")
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def form(payload: str, extra: str = "") -> str:
    """A form body as Slack posts it; a payload with lone surrogates gets escapes that are not UTF-8."""
    return "payload=" + quote_plus(payload, safe="", errors="surrogatepass") + extra


# -- samples, shaped after tests/events ------------------------------------------------------------


def _button(job_id: str = PENDING_JOB) -> Encoded:
    return Encoded({"account_id": ACCOUNT_ID, "region": REGION, "job_id": job_id})


def approve_click() -> dict[str, Any]:
    payload = load_event("slack_block_actions_approve")
    payload["actions"][0]["value"] = _button()
    return payload  # type: ignore[no-any-return]


def cancel_click() -> dict[str, Any]:
    payload = approve_click()
    payload["actions"][0]["action_id"] = "cancel_job"
    return payload


def cancel_submission() -> dict[str, Any]:
    payload = load_event("slack_view_submission_cancel")
    payload["view"]["private_metadata"] = Encoded({"job": _button().doc, "channel": CHANNEL, "message_ts": MESSAGE_TS})
    payload["view"]["state"]["values"]["reason"]["reason_input"]["value"] = "Wrong manifest"
    return payload  # type: ignore[no-any-return]


def view_closed() -> dict[str, Any]:
    submitted = cancel_submission()
    return {"type": "view_closed", "user": submitted["user"], "team": submitted["team"], "view": submitted["view"]}


SAMPLES = (approve_click, cancel_click, cancel_submission, view_closed)
DROPPABLE = ("channel", "message", "trigger_id", "container", "response_url", "api_app_id", "token", "state")

SLACK_KEYS = st.sampled_from(
    [
        "type", "user", "team", "id", "team_id", "username", "name", "channel", "message", "ts", "trigger_id",
        "actions", "action_id", "value", "action_ts", "block_id", "view", "callback_id", "private_metadata",
        "state", "values", "reason", "reason_input", "job", "account_id", "region", "job_id", "message_ts",
    ]
) | st.text(max_size=8)  # fmt: skip

identifiers = near_misses(
    *PEOPLE, SERVED_TEAM, "T0OTHER01", "E0ORG0001", CHANNEL, "D0DIRECT1", "G0PRIVATE", MESSAGE_TS,
    "1700000100.123456", "V0MODAL01", "123456.789.abcdef", ACCOUNT_ID, REGION, "eu-west-1", PENDING_JOB,
)  # fmt: skip

slack_literals = st.sampled_from(
    ["approve_job", "cancel_job", "cancel_reason", "block_actions", "view_submission", "view_closed", "reason"]
)

slack_values: st.SearchStrategy[Any] = st.one_of(
    identifiers,
    slack_literals,
    awkward_text,
    json_values(),
    deep_values(),
    st.builds(_button, near_misses(PENDING_JOB)),
)

reasons = st.one_of(
    st.sampled_from(["Wrong manifest", "  padded  ", "", "   ", "\u3000", "x" * 132, "x" * 133, " " + "x" * 132]),
    st.text(max_size=150),
    st.text(ANY_CHARACTER, max_size=5),
)


@st.composite
def payload_docs(draw: st.DrawFn) -> Any:
    """A sample payload, varied as Slack varies it (who, where their team is named, optional fields), then
    mutated. Strings equal to PENDING_JOB are left for the test to replace."""
    doc = draw(st.sampled_from(SAMPLES))()
    doc["user"]["id"] = draw(st.sampled_from(PEOPLE))
    where = draw(st.sampled_from(["user", "team", "both"]))
    if where == "team":
        del doc["user"]["team_id"]
    elif where == "user":
        del doc["team"]
    for key in draw(st.sets(st.sampled_from(DROPPABLE), max_size=3)):
        doc.pop(key, None)
    if doc["type"] == "view_submission":
        doc["view"]["state"]["values"]["reason"]["reason_input"]["value"] = draw(reasons)
    return draw(mutated(doc, slack_values, SLACK_KEYS))


def payload_text(doc: Any, job_id: str = PENDING_JOB) -> str:
    return json.dumps(render(doc, {PENDING_JOB: job_id}))


# Bodies other than one sample's form: any JSON as the payload, deep nests, not a form at all, extra fields.
other_payloads = st.one_of(json_values().map(json.dumps), deep_json_text(), awkward_text)
FORM_EXTRAS = ("", "&token=x", "&payload=%7B%7D", "&" * 25, "&x=1" * 20, "&%ff=1", "&payload")
