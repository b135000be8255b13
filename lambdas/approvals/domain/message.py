"""Everything Slack shows about a job: the approval request, its outcome, thread replies, the reason
modal and the ephemeral notices. This is the one file to change to add a field to the message.

Blocks are plain dicts checked against Slack's documented limits by ``validate_message`` (slack_sdk's
block models check most limits but not the 2000 characters of a section field, the 50 blocks of a
message or the 4000 characters of the fallback text).

Safety rules for anything that comes from the job or from people (descriptions, bucket names, keys,
tags, ARNs, reasons, display names):

- ``&``, ``<`` and ``>`` are escaped, so no ``<!channel>``, ``<@U…>`` or ``<https://…|link>`` survives;
- every mrkdwn text object is ``verbatim``, so Slack does not turn bare URLs, ``@here`` or
  ``#channel`` into links or mentions;
- single-line values lose their newlines, control and bidirectional-override characters, so a
  value cannot start a fake line such as "Approved by security";
- each value is cut to a budget with "…", never inside an escape, a surrogate pair or an emoji
  sequence, so the message stays inside Block Kit's limits whatever the job holds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from approvals.domain.lifecycle import allowed_hours, hours_text
from approvals.domain.operations import (
    UNKNOWN_OPERATION,
    describe_manifest,
    describe_operation,
    describe_report,
    format_count,
    format_utc,
    report_location,
)
from approvals.domain.reasons import WHY_RESERVE, policy_of
from approvals.domain.risk import risk_warnings
from approvals.models.job import Job, JobRef
from approvals.models.policy import Expiry, Rule
from approvals.models.records import Actor, ApprovalRequest, Requester, RequestState
from approvals.models.slack import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    MAX_BUTTON_VALUE,
    MAX_PRIVATE_METADATA,
    REASON_BLOCK_ID,
    REASON_INPUT_ACTION_ID,
    REASON_MODAL_CALLBACK_ID,
    ButtonValue,
    ModalMetadata,
)

# -- Block Kit limits (docs.slack.dev, Block Kit reference) ---------------------------------------

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_URL = 3000
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_FALLBACK_TEXT = 4000  # the fallback must stay under this
MAX_MODAL_TITLE = 24
MAX_MODAL_BUTTON = 24
MAX_MODAL_BLOCKS = 100
MAX_INPUT_LABEL = 2000
MAX_INPUT_LENGTH = 3000
BUTTON_STYLES = frozenset({"primary", "danger"})

# -- our own budgets, well inside the limits ------------------------------------------------------

VALUE_BUDGET = 500  # one parameter value, escaped
DESCRIPTION_BUDGET = 800
REASON_BUDGET = 800
WARNING_BUDGET = 400
FALLBACK_BUDGET = 1000
ARN_BUDGET = 600  # a principal ARN, as code (IAM allows 2048)
MAX_MENTIONS = 20  # approvers or votes named on one line; the rest are counted ("and 3 more")
# The modal's input is short enough that "Cancelled by NAME (ID) via Slack: REASON" keeps the whole
# reason within S3's 256 characters even for the longest display name and Slack ID reasons.py keeps.
REASON_MAX_LENGTH = WHY_RESERVE
SUSPENDED_JOB_LIFETIME = timedelta(days=30)

HEADER_AWAITING = "S3 Batch Operations job awaiting approval"
EVENT_TYPE = "s3_batch_approval_request"
ELLIPSIS = "…"
WARNING_SIGN = "⚠️"
INFO_SIGN = "\u2139\ufe0f"
BACKTICK_LOOKALIKE = "\u02cb"
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
SLACK_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
SLACK_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
POLICY_ORIGIN = "system:policy"
EXPIRY_ORIGIN = "system:expiry"
PENDING_STATES = frozenset({RequestState.POSTING, RequestState.PENDING})

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ZWJ = "\u200d"
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class MessageTooLarge(ValueError):
    """A rendered message breaks one of Slack's documented limits; the message says which."""


class SlackMessage(BaseModel):
    """What chat.postMessage / chat.update take: fallback text, blocks and (on post) metadata."""

    text: str
    blocks: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None


# -- text safety ----------------------------------------------------------------------------------


