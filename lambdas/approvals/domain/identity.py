"""Who created a job, in Slack: the IAM principal of the CreateJob call mapped to a Slack user.

In this order, the first that answers wins:

1. the policy's ``identities.map``, in file order: an entry's ARN glob is tried on the principal's ARN and,
   for an assumed role, on the role behind the session (``session_issuer_arn``); ``mapped_by`` "mapping";
2. with ``identities.email_lookup``, an IAM Identity Center session
   (``arn:aws:sts::<account>:assumed-role/AWSReservedSSO_<permission set>_<hash>/<user name>``) whose name is
   an email: the Slack user with that email (users.lookupByEmail); ``mapped_by`` "email";
3. nobody: ``slack_user_id`` None. The message shows the principal ARN alone and no Slack user is treated as
   the requester.

A principal is never mapped by anything else: not by a display name, not by a partial match. When Slack does
not answer the email lookup, the requester is kept unmapped and ``Resolution.lookup_failed`` says why, so the
caller may try again later; the principal is never lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from approvals.domain.ports import ChatUnavailable
from approvals.models.events import CreateJobCall
from approvals.models.policy import Identities, IdentityMapping
from approvals.models.records import Requester

# Identity Center's roles are AWSReservedSSO_<permission set name>_<16 hex>; the session is the user's name.
SSO_SESSION = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:sts::[0-9]{12}:assumed-role/AWSReservedSSO_[\w+=,.@-]+_[0-9A-Fa-f]{16}/(?P<session>[^/]+)"
)
# The role behind an Identity Center session, as CloudTrail's sessionIssuer names it: always under the
# aws-reserved/sso.amazonaws.com/ path (with the region outside us-east-1), which only Identity Center creates.
SSO_ISSUER = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:iam::(?P<account>[0-9]{12}):role/aws-reserved/sso\.amazonaws\.com/(?:[a-z0-9-]+/)?"
    r"(?P<role>AWSReservedSSO_[\w+=,.@-]+_[0-9A-Fa-f]{16})"
)
# An address Slack could hold: one @, a dotted domain, no spaces (session names admit [\w+=,.@-] only).
EMAIL = re.compile(r"[A-Za-z0-9._%+=-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")

FoundIn = Literal["event", "history"]


@dataclass(frozen=True)
class Resolution:
    """The requester, and why its Slack user could not be looked up (None when nothing failed)."""

    requester: Requester
    lookup_failed: str | None = None


def identity_center_email(call: CreateJobCall) -> str | None:
    """The email an IAM Identity Center session is named after, only when CloudTrail says the session's role
    is Identity Center's own (its reserved path): anyone may name a role AWSReservedSSO_… and a session
    after a colleague's email, but not create a role under that path."""
    issuer = SSO_ISSUER.fullmatch(call.session_issuer_arn or "")
    session = SSO_SESSION.fullmatch(call.principal_arn)
    if call.principal_type != "AssumedRole" or issuer is None or session is None:
        return None
    if f":{issuer['account']}:assumed-role/{issuer['role']}/" not in call.principal_arn:
        return None  # the session is not of that role
    return sso_email(call.principal_arn)


def sso_email(principal_arn: str) -> str | None:
    """The email an IAM Identity Center session is named after; None for any other principal."""
    match = SSO_SESSION.fullmatch(principal_arn)
    if match is None:
        return None
    session = match["session"]
    return session if EMAIL.fullmatch(session) else None


class IdentityResolver:
    """Maps the principal of a CreateJob call to a Slack user, as the policy's ``identities`` say.

    ``user_by_email`` is ``ports.Chat.user_by_email``: the Slack user ID with that email, or None; it raises
    ChatUnavailable when Slack does not answer.
    """

    def __init__(self, identities: Identities, user_by_email: Callable[[str], str | None]) -> None:
        self._identities = identities
        self._user_by_email = user_by_email

    def resolve(self, call: CreateJobCall, found_in: FoundIn) -> Requester:
        """The requester of the job ``call`` created (unmapped when Slack did not answer)."""
        return self.resolution(call, found_in).requester

    def resolution(self, call: CreateJobCall, found_in: FoundIn) -> Resolution:
        """The requester, and whether the email lookup failed (then it is unmapped, to be tried again)."""
        unmapped = Requester(principal_arn=call.principal_arn, principal_type=call.principal_type, found_in=found_in)
        entry = self.mapping_for(call)
        if entry is not None:
            return Resolution(unmapped.model_copy(update={"slack_user_id": entry.slack_user, "mapped_by": "mapping"}))
        email = identity_center_email(call) if self._identities.email_lookup else None
        if email is None:
            return Resolution(unmapped)
        try:
            user = self._user_by_email(email)
        except ChatUnavailable as exc:
            return Resolution(unmapped, lookup_failed=f"Slack did not answer users.lookupByEmail: {exc}")
        if user is None:
            return Resolution(unmapped)
        return Resolution(unmapped.model_copy(update={"slack_user_id": user, "mapped_by": "email"}))

    def mapping_for(self, call: CreateJobCall) -> IdentityMapping | None:
        """The first ``identities.map`` entry whose glob matches the principal (or an assumed role's role)."""
        names = [call.principal_arn]
        if call.principal_type == "AssumedRole" and call.session_issuer_arn:
            names.append(call.session_issuer_arn)
        for entry in self._identities.map:
            if any(fnmatchcase(name, entry.principal) for name in names):
                return entry
        return None
