"""The StatusUpdateReason recorded on the job: who decided, their Slack ID, and why."""

from __future__ import annotations

import re
import unicodedata

from approvals.models.records import Actor, DecisionKind

MAX_REASON = 256  # S3 Control's limit for StatusUpdateReason
MAX_NAME = 80
ELLIPSIS = "…"
# Our own reasons, recognised only by their head: the verb, a name that cannot hold parentheses, the
# Slack ID in the first (and only) parentheses, then "via Slack" and the end or ": " and free text.
# Whatever a person can type (their display name, a cancel reason) cannot move the ID or forge the head.
_HEAD = re.compile(r"^(?P<verb>Approved|Cancelled) by [^()]* \((?P<id>[UW][A-Z0-9]{2,31})\) via Slack(?::\s|$)")


def _is_joiner(char: str) -> bool:
    """Characters that only make sense attached to the one before or after them."""
    return unicodedata.combining(char) != 0 or char in "\u200d\ufe0e\ufe0f" or "\U0001f3fb" <= char <= "\U0001f3ff"


def cut(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, never inside a character or a joined sequence."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    end = limit - len(ELLIPSIS)
    # Step back over marks, joiners and modifiers so a sequence is kept whole or dropped whole.
    while end > 0 and (_is_joiner(text[end]) or (end > 0 and text[end - 1] == "\u200d")):
        end -= 1
    return text[:end].rstrip() + ELLIPSIS


def _plain(text: str) -> str:
    """One line, no control characters: the reason is shown in consoles and CLIs."""
    return " ".join("".join(c if unicodedata.category(c)[0] != "C" else " " for c in text).split())


def _name(text: str) -> str:
    """A display name for the head: plain, and with no parentheses, which frame the Slack ID."""
    return _plain(text.translate(_NO_PARENS))


_NO_PARENS = str.maketrans({"(": "[", ")": "]", "\uff08": "[", "\uff09": "]"})


def status_update_reason(decision: DecisionKind, actor: Actor, why: str | None = None) -> str:
    """``Approved by NAME (ID) via Slack`` or ``Cancelled by NAME (ID) via Slack: WHY``, at most 256."""
    name = cut(_name(actor.name) or actor.user_id, MAX_NAME)
    verb = "Approved" if decision == "approve" else "Cancelled"
    head = f"{verb} by {name} ({actor.user_id}) via Slack"
    why = _plain(why or "")
    if not why:
        return cut(head, MAX_REASON)
    return head + ": " + cut(why, MAX_REASON - len(head) - 2)


def decider_of(reason: str | None) -> tuple[DecisionKind, Actor] | None:
    """The decision and the person a StatusUpdateReason this product wrote names, from its anchored head."""
    head = _HEAD.match(reason or "")
    if head is None:
        return None
    name = (reason or "")[len(head["verb"]) + len(" by ") : head.start("id") - 2]
    decision: DecisionKind = "approve" if head["verb"] == "Approved" else "cancel"
    return decision, Actor(user_id=head["id"], name=name or head["id"])


def recorded_by(reason: str | None, decision: DecisionKind, actor: Actor) -> bool:
    """True when a StatusUpdateReason is one this product wrote for this person's decision.

    Matches the anchored head only: the verb and the Slack ID in their fixed places, not the display
    name (which may read differently later) and never text anywhere else in the reason.
    """
    head = _HEAD.match(reason or "")
    if head is None:
        return False
    verb = "Approved" if decision == "approve" else "Cancelled"
    return head["verb"] == verb and head["id"] == actor.user_id


def requested_status(decision: DecisionKind) -> str:
    return "Ready" if decision == "approve" else "Cancelled"
