"""Who may decide. The Slack signature proves a request came from Slack; this decides who may act."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from approvals.domain.ports import ChatUnavailable


@dataclass(frozen=True)
class Approvers:
    user_ids: frozenset[str]
    group_ids: tuple[str, ...]


def approver_status(user_id: str, approvers: Approvers, members_of: Callable[[str], frozenset[str]]) -> bool | None:
    """True when the user is a named approver or a member of an approver group; None when a group
    that might admit them could not be read (deleted, or Slack unavailable), so nobody is refused
    for good on a Slack hiccup, and one unreadable group does not hide the others.

    Nobody may decide when no approvers are configured: an empty list never means "everyone".
    """
    if user_id in approvers.user_ids:
        return True
    unknown = False
    for group_id in approvers.group_ids:
        try:
            if user_id in members_of(group_id):
                return True
        except ChatUnavailable:
            unknown = True
    return None if unknown else False


def known_refusal(
    user_id: str, approvers: Approvers, cached_members_of: Callable[[str], frozenset[str] | None]
) -> bool:
    """True only when the user is certainly not an approver, using cached group members alone.

    Used inside the 3-second ack, where no network call may be made: unknown means "not certain".
    """
    if user_id in approvers.user_ids:
        return False
    for group_id in approvers.group_ids:
        members = cached_members_of(group_id)
        if members is None or user_id in members:
            return False
    return True
