"""A small IAM policy evaluator for the sandbox's stand-ins (STS trust, the S3 emulator's spoke role check).

It evaluates the shapes this product writes (infra.constants.spoke_trust_policy and spoke_permissions), as IAM
does, and is never kinder than IAM:

- an explicit Deny wins; otherwise some Allow must match; otherwise the answer is no (implicit deny);
- ``Action``/``NotAction`` match case-insensitively with ``*`` and ``?``; ``Resource``/``NotResource`` match
  case-sensitively with the same globs;
- ``Principal``: ``"*"``, or ``{"AWS": …}`` with an account (``123456789012`` or ``arn:…:iam::ACCT:root``,
  meaning any principal of that account) or a principal's ARN (a role's ARN matches its sessions);
  any other principal kind (``Service``, ``Federated``, ``CanonicalUser``) matches no AWS caller;
- ``Condition`` operators: StringEquals, StringNotEquals, StringLike, StringNotLike, ArnEquals, ArnLike,
  ArnNotEquals, ArnNotLike, Bool, each also with ``IfExists``, and Null. A key the request does not carry fails
  the condition, except with ``IfExists`` or a negated operator (``…Not…``), which hold, and ``Null``, which
  holds for ``"true"`` when the key is absent and for ``"false"`` when it is present. ``Arn…`` operators match
  each of an ARN's six colon-separated components on its own (``*`` and ``?`` never span a colon), ArnEquals
  as ArnLike, as IAM does. An operator this evaluator does not know (``Numeric…``, ``Date…``, ``IpAddress``,
  ``ForAnyValue:…``) fails an Allow and applies a Deny, whatever the request carries, so an unmodelled
  condition can only refuse more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

__all__ = ["Principal", "allows", "principal_arn_of", "trust_admits"]

_ACCOUNT = re.compile(r"^[0-9]{12}$")
_ROOT = re.compile(r"^arn:[a-z-]+:iam::([0-9]{12}):root$")
_SESSION = re.compile(r"^arn:(?P<partition>[a-z-]+):sts::(?P<account>[0-9]{12}):assumed-role/(?P<role>[^/]+)/[^/]+$")


def principal_arn_of(caller_arn: str) -> str:
    """``aws:PrincipalArn`` for a caller: a role session's is its role's ARN, anyone else's is their own ARN."""
    session = _SESSION.match(caller_arn)
    if session is None:
        return caller_arn
    return f"arn:{session['partition']}:iam::{session['account']}:role/{session['role']}"


class Principal:
    """Who is asking: the caller's ARN (a session ARN for an assumed role), its account, and its organisation."""

    def __init__(self, arn: str, account: str, organization_id: str | None = None) -> None:
        self.arn = arn
        self.account = account
        self.organization_id = organization_id
        self.principal_arn = principal_arn_of(arn)

    def context(self) -> dict[str, str]:
        keys = {"aws:PrincipalArn": self.principal_arn, "aws:PrincipalAccount": self.account}
        if self.organization_id:
            keys["aws:PrincipalOrgID"] = self.organization_id
        return keys


@cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _any_glob(patterns: Iterable[Any], text: str, *, ignore_case: bool) -> bool:
    return any(isinstance(p, str) and _glob(p, ignore_case).fullmatch(text) for p in patterns)


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement")
    return [s for s in _listed(statements) if isinstance(s, Mapping)]


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return _any_glob(_listed(statement["Action"]), action, ignore_case=True)
    if "NotAction" in statement:
        return not _any_glob(_listed(statement["NotAction"]), action, ignore_case=True)
    return False


def _resource_matches(statement: Mapping[str, Any], resource: str | None) -> bool:
    if resource is None:  # a trust policy names no resource
        return "Resource" not in statement and "NotResource" not in statement
    if "Resource" in statement:
        return _any_glob(_listed(statement["Resource"]), resource, ignore_case=False)
    if "NotResource" in statement:
        return not _any_glob(_listed(statement["NotResource"]), resource, ignore_case=False)
    return False


