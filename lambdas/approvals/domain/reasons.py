"""The StatusUpdateReason recorded on the job: who decided (one person, a quorum, or a policy rule) and why.

Two heads, both anchored at the start, both within S3's 256 characters:

- people: ``Approved by Alice (U0ALICE01), Gina (U0GINA001) via Slack[: why]``. Every approver's Slack ID,
  in order, each in the only parentheses of its entry; entries are joined by ", ".
- a policy rule: ``Cancelled by policy <rule>: <why>`` or ``Approved by policy <rule>[: why]``.

Parsing goes by the IDs alone. Display names lose their parentheses (they become brackets) and their
colons (they become semicolons), and a policy's why loses its parentheses, so:

- a name holding ", ", "(U0GINA001)" or "via Slack" cannot add, move or forge an approver: the number of
  approvers is the number of parenthesised IDs the anchored regex finds, and a name cannot frame one;
- a name such as "policy deny-all: x" cannot make a person's reason read as a policy head, and a rule's
  reason cannot make a policy's reason read as a person's;
- whatever a person types after the head (a cancel reason) is never read.

How names are shortened when they do not fit. The fixed parts (the verb, every ID with its parentheses,
the separators and "via Slack") always stay. The names share the room the fixed parts leave, less a
reserve for the why (``WHY_RESERVE``, or the why's own length if shorter), fairly: shortest first, each
takes what it needs up to an equal share of what is left, so a short name passes its unused share on to
the longer ones. Each name is at most ``MAX_NAME`` characters and is cut with ``cut()`` (never inside a
character or an emoji sequence, ending with "…"). A name whose share would leave fewer than
``MIN_CUT_NAME`` characters is left out entirely, and its entry is the ID alone: ``(U0ALICE01)``. The
why gets whatever the head leaves, cut the same way. Only when even the IDs alone cannot fit (more than
ten approvers with IDs of the longest kind Slack allows) does ``status_update_reason`` raise ValueError:
it never drops an ID.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from approvals.models.policy import RULE_NAME
from approvals.models.records import Actor, DecisionKind

MAX_REASON = 256  # S3 Control's limit for StatusUpdateReason
MAX_NAME = 80
MIN_CUT_NAME = 4  # a name cut shorter than this ("Al…") says too little: the ID alone is shown instead
ELLIPSIS = "…"
LONGEST_SLACK_ID = 16  # the longest Slack user ID we plan for (Slack's are 9 to 11 characters today)
# The why one decider's head leaves room for with the longest name and ID: a why this long is never cut
# for one person (the cancel form allows no longer), and several people's names shrink before it does.
WHY_RESERVE = MAX_REASON - len("Cancelled by  () via Slack: ") - MAX_NAME - LONGEST_SLACK_ID

_SLACK_ID = r"[UW][A-Z0-9]{2,31}"
_NAME = r"[^()\s](?:[^()]*[^()\s])?"  # as _name() leaves it: no parentheses, no space at either end
_ENTRY = rf"(?:{_NAME} )?\({_SLACK_ID}\)"
_PEOPLE_HEAD = re.compile(rf"^(?P<verb>Approved|Cancelled) by (?P<people>{_ENTRY}(?:, {_ENTRY})*) via Slack(?::\s|\Z)")
_ONE_ENTRY = re.compile(rf"(?:(?P<name>{_NAME}) )?\((?P<id>{_SLACK_ID})\)(?:, )?")
_RULE = RULE_NAME.pattern.removeprefix("^").removesuffix("$")
_POLICY_HEAD = re.compile(rf"^(?P<verb>Approved|Cancelled) by policy (?P<rule>{_RULE})(?::\s|\Z)")

_NAME_CHARS = str.maketrans({"(": "[", ")": "]", "\uff08": "[", "\uff09": "]", ":": ";"})
_WHY_CHARS = str.maketrans({"(": "[", ")": "]", "\uff08": "[", "\uff09": "]"})


def _is_joiner(char: str) -> bool:
    """Characters that only make sense attached to the one before or after them."""
    return unicodedata.combining(char) != 0 or char in "\u200d\ufe0e\ufe0f" or "\U0001f3fb" <= char <= "\U0001f3ff"


def cut(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, never inside a character or a joined sequence."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[: max(limit, 0)]
    end = limit - len(ELLIPSIS)
    # Step back over marks, joiners and modifiers so a sequence is kept whole or dropped whole.
    while end > 0 and (_is_joiner(text[end]) or (end > 0 and text[end - 1] == "\u200d")):
        end -= 1
    return text[:end].rstrip() + ELLIPSIS


def _kept(char: str) -> bool:
    """Not a control or format character, except the joiner and tags that build emoji sequences."""
    return unicodedata.category(char)[0] != "C" or char == "\u200d" or "\U000e0020" <= char <= "\U000e007f"


def _plain(text: str) -> str:
    """One line, no control characters (nor bidirectional overrides): the reason is shown in consoles and CLIs."""
    return " ".join("".join(c if _kept(c) else " " for c in text).split())


def _name(text: str) -> str:
    """A display name for the head: plain, no parentheses (they frame IDs) and no colons (policy heads)."""
    return _plain(text.translate(_NAME_CHARS))


def _verb(decision: DecisionKind) -> str:
    return "Approved" if decision == "approve" else "Cancelled"


def _as_tuple(actors: Actor | Sequence[Actor]) -> tuple[Actor, ...]:
    return (actors,) if isinstance(actors, Actor) else tuple(actors)


def _shares(wants: list[int], room: int) -> list[int]:
    """How many characters each name may use (0: left out), fairly, costing each kept name one space more.

    Shortest first, each takes up to an equal share of what is left; the sum of kept names plus their
    spaces never exceeds ``room``.
    """
    shares = [0] * len(wants)
    left = max(room, 0)
    order = sorted(range(len(wants)), key=lambda index: (wants[index], index))
    for position, index in enumerate(order):
        fair = left // (len(order) - position)
        share = min(wants[index], fair - 1)
        if share < wants[index] and share < MIN_CUT_NAME:
            share = 0
        shares[index] = max(share, 0)
        left -= shares[index] + 1 if shares[index] else 0
    return shares


def _entries(names: list[str], ids: list[str], room: int) -> str:
    shares = _shares([len(name) for name in names], room)
    entries = []
    for name, user_id, share in zip(names, ids, shares, strict=True):
        shown = cut(name, share) if share else ""
        entries.append(f"{shown} ({user_id})" if shown and shown != ELLIPSIS else f"({user_id})")
    return ", ".join(entries)


def status_update_reason(decision: DecisionKind, actors: Actor | Sequence[Actor], why: str | None = None) -> str:
    """``Approved by NAME (ID)[, NAME (ID)…] via Slack[: WHY]``, at most 256, every Slack ID in order.

    ``actors`` is the one person who decided, or the approvers of a quorum in the order they voted.
    Names are shortened as the module says; raises ValueError for no actor, or when the IDs alone
    cannot fit.
    """
    people = _as_tuple(actors)
    if not people:
        raise ValueError("a decision needs at least one person")
    verb = _verb(decision)
    ids = [actor.user_id for actor in people]
    names = [cut(_name(actor.name), MAX_NAME) for actor in people]
    why = _plain(why or "").translate(_WHY_CHARS)
    fixed = len(f"{verb} by ") + sum(len(user_id) + 2 for user_id in ids) + 2 * (len(ids) - 1) + len(" via Slack")
    if fixed > MAX_REASON:
        raise ValueError(f"{len(ids)} Slack IDs cannot all fit in a StatusUpdateReason of {MAX_REASON} characters")
    reserve = min(len(why), WHY_RESERVE) + len(": ") if why else 0
    room = MAX_REASON - fixed - reserve
    head = f"{verb} by {_entries(names, ids, room)} via Slack"
    shown = cut(why, MAX_REASON - len(head) - len(": "))
    if not shown or shown == ELLIPSIS:  # no why, or no room left for any of it
        return head
    return head + ": " + shown


def decider_of(reason: str | None) -> tuple[DecisionKind, tuple[Actor, ...]] | None:
    """The decision and the people (in order) a StatusUpdateReason this product wrote names, or None.

    Read from the anchored head only; a name that was left out reads as the ID itself.
    """
    text = reason or ""
    head = _PEOPLE_HEAD.match(text)
    if head is None or _POLICY_HEAD.match(text):
        return None
    decision: DecisionKind = "approve" if head["verb"] == "Approved" else "cancel"
    actors = tuple(
        Actor(user_id=entry["id"], name=entry["name"] or entry["id"]) for entry in _ONE_ENTRY.finditer(head["people"])
    )
    return decision, actors


def recorded_by(reason: str | None, decision: DecisionKind, actors: Actor | Sequence[Actor]) -> bool:
    """True when a StatusUpdateReason is one this product wrote for this decision by exactly these people.

    Matches the anchored head only: the verb and the Slack IDs, all of them in order, not the display
    names (which may read differently later) and never text anywhere else in the reason.
    """
    found = decider_of(reason)
    if found is None:
        return False
    decision_found, people = found
    wanted = tuple(actor.user_id for actor in _as_tuple(actors))
    return decision_found == decision and tuple(actor.user_id for actor in people) == wanted


def policy_reason(decision: DecisionKind, rule_name: str, why: str | None = None) -> str:
    """``Approved by policy RULE[: WHY]`` or ``Cancelled by policy RULE: WHY``, at most 256.

    ``rule_name`` must be a policy rule name (models.policy.RULE_NAME); the why loses its parentheses so
    it can never read as a person's head.
    """
    if not RULE_NAME.fullmatch(rule_name):
        raise ValueError(f"{rule_name!r} is not a policy rule name")
    head = f"{_verb(decision)} by policy {rule_name}"
    why = _plain(why or "").translate(_WHY_CHARS)
    if not why:
        return head
    return head + ": " + cut(why, MAX_REASON - len(head) - len(": "))


def policy_of(reason: str | None) -> tuple[DecisionKind, str] | None:
    """The decision and the rule name of a StatusUpdateReason a policy rule decided, from its anchored head."""
    text = reason or ""
    head = _POLICY_HEAD.match(text)
    if head is None or _PEOPLE_HEAD.match(text):
        return None
    decision: DecisionKind = "approve" if head["verb"] == "Approved" else "cancel"
    return decision, head["rule"]


_EXPIRY_HEAD = re.compile(rf"^Expired: no decision within [0-9]+ (?:h|days) \(policy (?P<rule>{_RULE})\)\Z")


def expiry_reason(rule_name: str, within: str) -> str:
    """``Expired: no decision within 24 h (policy RULE)``: the reason of a job its request's expiry cancelled."""
    if not RULE_NAME.fullmatch(rule_name):
        raise ValueError(f"{rule_name!r} is not a policy rule name")
    reason = f"Expired: no decision within {within} (policy {rule_name})"
    if not _EXPIRY_HEAD.match(reason):
        raise ValueError(f"{within!r} is not a duration such as '24 h' or '3 days'")
    return reason


def expiry_of(reason: str | None) -> str | None:
    """The rule whose expiry cancelled the job, from a StatusUpdateReason ``expiry_reason`` wrote; else None."""
    found = _EXPIRY_HEAD.match(reason or "")
    return found["rule"] if found else None


def requested_status(decision: DecisionKind) -> str:
    return "Ready" if decision == "approve" else "Cancelled"