def escape_mrkdwn(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` the way Slack asks, so text cannot form links or mentions."""
    return "".join(_ESCAPES.get(char, char) for char in text)


def slack_len(text: str) -> int:
    """Length as Slack may count it: UTF-16 code units (an emoji outside the BMP counts twice)."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def _width(char: str, escaped: bool) -> int:
    return slack_len(_ESCAPES[char]) if escaped and char in _ESCAPES else slack_len(char)


def _is_regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _attaches(char: str) -> bool:
    """Characters that belong to the one before them: marks, variation selectors, skin tones, tags."""
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
        or "\ufe00" <= char <= "\ufe0f"
        or "\U0001f3fb" <= char <= "\U0001f3ff"
        or "\U000e0020" <= char <= "\U000e007f"
        or char == _ZWJ
    )


def _boundary(text: str, end: int) -> int:
    """Move a cut point back so it does not split an emoji sequence, a flag or a combining mark."""
    while 0 < end < len(text):
        if _attaches(text[end]) or text[end - 1] == _ZWJ:
            end -= 1
            continue
        if _is_regional(text[end]) and _is_regional(text[end - 1]):
            run = 0
            while end - 1 - run >= 0 and _is_regional(text[end - 1 - run]):
                run += 1
            if run % 2 == 1:
                end -= 1
                continue
        break
    return end


def clip(text: str, limit: int, *, escaped: bool = False) -> str:
    """Cut ``text`` to ``limit`` (Slack length, after escaping if ``escaped``), ending with "…"."""
    if sum(_width(char, escaped) for char in text) <= limit:
        return text
    budget, used, end = limit - slack_len(ELLIPSIS), 0, 0
    for index, char in enumerate(text):
        width = _width(char, escaped)
        if used + width > budget:
            break
        used += width
        end = index + 1
    return text[: _boundary(text, end)].rstrip() + ELLIPSIS


def _clean(text: object) -> str:
    """Well-formed text: lone surrogates replaced, bidirectional overrides and NULs dropped."""
    value = "" if text is None else str(text)
    value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return "".join(char for char in value if char not in _BIDI_CONTROLS and char != "\x00")


def one_line(text: object) -> str:
    """Text on one line: newlines, tabs and other control or separator characters become one space."""
    value = _clean(text)
    value = "".join(
        " " if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char.isspace() else char for char in value
    )
    return " ".join(value.split())


def safe(text: object, limit: int = VALUE_BUDGET) -> str:
    """User text for mrkdwn: one line, escaped, at most ``limit`` long once escaped."""
    return escape_mrkdwn(clip(one_line(text), limit, escaped=True))


def code(text: object, limit: int = VALUE_BUDGET) -> str:
    """User text as inline code: nothing inside is formatted (no bold, emoji codes or links).

    A backtick would end the code span, so it is shown as a look-alike (U+02CB, modifier letter grave accent).
    """
    value = one_line(text).replace("`", BACKTICK_LOOKALIKE)
    if not value:
        return ""
    return f"`{escape_mrkdwn(clip(value, limit - 2, escaped=True))}`"


def quote(text: object, limit: int = REASON_BUDGET) -> str:
    """Multi-line user text as a block quote: every line starts with ``>`` so none can pass as ours."""
    value = _clean(text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [one_line(line) for line in value.split("\n")]
    lines = [line for line in lines if line] or [""]
    joined = "\n".join(lines)
    clipped = clip(joined, limit - 2 * len(lines), escaped=True)
    return "\n".join(f">{escape_mrkdwn(line)}" for line in clipped.split("\n"))


def mention(actor: Actor | None) -> str:
    """``<@U123> (alice)``: the mention only for a real Slack user ID, the name always escaped."""
    if actor is None:
        return "someone"
    name = safe(actor.name, 80)
    if SLACK_USER_ID.match(actor.user_id):
        return f"<@{actor.user_id}>" + (f" ({name})" if name and name != actor.user_id else "")
    return name or safe(actor.user_id, 80)


def user_mention(user_id: str) -> str:
    """``<@U123>`` for a real Slack user ID; anything else is shown as inert code."""
    return f"<@{user_id}>" if SLACK_USER_ID.match(user_id) else code(user_id, 60)


def group_mention(group_id: str) -> str:
    """``<!subteam^S123>`` for a real Slack user group ID; anything else is shown as inert code."""
    return f"<!subteam^{group_id}>" if SLACK_GROUP_ID.match(group_id) else code(group_id, 60)


def _listed(items: Sequence[str], limit: int = MAX_MENTIONS) -> str:
    """``a, b, c`` with at most ``limit`` items; the rest counted: ``a, b and 3 more``."""
    shown = list(items[:limit])
    if len(items) > limit:
        return ", ".join(shown) + f" and {len(items) - limit} more"
    return ", ".join(shown)


def _people(actors: Sequence[Actor]) -> str:
    """Several people, each as ``mention()`` shows one."""
    return _listed([mention(actor) for actor in actors])


# -- block helpers --------------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain_text(text, MAX_HEADER_TEXT)}


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": _mrkdwn(fit(text, MAX_SECTION_TEXT))}
    if block_id:
        block["block_id"] = block_id
    return block


def _fields(pairs: list[tuple[str, str]], block_id: str) -> dict[str, Any]:
    """A two-column section; ``pairs`` hold a label and an already-safe mrkdwn value."""
    fields = [_mrkdwn(fit(f"*{label}*\n{value}", MAX_FIELD_TEXT)) for label, value in pairs]
    return {"type": "section", "block_id": block_id, "fields": fields[:MAX_SECTION_FIELDS]}


def context(*texts: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "context",
        "elements": [_mrkdwn(fit(text, MAX_SECTION_TEXT)) for text in texts[:MAX_CONTEXT_ELEMENTS]],
    }
    if block_id:
        block["block_id"] = block_id
    return block


def fit(mrkdwn: str, limit: int) -> str:
    """Last-resort cut of already-escaped mrkdwn: drop whole lines, never cut inside ``&…;`` or ``<…>``."""
    if slack_len(mrkdwn) <= limit:
        return mrkdwn
    lines = mrkdwn.split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        left = len(lines) - index
        tail = f"… and {left} more line" + ("s" if left != 1 else "")
        if slack_len("\n".join([*kept, line, tail])) > limit:
            return "\n".join([*kept, tail]) if kept else _cut_escaped(line, limit)
        kept.append(line)
    return "\n".join(kept)  # pragma: no cover - unreachable: the whole text is over the limit


def _cut_escaped(mrkdwn: str, limit: int) -> str:
    budget, used, end = limit - slack_len(ELLIPSIS), 0, 0
    for index, char in enumerate(mrkdwn):
        used += slack_len(char)
        if used > budget:
            break
        end = index + 1
    amp, semi = mrkdwn.rfind("&", 0, end), mrkdwn.rfind(";", 0, end)
    if amp > semi:
        end = amp
    lt, gt = mrkdwn.rfind("<", 0, end), mrkdwn.rfind(">", 0, end)
    if lt > gt:
        end = lt
    return mrkdwn[: _boundary(mrkdwn, end)] + ELLIPSIS


def _lines(title: str, pairs: list[tuple[str, str]]) -> str:
    """``*Title*`` then ``• *Label:* `value` `` lines (values from the job, shown as code)."""
    rows = [f"*{title}*"]
    rows += [f"• *{safe(label, 80)}:* {code(value)}" for label, value in pairs]
    return "\n".join(rows)


# -- the approval request -------------------------------------------------------------------------


def _count_phrase(count: int | None) -> str:
    if count is None:
        return "an unknown number of objects"
    return f"{format_count(count)} object" + ("" if count == 1 else "s")


def _report_text(job: Job) -> str:
    location = report_location(job)
    if location is None:
        return "Off"
    scope = dict(describe_report(job)).get("Report scope")
    return code(location) + (f" ({safe(scope).lower()})" if scope else "")


def _status_line(job: Job) -> str:
    if job.awaiting_confirmation:
        return "Status now: Suspended — awaiting confirmation"
    line = f"Status now: {safe(job.status, 40)}"
    if job.status_update_reason:
        line += f" — {safe(job.status_update_reason, 300)}"
    return line


def _deadline(job: Job) -> str | None:
    if not job.awaiting_confirmation or job.suspended_date is None:
        return None
    return f"S3 fails the job if nobody confirms it by {format_utc(job.suspended_date + SUSPENDED_JOB_LIFETIME)}."


def _buttons(job: Job, ref: JobRef) -> dict[str, Any]:
    value = ButtonValue.from_ref(ref).encode()
    title = describe_operation(job.operation).title
    confirm_text = (
        f"Job {ref.job_id} will start on {_count_phrase(job.object_count)}: {title}. "
        "S3 cannot undo what it has already done."
    )
    approve = {
        "type": "button",
        "action_id": APPROVE_ACTION_ID,
        "text": plain_text("Approve", MAX_BUTTON_TEXT),
        "style": "primary",
        "value": value,
        "confirm": {
            "title": plain_text("Approve this job?", MAX_CONFIRM_TITLE),
            "text": plain_text(confirm_text, MAX_CONFIRM_TEXT),
            "confirm": plain_text("Approve", MAX_CONFIRM_BUTTON),
            "deny": plain_text("Back", MAX_CONFIRM_BUTTON),
        },
    }
    cancel = {
        "type": "button",
        "action_id": CANCEL_ACTION_ID,
        "text": plain_text("Cancel", MAX_BUTTON_TEXT),
        "style": "danger",
        "value": value,
    }
    return {"type": "actions", "block_id": "decision", "elements": [approve, cancel]}


def _decision(request: ApprovalRequest | None, job: Job) -> tuple[str, str]:
    """The outcome as an emoji and raw words (not yet escaped)."""
    state = request.state if request else None
    if request is not None and state == RequestState.APPROVED:
        return "✅", "Approved"
    if request is not None and state == RequestState.CANCELLED:
        return "🛑", "Cancelled"
    if request is not None and state == RequestState.DECIDING:
        chose = {"approve": " (approving)", "cancel": " (cancelling)"}.get(request.decision or "", "")
        return "⏳", f"Deciding…{chose}"
    if request is not None and state == RequestState.CLOSED:
        return INFO_SIGN, request.outcome_note or "Closed"
    return INFO_SIGN, f"No longer awaiting confirmation: the job is {job.status}"


def _by_expiry(request: ApprovalRequest | None) -> bool:
    """Cancelled at its deadline, nobody having decided (the rule's expiry action ``cancel``)."""
    return request is not None and request.decision_origin == EXPIRY_ORIGIN and request.state == RequestState.CANCELLED


def _expiry_of(request: ApprovalRequest) -> Expiry:
    return request.rule.expiry if request.rule is not None else Expiry()


def _rule_named(request: ApprovalRequest) -> str:
    return f"policy rule {code(request.rule.name, 60)}" if request.rule is not None else "the default policy"


def _expired_line(request: ApprovalRequest) -> str:
    within = hours_text(allowed_hours(request))
    return f"⌛ Expired: nobody decided within {within}, so the job was cancelled ({_rule_named(request)})"


def lifecycle_line(request: ApprovalRequest | None) -> str | None:
    """While pending: when the request expires and what happens then; once it expired and was left, that."""
    if request is None or request.deadline is None:
        return None
    expiry = _expiry_of(request)
    if request.expired_at is not None:
        late = " A late decision is still possible." if request.state in PENDING_STATES else ""
        return (
            f"⌛ Expired {format_utc(request.expired_at)}: nobody decided within {hours_text(allowed_hours(request))}. "
            f"The job is left Suspended.{late}"
        )
    if request.state not in PENDING_STATES:
        return None
    then = "then the job is cancelled" if expiry.action == "cancel" else "then the request is marked expired"
    return f"⏰ Expires {format_utc(request.deadline)}: {then}"


def _by_policy(request: ApprovalRequest | None) -> bool:
    """A decision the policy took (deny or approve by a rule), with no person behind it."""
    return (
        request is not None
        and request.decision_origin == POLICY_ORIGIN
        and request.state in (RequestState.APPROVED, RequestState.CANCELLED)
    )


def _policy_rule_name(request: ApprovalRequest) -> str | None:
    if request.rule is not None:
        return request.rule.name
    found = policy_of(request.status_update_reason)
    return found[1] if found else None


def deciders(request: ApprovalRequest) -> tuple[Actor, ...]:
    """Who decided: every counted approval (oldest first) of an approved quorum, else the one decider."""
    people = tuple(request.approvals) if request.state == RequestState.APPROVED else ()
    decider = request.decider
    if decider is not None and all(actor.user_id != decider.user_id for actor in people):
        people += (decider,)
    return people


def _policy_decision_line(request: ApprovalRequest) -> str:
    name = _policy_rule_name(request)
    rule = f"policy rule {code(name, 60)}" if name else "policy"
    if request.state == RequestState.APPROVED:
        return f"✅ Approved by {rule}"
    why = request.decision_reason or (request.rule.reason if request.rule else None)
    return f"🛑 Cancelled by {rule}" + (f": {safe(why, REASON_BUDGET)}" if why else "")


def _decision_line(request: ApprovalRequest | None, job: Job) -> str:
    if request is not None and _by_policy(request):
        return _policy_decision_line(request)
    if request is not None and _by_expiry(request):
        return _expired_line(request)
    emoji, words = _decision(request, job)
    return f"{emoji} {safe(words, 300)}"


def _without_requester_warning(request: ApprovalRequest) -> str:
    rule = request.rule
    if rule is None:
        return f"{WARNING_SIGN} Approved without knowing who created the job: the requester wait ran out"
    minutes = rule.requester_wait.timeout_minutes
    return (
        f"{WARNING_SIGN} Approved without knowing who created the job: the requester wait of {minutes} min ran out "
        f"and rule {code(rule.name, 60)} allows it"
    )


def _outcome(request: ApprovalRequest | None, job: Job) -> str:
    rows = [f"*Decision:* {_decision_line(request, job)}"]
    if request is not None:
        policy = _by_policy(request) or _by_expiry(request)
        people = deciders(request)
        if people and not policy:
            rows.append(f"*By:* {_people(people)}")
        when = request.decided_at or (request.deciding_since if request.state == RequestState.DECIDING else None)
        if when is not None:
            rows.append(f"*When:* {format_utc(when)}")
        if request.decision_reason and not (policy and request.state == RequestState.CANCELLED):
            rows.append(f"*Reason:*\n{quote(request.decision_reason)}")
        if request.s3_status:
            rows.append(f"*S3 status at the decision:* {safe(request.s3_status, 40)}")
        if request.approved_without_requester and request.state == RequestState.APPROVED:
            rows.append(_without_requester_warning(request))
    return "\n".join(rows)


def _header_for(request: ApprovalRequest | None, job: Job, pending: bool) -> str:
    if pending:
        return HEADER_AWAITING
    state = request.state if request else None
    if state == RequestState.APPROVED:
        return "✅ S3 Batch Operations job approved"
    if state == RequestState.CANCELLED:
        if _by_expiry(request):
            return "⌛ S3 Batch Operations job expired and cancelled"
        return "🛑 S3 Batch Operations job cancelled"
    if state == RequestState.DECIDING:
        return "⏳ S3 Batch Operations job: decision in progress"
    return "S3 Batch Operations job no longer awaiting approval"


def account_words(ref: JobRef, name: str | None) -> str:
    """Plain text: ``account analytics (210987654321, us-west-2)``, or without a name ``account 210987654321
    (us-west-2)``."""
    if name:
        return f"account {one_line(name)} ({ref.account_id}, {ref.region})"
    return f"account {ref.account_id} ({ref.region})"


def account_field(ref: JobRef, name: str | None) -> str:
    """Mrkdwn: the account's name, where the settings give one, and its ID."""
    return f"*{safe(name, 64)}* {code(ref.account_id)}" if name else code(ref.account_id)


def unreachable_text(ref: JobRef, name: str | None, problem: str) -> str:
    """Mrkdwn: jobs' events came, but the hub cannot act in their account, so nothing can be shown or decided."""
    return fit(
        f"{WARNING_SIGN} Jobs in {safe(account_words(ref, name), 120)} may be waiting for approval (job "
        f"{code(ref.job_id)}, maybe more), but this hub cannot act in that account: {safe(problem, 400)}\n"
        "Nothing can be read or decided there until it can. Each event is retried for about half an hour, then "
        "kept in the job events dead-letter queue (alarmed); the reconciliation looks again every 15 minutes. "
        "Check the spoke stack in that account and region. This is said once a day.",
        2900,
    )


def _fallback(ref: JobRef, job: Job, request: ApprovalRequest | None, pending: bool) -> str:
    """The plain notification text: which job, what it does, and the outcome once decided."""
    summary = describe_operation(job.operation)
    title = summary.title if summary.title != UNKNOWN_OPERATION else f"{UNKNOWN_OPERATION} {summary.name}"
    name = request.account_name if request is not None else None
    what = f"{title}, {_count_phrase(job.object_count)}, {account_words(ref, name)}"
    if pending:
        head = f"S3 Batch Operations job {ref.job_id} awaiting approval"
    else:
        head = f"S3 Batch Operations job {ref.job_id}: {_decision(request, job)[1]}"
        if request is not None and _by_policy(request):
            name = _policy_rule_name(request)
            head += f" by policy rule {name}" if name else " by policy"
        elif request is not None and _by_expiry(request):
            head += " at its deadline: nobody decided"
        elif request is not None and request.state != RequestState.CLOSED and deciders(request):
            head += " by " + ", ".join(actor.name for actor in deciders(request))
    return safe(f"{head}. {what}", FALLBACK_BUDGET)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def approvers_phrase(rule: Rule, exclude: Sequence[str] = ()) -> str:
    """Who may approve under ``rule``: user and group mentions, or "the deployment's approvers".

    ``exclude`` leaves out named users (those who already voted, a requester who may not approve);
    groups are always named, as anyone in them may still approve. Empty when nobody named is left.
    """
    if rule.approvers is None:
        return "the deployment's approvers"
    users = [user_mention(user) for user in rule.approvers.users if user not in exclude]
    groups = [group_mention(group) for group in rule.approvers.groups]
    return _listed(users + groups)


def _requester_line(requester: Requester) -> str:
    arn = code(requester.principal_arn, ARN_BUDGET) or "`unknown principal`"
    if requester.slack_user_id and SLACK_USER_ID.match(requester.slack_user_id):
        return f"*Requested by:* {user_mention(requester.slack_user_id)} · {arn}"
    return f"*Requested by:* {arn} (no Slack user mapped)"


def requester_wait_ends(request: ApprovalRequest) -> datetime | None:
    """When approval stops waiting to learn the requester: requested_at plus the rule's requester wait."""
    if request.rule is None:
        return None
    return request.requested_at + timedelta(minutes=request.rule.requester_wait.timeout_minutes)


def _holds_for_requester(request: ApprovalRequest) -> bool:
    """Whether approval waits for the requester: unknown, under a rule that needs a person to approve and
    forbids self-approval (with self-approval allowed there is no four-eyes check to wait for)."""
    rule = request.rule
    return (
        request.requester is None
        and rule is not None
        and rule.action == "require_approval"
        and not rule.allow_self_approval
    )


def _hold_line(request: ApprovalRequest) -> str:
    assert request.rule is not None
    wait = request.rule.requester_wait
    ends = requester_wait_ends(request)
    if wait.then == "allow" and wait.timeout_minutes == 0:
        return f"{INFO_SIGN} Approval does not wait to learn who created this job: any approver may approve."
    then = (
        "then any approver may approve" if wait.then == "allow" else "then it keeps waiting; Cancel works at any time"
    )
    return f"⏳ Approval waits until we know who created this job, until {format_utc(ends)}: {then}."


def _requester_section(request: ApprovalRequest | None, pending: bool) -> dict[str, Any] | None:
    """Who created the job (mention and principal ARN), or that CloudTrail is being asked, and the hold."""
    if request is None:
        return None
    if request.requester is not None:
        return section(_requester_line(request.requester), "requester")
    if not pending:
        return section("*Requested by:* not known (CloudTrail had not said who created this job)", "requester")
    rows = ["*Requested by:* 🔎 Looking up who created this job in CloudTrail…"]
    if _holds_for_requester(request):
        rows.append(_hold_line(request))
    return section("\n".join(rows), "requester")


def _rule_line(rule: Rule) -> str:
    name = code(rule.name, 60)
    if rule.action == "deny":
        line = f"Policy rule {name}: cancels jobs like this one"
    elif rule.action == "approve":
        line = f"Policy rule {name}: approves jobs like this one without a person"
    else:
        line = f"Policy rule {name}: needs {_plural(rule.quorum, 'approval')} from {approvers_phrase(rule)}"
        if rule.allow_self_approval:
            line += " · the requester may approve"
    if rule.reason:
        line += f"\nRule's reason: {safe(rule.reason, 400)}"
    return line


def _voted(approvals: Sequence[Actor]) -> str:
    """``<@A> ✅, <@B> ✅``: the mention alone (Slack shows the name), or the escaped name without an ID."""
    return _listed(
        [(user_mention(a.user_id) if SLACK_USER_ID.match(a.user_id) else mention(a)) + " ✅" for a in approvals]
    )


def _progress_line(request: ApprovalRequest, rule: Rule) -> str:
    """``1 of 2 approvals: <@A> ✅ · waiting for 1 more from <@B>, <!subteam^S1>``."""
    have, need = len(request.approvals), rule.quorum
    if have == 0:
        return f"0 of {need} approvals yet"
    line = f"{have} of {need} approvals: {_voted(request.approvals)}"
    if have < need:
        exclude = [actor.user_id for actor in request.approvals]
        if request.requester and request.requester.slack_user_id and not rule.allow_self_approval:
            exclude.append(request.requester.slack_user_id)
        who = approvers_phrase(rule, exclude)
        line += f" · waiting for {need - have} more" + (f" from {who}" if who else "")
    return line


def _policy_section(request: ApprovalRequest | None, pending: bool) -> dict[str, Any] | None:
    """The rule that applies and what it requires; while pending, the quorum's progress."""
    if request is None or request.rule is None:
        return None
    rule = request.rule
    rows = [_rule_line(rule)]
    if pending and rule.action == "require_approval" and rule.quorum > 1:
        rows.append(_progress_line(request, rule))
    return section("\n".join(rows), "policy")


def render_request(job: Job, ref: JobRef, request: ApprovalRequest | None, large_job_threshold: int) -> SlackMessage:
    """The approval message: what the job does, what to watch for, and Approve/Cancel or the outcome."""
    summary = describe_operation(job.operation)
    pending = (request is None or request.state in PENDING_STATES) and job.awaiting_confirmation
    title = summary.title if summary.title != UNKNOWN_OPERATION else f"{UNKNOWN_OPERATION} ({summary.name})"

    description = code(job.description, DESCRIPTION_BUDGET) or "_none_"
    blocks: list[dict[str, Any]] = [
        header(_header_for(request, job, pending)),
        section(
            f"*Job* {code(ref.job_id)} · <{ref.console_url}|Open in the S3 console>\n*Description:* {description}",
            "summary",
        ),
        *filter(None, [_requester_section(request, pending), _policy_section(request, pending)]),
        _fields(
            [
                ("Operation", safe(title, 200)),
                ("Objects", format_count(job.object_count)),
                ("Account", account_field(ref, request.account_name if request is not None else None)),
                ("Region", code(ref.region)),
                ("Priority", "not set" if job.priority is None else str(job.priority)),
                ("Created", format_utc(job.creation_time) if job.creation_time else "unknown"),
                ("IAM role", code(job.role_arn) if job.role_arn else "not given"),
                ("Completion report", _report_text(job)),
            ],
            "details",
        ),
        section(_lines(f"Operation: {safe(title, 200)}", summary.fields), "operation"),
        section(_lines("Objects (manifest)", describe_manifest(job)), "manifest"),
    ]
    warnings = risk_warnings(job, large_job_threshold)
    if warnings:
        rows = [f"{WARNING_SIGN} {safe(warning, WARNING_BUDGET)}" for warning in warnings]
        heading = "*Check before approving*" if pending else "*Warnings*"
        blocks.append(section(heading + "\n" + "\n".join(rows), "warnings"))
    blocks.append(context(*filter(None, [_status_line(job), _deadline(job)]), block_id="status"))
    lifecycle = lifecycle_line(request) if job.awaiting_confirmation else None
    if lifecycle:
        blocks.append(context(safe(lifecycle, 300), block_id="lifecycle"))
    if pending:
        blocks.append(_buttons(job, ref))
    else:
        blocks += [{"type": "divider"}, section(_outcome(request, job), "outcome")]

    message = SlackMessage(
        text=_fallback(ref, job, request, pending),
        blocks=blocks,
        metadata={
            "event_type": EVENT_TYPE,
            "event_payload": {"job_id": ref.job_id, "account_id": ref.account_id, "region": ref.region},
        },
    )
    validate_message(message)
    return message


# -- thread replies -------------------------------------------------------------------------------


def waited_text(since: datetime, now: datetime) -> str:
    """``45 min``, ``3 h 45 min``, ``2 days 3 h``: how long a request has waited."""
    minutes = max(int((now - since).total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{_plural(days, 'day')}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


def render_reminder(
    request: ApprovalRequest,
    number: int,
    of: int,
    approvers: Sequence[str],
    escalated_to: Sequence[str],
    now: datetime,
) -> SlackMessage:
    """A reminder in the request's thread, mentioning who may decide (``approvers``: mentions, already
    formatted by ``user_mention`` / ``group_mention``) and, once escalated, ``escalated_to`` as well."""
    job = _job(request.job.job_id)
    waited = waited_text(request.requested_at, now)
    head = f"⏰ *Reminder {number} of {of}*: job {job} has waited {waited} for a decision."
    if escalated_to:
        head = f"📣 *Escalated (reminder {number} of {of})*: job {job} has waited {waited} for a decision."
    rows = [head]
    if approvers:
        rows.append(f"Who may decide: {_listed(list(approvers))}")
    if escalated_to:
        rows.append(f"Escalated to: {_listed(list(escalated_to))}")
    lifecycle = lifecycle_line(request)
    if lifecycle:
        rows.append(safe(lifecycle, 300))
    text = "\n".join(rows)
    plain = f"Reminder {number} of {of}: S3 Batch Operations job {request.job.job_id} waits for a decision"
    if escalated_to:
        plain = (
            f"Escalated (reminder {number} of {of}): S3 Batch Operations job {request.job.job_id} waits for a decision"
        )
    reply = SlackMessage(text=safe(plain, FALLBACK_BUDGET), blocks=[section(text, "reminder")], metadata=None)
    validate_message(reply)
    return reply


def render_escalation_notice(request: ApprovalRequest, escalated_to: Sequence[str], now: datetime) -> SlackMessage:
    """The notice an escalation posts in its own channel: which job waits, where, since when."""
    job = _job(request.job.job_id)
    where = f"<#{request.channel}>" if request.channel and SLACK_CHANNEL.fullmatch(request.channel) else "its channel"
    rows = [
        f"📣 *Escalated*: S3 Batch Operations job {job} has waited {waited_text(request.requested_at, now)} "
        f"for a decision in {where}."
    ]
    if escalated_to:
        rows.append(f"Please look: {_listed(list(escalated_to))}")
    lifecycle = lifecycle_line(request)
    if lifecycle:
        rows.append(safe(lifecycle, 300))
    plain = f"Escalated: S3 Batch Operations job {request.job.job_id} waits for a decision"
    notice = SlackMessage(
        text=safe(plain, FALLBACK_BUDGET), blocks=[section("\n".join(rows), "escalation")], metadata=None
    )
    validate_message(notice)
    return notice


def render_expired_reply(request: ApprovalRequest, cancelled: bool) -> SlackMessage:
    """The thread reply at the deadline: what the expiry did."""
    job = _job(request.job.job_id)
    within = hours_text(allowed_hours(request))
    if cancelled:
        rule = _rule_named(request)
        text = f"⌛ *Expired*: nobody decided on job {job} within {within}, so it was cancelled ({rule})."
    else:
        late = (
            " Approve or Cancel still work."
            if _expiry_of(request).keep_buttons
            else " The request is closed: decide in the S3 console if the job should still run."
        )
        text = f"⌛ *Expired*: nobody decided on job {job} within {within}. The job is left Suspended.{late}"
    plain = f"S3 Batch Operations job {request.job.job_id} expired: nobody decided within {within}"
    reply = SlackMessage(text=safe(plain, FALLBACK_BUDGET), blocks=[section(text, "expired")], metadata=None)
    validate_message(reply)
    return reply


def render_status_reply(job: Job, ref: JobRef) -> SlackMessage | None:
    """A thread reply when the job runs, completes, fails or is cancelled; None for other statuses."""
    progress = job.progress
    succeeded = progress.succeeded if progress else None
    failed = progress.failed if progress else None
    rows: list[str]
    if job.status == "Active":
        head = "Job is running"
        rows = [f"▶️ *{head}* on {_count_phrase(job.object_count)}."]
    elif job.status == "Complete":
        head = "Job complete" + (" with failures" if failed else "")
        rows = [
            f"{WARNING_SIGN if failed else '✅'} *{head}*: "
            f"{format_count(succeeded)} succeeded, {format_count(failed)} failed "
            f"(of {format_count(job.object_count)})."
        ]
        location = report_location(job)
        rows.append(f"Completion report: {code(location)}" if location else "No completion report was requested.")
    elif job.status == "Failed":
        head = "Job failed"
        rows = [f"❌ *{head}*."]
        rows += [
            "• " + " ".join(filter(None, [code(reason.code), safe(reason.reason or "", 400)]))
            for reason in job.failure_reasons[:10]
        ] or ["• S3 gave no failure reason."]
        if succeeded or failed:
            rows.append(f"{format_count(succeeded)} succeeded, {format_count(failed)} failed before it stopped.")
    elif job.status == "Cancelled":
        head = "Job cancelled"
        rows = [f"🛑 *{head}*."]
        if job.status_update_reason:
            rows.append(f"Reason: {safe(job.status_update_reason, 400)}")
    else:
        return None
    if job.termination_date and job.status != "Active":
        rows.append(f"Finished {format_utc(job.termination_date)}.")
    blocks = [
        section("\n".join(rows), "status_reply"),
        context(f"Job {code(ref.job_id)} · <{ref.console_url}|Open in the S3 console>"),
    ]
    message = SlackMessage(text=safe(f"{head}: S3 Batch Operations job {ref.job_id}", 300), blocks=blocks)
    validate_message(message)
    return message


# -- the reason modal -----------------------------------------------------------------------------


def render_reason_modal(metadata: ModalMetadata, job_id: str) -> dict[str, Any]:
    """The modal that asks why before cancelling; its private_metadata says which job and message."""
    private = metadata.encode()
    if len(private) > MAX_PRIVATE_METADATA:
        raise MessageTooLarge(f"private_metadata is {len(private)} characters, Slack allows {MAX_PRIVATE_METADATA}")
    view = {
        "type": "modal",
        "callback_id": REASON_MODAL_CALLBACK_ID,
        "title": plain_text("Cancel S3 job", MAX_MODAL_TITLE),
        "submit": plain_text("Cancel job", MAX_MODAL_BUTTON),
        "close": plain_text("Back", MAX_MODAL_BUTTON),
        "private_metadata": private,
        "blocks": [
            section(
                f"Job {code(job_id, 60)} will be cancelled and will not run. "
                "Your name and reason are recorded on the job in S3.",
                "cancel_summary",
            ),
            {
                "type": "input",
                "block_id": REASON_BLOCK_ID,
                "label": plain_text("Why cancel this job?", MAX_INPUT_LABEL),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT_ACTION_ID,
                    "multiline": True,
                    "max_length": REASON_MAX_LENGTH,
                    "placeholder": plain_text("For example: wrong prefix, this would touch production", 150),
                },
            },
        ],
    }
    check_view(view)
    return view


def check_view(view: dict[str, Any]) -> None:
    for key, limit in (("title", MAX_MODAL_TITLE), ("submit", MAX_MODAL_BUTTON), ("close", MAX_MODAL_BUTTON)):
        if key in view and slack_len(view[key]["text"]) > limit:
            raise MessageTooLarge(f"modal {key} is longer than {limit} characters")
    if len(view["blocks"]) > MAX_MODAL_BLOCKS:
        raise MessageTooLarge(f"a modal holds at most {MAX_MODAL_BLOCKS} blocks")
    for index, block in enumerate(view["blocks"]):
        _check_block(block, index)


# -- ephemeral notices and notes ------------------------------------------------------------------


def _job(job_id: str) -> str:
    return code(job_id, 60)


def not_an_approver_text(job_id: str) -> str:
    return (
        f"You are not an approver for S3 Batch Operations jobs, so job {_job(job_id)} was not changed. "
        "Ask someone in the approvers group."
    )


def already_decided_text(request: ApprovalRequest) -> str:
    """Who decided what and when, or that a decision is being applied. Nothing was changed."""
    job = _job(request.job.job_id)
    if _by_expiry(request):
        within = hours_text(allowed_hours(request))
        when = f" on {format_utc(request.decided_at)}" if request.decided_at else ""
        return (
            f"Job {job} expired{when}: nobody decided within {within}, so it was cancelled "
            f"({_rule_named(request)}). Nothing was changed."
        )
    if _by_policy(request):
        name = _policy_rule_name(request)
        who = f"policy rule {code(name, 60)}" if name else "policy"
    else:
        who = _people(deciders(request)) or mention(None)
    when = f" on {format_utc(request.decided_at)}" if request.decided_at else ""
    if request.state == RequestState.APPROVED:
        return f"Job {job} was already approved by {who}{when}. Nothing was changed."
    if request.state == RequestState.CANCELLED:
        why = f" Reason: {safe(request.decision_reason, 300)}" if request.decision_reason else ""
        return f"Job {job} was already cancelled by {who}{when}.{why} Nothing was changed."
    if request.state == RequestState.DECIDING:
        verb = {"approve": " to approve", "cancel": " to cancel"}.get(request.decision or "", "")
        return (
            f"A decision on job {job} is already in progress ({who} chose{verb}). "
            "Nothing was changed: the message will show the outcome in a moment."
        )
    if request.state == RequestState.CLOSED:
        note = safe(request.outcome_note or "closed", 300)
        return f"Job {job} is no longer awaiting approval: {note}. Nothing was changed."
    return f"Another decision on job {job} is being applied. Nothing was changed."


_MOVED_ON = {
    **dict.fromkeys(("Ready", "Active", "Pausing", "Paused", "Completing", "Complete"), "confirmed outside Slack"),
    **dict.fromkeys(("Cancelling", "Cancelled"), "cancelled outside Slack"),
    **dict.fromkeys(("Failing", "Failed"), "it failed before anyone confirmed it"),
    **dict.fromkeys(("New", "Preparing"), "S3 is still preparing it"),
}


def outside_slack_note(job_status: str | None) -> str:
    """The outcome note of a request closed because the job moved on, e.g. ``Confirmed outside Slack``."""
    status = one_line(job_status or "")
    reason = _MOVED_ON.get(status)
    if reason is None:
        return f"Job is {status or 'in an unknown state'}, no longer awaiting confirmation"
    if reason.startswith(("it ", "S3 ")):
        return f"Job is {status}: {reason}"
    return reason[0].upper() + reason[1:]


def job_moved_on_text(job_status: str, job_id: str) -> str:
    status = safe(job_status, 40)
    reason = _MOVED_ON.get(one_line(job_status))
    detail = f" ({reason})" if reason else ""
    return f"Job {_job(job_id)} is no longer awaiting confirmation: it is {status}{detail}. Nothing was changed."


def job_not_found_text(job_id: str) -> str:
    return f"Job {_job(job_id)} was not found in S3: it was deleted or is older than 90 days. Nothing was changed."


def no_request_text(job_id: str) -> str:
    return f"There is no approval request on record for job {_job(job_id)}, so nothing was changed."


def decision_failed_text(job_id: str, detail: str) -> str:
    return (
        f"Your decision on job {_job(job_id)} could not be applied: {safe(detail, 500)}. "
        "The request is still open: try again."
    )


def reason_required_error() -> dict[str, str]:
    """The modal's field error (``response_action: errors``) when the reason is blank."""
    return {REASON_BLOCK_ID: "Please say why you are cancelling this job."}


def approvers_unknown_text(job_id: str) -> str:
    return (
        f"Your approver group membership could not be checked just now, so job {_job(job_id)} was not changed. "
        "Please try again in a minute."
    )


def invalid_request_text(reason: str) -> str:
    return f"Your click could not be handled ({escape_mrkdwn(reason)}). Nothing was changed."


def cancel_again_text(job_id: str) -> str:
    return (
        f"Your approver rights for job {_job(job_id)} were just confirmed, so the cancel form did not open in "
        "time. Nothing was changed: click Cancel again."
    )


def decision_stuck_text(job_id: str) -> str:
    return (
        f"Your decision on job {_job(job_id)} was interrupted before S3 was asked. Nothing was changed: "
        "the request is open again, so please decide again."
    )


def modal_failed_text(job_id: str) -> str:
    return (
        f"The cancel form for job {_job(job_id)} could not be opened in time. Nothing was changed: click Cancel again."
    )


def notice_vote_counted(job_id: str) -> str:
    """To a voter whose approval completed the quorum while another delivery applied the decision."""
    return f"Your approval of job {_job(job_id)} counts: with it the job has the approvals it needs and is approved."


def notice_denied_by_policy(job_id: str, rule_name: str) -> str:
    """On Approve of a job a policy rule forbids (its cancellation may still be under way)."""
    return (
        f"Job {_job(job_id)} is forbidden by policy rule {code(rule_name)}: it cannot be approved, and the "
        "product cancels it. Nothing was changed by your click."
    )


def notice_requester_cannot_approve(job_id: str) -> str:
    """To the person who created the job, on Approve: four eyes."""
    return (
        f"You created job {_job(job_id)}, so you cannot approve it: someone else must. "
        "Nothing was changed. You can still cancel it."
    )


def notice_already_approved(job_id: str, have: int, need: int) -> str:
    """To someone who clicks Approve again: their vote is counted once."""
    if have >= need:
        state = f"{have} of {need} approvals, so the job is being approved"
    else:
        state = f"{have} of {need} approvals so far, waiting for {need - have} more"
    return f"You already approved job {_job(job_id)} ({state}). Nothing was changed."


def notice_waiting_for_requester(
    job_id: str, until: datetime | None, then: Literal["allow", "hold"] | None = None
) -> str:
    """On Approve while CloudTrail has not said who created the job; ``then`` is the rule's ``allow`` or
    ``hold`` (what happens when the wait ends at ``until``)."""
    text = (
        f"Job {_job(job_id)} cannot be approved yet: we are still learning who created it from CloudTrail, "
        "and the creator may not approve their own job."
    )
    if until is not None:
        after = {
            "allow": "then any approver may approve",
            "hold": "then it keeps waiting until we know",
        }.get(then or "")
        text += f" The wait ends {format_utc(until)}" + (f": {after}." if after else ".")
    return text + " Nothing was changed. Cancel works at any time."


def notice_vote_recorded(job_id: str, have: int, need: int) -> str:
    """To an approver whose vote counted."""
    then = "so the job is being approved" if have >= need else f"waiting for {need - have} more"
    return f"Your approval of job {_job(job_id)} is recorded: {have} of {need} approvals, {then}."


# -- limits ---------------------------------------------------------------------------------------


def _need(ok: bool, reason: str) -> None:
    if not ok:
        raise MessageTooLarge(reason)


def _text_of(obj: object, where: str) -> str:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise ValueError(f"{where} needs a text object with a string text")
    if obj.get("type") not in ("plain_text", "mrkdwn"):
        raise ValueError(f"{where} text type must be plain_text or mrkdwn")
    return obj["text"]


def _check_length(obj: object, where: str, limit: int) -> None:
    text = _text_of(obj, where)
    _need(slack_len(text) <= limit, f"{where} is {slack_len(text)} characters, Slack allows {limit}")


def _check_button(element: dict[str, Any], where: str) -> None:
    _check_length(element.get("text"), f"{where} text", MAX_BUTTON_TEXT)
    if "action_id" in element:
        _need(len(element["action_id"]) <= MAX_ACTION_ID, f"{where} action_id exceeds {MAX_ACTION_ID} characters")
    if "value" in element:
        _need(len(element["value"]) <= MAX_BUTTON_VALUE, f"{where} value exceeds {MAX_BUTTON_VALUE} characters")
    if "url" in element:
        _need(len(element["url"]) <= MAX_URL, f"{where} url exceeds {MAX_URL} characters")
    if "style" in element and element["style"] not in BUTTON_STYLES:
        raise ValueError(f"{where} style must be primary or danger, not {element['style']!r}")
    confirm = element.get("confirm")
    if confirm is not None:
        _check_length(confirm.get("title"), f"{where} confirm title", MAX_CONFIRM_TITLE)
        _check_length(confirm.get("text"), f"{where} confirm text", MAX_CONFIRM_TEXT)
        _check_length(confirm.get("confirm"), f"{where} confirm button", MAX_CONFIRM_BUTTON)
        _check_length(confirm.get("deny"), f"{where} deny button", MAX_CONFIRM_BUTTON)


def _check_block(block: dict[str, Any], index: int) -> None:
    kind = block.get("type")
    where = f"block {index} ({kind})"
    if "block_id" in block:
        _need(len(block["block_id"]) <= MAX_BLOCK_ID, f"{where} block_id exceeds {MAX_BLOCK_ID} characters")
    if kind == "header":
        _check_length(block.get("text"), f"{where} text", MAX_HEADER_TEXT)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            raise ValueError(f"{where} needs text or fields")
        if "text" in block:
            _check_length(block["text"], f"{where} text", MAX_SECTION_TEXT)
        fields = block.get("fields", [])
        _need(len(fields) <= MAX_SECTION_FIELDS, f"{where} has {len(fields)} fields, Slack allows 10")
        for number, field in enumerate(fields):
            _check_length(field, f"{where} field {number}", MAX_FIELD_TEXT)
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") == "button":
            _check_button(accessory, f"{where} accessory")
    elif kind == "context":
        elements = block.get("elements", [])
        _need(
            len(elements) <= MAX_CONTEXT_ELEMENTS,
            f"{where} has {len(elements)} elements, Slack allows {MAX_CONTEXT_ELEMENTS}",
        )
        for number, element in enumerate(elements):
            if element.get("type") in ("plain_text", "mrkdwn"):
                _check_length(element, f"{where} element {number}", MAX_SECTION_TEXT)
    elif kind == "actions":
        elements = block.get("elements", [])
        _need(
            len(elements) <= MAX_ACTIONS_ELEMENTS,
            f"{where} has {len(elements)} elements, Slack allows {MAX_ACTIONS_ELEMENTS}",
        )
        for number, element in enumerate(elements):
            if element.get("type") == "button":
                _check_button(element, f"{where} button {number}")
    elif kind == "input":
        _check_length(block.get("label"), f"{where} label", MAX_INPUT_LABEL)
        element = block.get("element", {})
        if "action_id" in element:
            _need(len(element["action_id"]) <= MAX_ACTION_ID, f"{where} action_id exceeds {MAX_ACTION_ID}")
        if "max_length" in element:
            _need(element["max_length"] <= MAX_INPUT_LENGTH, f"{where} max_length exceeds {MAX_INPUT_LENGTH}")


def validate_message(message: SlackMessage) -> None:
    """Raise MessageTooLarge (a ValueError) naming the first documented Block Kit limit broken."""
    _need(
        slack_len(message.text) < MAX_FALLBACK_TEXT,
        f"fallback text is {slack_len(message.text)} characters, it must stay under {MAX_FALLBACK_TEXT}",
    )
    _need(
        len(message.blocks) <= MAX_BLOCKS,
        f"message has {len(message.blocks)} blocks, Slack allows {MAX_BLOCKS}",
    )
    for index, block in enumerate(message.blocks):
        _check_block(block, index)