def _principal_matches(block: Any, principal: Principal) -> bool:
    if block == "*":
        return True
    if not isinstance(block, Mapping):
        return False
    for entry in _listed(block.get("AWS")):
        if not isinstance(entry, str):
            continue
        if entry == "*":
            return True
        root = _ROOT.match(entry)
        account = root.group(1) if root else entry if _ACCOUNT.match(entry) else None
        if account is not None:
            if account == principal.account:
                return True
        elif entry in (principal.arn, principal.principal_arn):
            return True
    return False


_OPERATORS = {
    "StringEquals": (False, False, False),  # (glob, negated, arn)
    "StringNotEquals": (False, True, False),
    "StringLike": (True, False, False),
    "StringNotLike": (True, True, False),
    "ArnEquals": (True, False, True),  # IAM: ArnEquals takes the same wildcards as ArnLike
    "ArnLike": (True, False, True),
    "ArnNotEquals": (True, True, True),
    "ArnNotLike": (True, True, True),
}
_ARN_PARTS = 6


def _arn_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN match: the six colon-separated components each matched on their own (the last, the resource,
    keeps any further colons); a value or a pattern that is not six components matches nothing."""
    wanted, given = pattern.split(":", _ARN_PARTS - 1), arn.split(":", _ARN_PARTS - 1)
    if len(wanted) != _ARN_PARTS or len(given) != _ARN_PARTS:
        return False
    return all(_glob(w, False).fullmatch(g) is not None for w, g in zip(wanted, given, strict=True))


def _null_holds(expected: Any, present: bool) -> bool:
    """``Null``: "true" holds when the key is absent, "false" when it is present (several values: any)."""
    values = [str(value).lower() for value in _listed(expected)]
    return ("true" in values and not present) or ("false" in values and present)


def _condition_holds(operator: str, tests: Any, context: Mapping[str, str], *, deny: bool) -> bool:
    if_exists = operator.endswith("IfExists")
    name = operator[: -len("IfExists")] if if_exists else operator
    known = name in _OPERATORS or name == "Bool" or (name == "Null" and not if_exists)
    if not known or not isinstance(tests, Mapping):
        return deny  # refuse: an Allow that does not hold, a Deny that applies
    for key, expected in tests.items():
        found = next((value for k, value in context.items() if k.lower() == str(key).lower()), None)
        if name == "Null":
            if not _null_holds(expected, found is not None):
                return False
            continue
        if found is None:
            if if_exists:
                continue
            if name in _OPERATORS and _OPERATORS[name][1]:  # a negated operator on a missing key holds
                continue
            return False
        if name == "Bool":
            if not any(str(value).lower() == found.lower() for value in _listed(expected)):
                return False
            continue
        glob, negated, arn = _OPERATORS[name]
        values = [str(value) for value in _listed(expected)]
        if arn:
            hit = any(_arn_matches(value, found) for value in values)
        else:
            hit = _any_glob(values, found, ignore_case=False) if glob else found in values
        if hit == negated:
            return False
    return True


def _conditions_hold(statement: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    conditions = statement.get("Condition") or {}
    deny = statement.get("Effect") == "Deny"
    if not isinstance(conditions, Mapping):
        return deny
    return all(_condition_holds(op, tests, context, deny=deny) for op, tests in conditions.items())


def allows(
    documents: Iterable[Mapping[str, Any]],
    action: str,
    resource: str | None,
    context: Mapping[str, str] | None = None,
    *,
    principal: Principal | None = None,
) -> bool:
    """Whether ``documents`` allow ``action`` on ``resource`` (None for a trust policy, whose statements name a
    ``Principal`` instead, matched against ``principal``) with these condition keys."""
    keys = dict(context or {})
    if principal is not None:
        keys = {**principal.context(), **keys}
    allowed = False
    for document in documents:
        for statement in _statements(document):
            if not _action_matches(statement, action) or not _resource_matches(statement, resource):
                continue
            if resource is None and (
                principal is None or not _principal_matches(statement.get("Principal"), principal)
            ):
                continue
            if not _conditions_hold(statement, keys):
                continue
            if statement.get("Effect") == "Deny":
                return False
            if statement.get("Effect") == "Allow":
                allowed = True
    return allowed


def trust_admits(trust_policy: Mapping[str, Any], principal: Principal, action: str = "sts:AssumeRole") -> bool:
    """Whether a role's trust policy lets ``principal`` assume it."""
    return allows([trust_policy], action, None, principal=principal)
