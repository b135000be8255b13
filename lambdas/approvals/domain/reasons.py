"""The StatusUpdateReason recorded on the job: who decided, their Slack ID, and why."""

from __future__ import annotations

import unicodedata

from approvals.models.records import Actor, DecisionKind

MAX_REASON = 256  # S3 Control's limit for StatusUpdateReason
MAX_NAME = 80
ELLIPSIS = "…"


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


def status_update_reason(decision: DecisionKind, actor: Actor, why: str | None = None) -> str:
    """``Approved by NAME (ID) via Slack`` or ``Cancelled by NAME (ID) via Slack: WHY``, at most 256."""
    name = cut(_plain(actor.name) or actor.user_id, MAX_NAME)
    verb = "Approved" if decision == "approve" else "Cancelled"
    head = f"{verb} by {name} ({actor.user_id}) via Slack"
    why = _plain(why or "")
    if not why:
        return cut(head, MAX_REASON)
    return head + ": " + cut(why, MAX_REASON - len(head) - 2)


def recorded_by(reason: str | None, decision: DecisionKind, actor: Actor) -> bool:
    """True when a StatusUpdateReason is one this product wrote for this person's decision.

    Matches on the verb and the Slack ID, not the display name, which may read differently later.
    """
    if not reason:
        return False
    verb = "Approved" if decision == "approve" else "Cancelled"
    return reason.startswith(f"{verb} by ") and f"({actor.user_id}) via Slack" in reason


def requested_status(decision: DecisionKind) -> str:
    return "Ready" if decision == "approve" else "Cancelled"
