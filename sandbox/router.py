"""EventBridge rule stand-in: event-pattern matching and synchronous delivery to rule targets.

`matches(pattern, event)` follows EventBridge's content-filtering rules:

- every key in the pattern must match (AND); the values listed for one key are alternatives (OR);
- a leaf is a non-empty array of literals (string, number, bool, null) or content filters:
  `prefix`, `suffix` (both also with `equals-ignore-case`), `anything-but` (a value, a list, or a
  `prefix`/`suffix`/`wildcard`/`equals-ignore-case` filter), `exists`, `numeric`,
  `equals-ignore-case`, `wildcard` and `cidr`; `$or` takes a list of sub-patterns;
- an array in the event matches if any of its elements does, objects inside arrays included;
- matching is type-exact: `"1"` does not match `1` and `true` does not match `1`;
- only `{"exists": false}` matches a field that is absent; `anything-but` needs the field present.

A malformed pattern raises `InvalidEventPattern`, as PutRule would.
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Delivery",
    "EventRouter",
    "InvalidEventPattern",
    "NotAuthorizedForSource",
    "PutEventsDenied",
    "make_event",
    "matches",
    "validate_pattern",
]

Target = Callable[[dict[str, Any]], Any]

_MISSING: Any = object()
_LITERAL_TYPES = (str, int, float, bool, type(None))
_NUMERIC_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_STRING_FILTERS = ("prefix", "suffix", "equals-ignore-case", "wildcard")


class InvalidEventPattern(ValueError):
    """The pattern is not one EventBridge would accept (PutRule's InvalidEventPatternException)."""


class PutEventsDenied(PermissionError):
    """PutEvents from an account the bus's resource policy does not admit (AccessDeniedException)."""


class NotAuthorizedForSource(PermissionError):
    """A PutEvents entry whose Source is AWS's own (``aws.…``): the call answers 200 with FailedEntryCount 1 and
    this entry's ErrorCode ``NotAuthorizedForSourceException``; no rule sees it."""

    error_code = "NotAuthorizedForSourceException"
    error_message = "Not authorized for the source."


# --------------------------------------------------------------------------- validation


def validate_pattern(pattern: Mapping[str, Any]) -> None:
    """Raise InvalidEventPattern unless `pattern` is a pattern EventBridge accepts."""
    if not isinstance(pattern, Mapping) or not pattern:
        raise InvalidEventPattern("an event pattern must be a non-empty JSON object")
    _validate_object(pattern, "")


def _validate_object(pattern: Mapping[str, Any], path: str) -> None:
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidEventPattern(f"{where}: $or needs a list of at least two patterns")
            for alternative in value:
                if not isinstance(alternative, Mapping) or not alternative:
                    raise InvalidEventPattern(f"{where}: each $or alternative must be a non-empty object")
                _validate_object(alternative, path)
        elif isinstance(value, Mapping):
            if not value:
                raise InvalidEventPattern(f"{where}: an empty object matches nothing")
            _validate_object(value, where)
        elif isinstance(value, list):
            if not value:
                raise InvalidEventPattern(f"{where}: an empty array matches nothing")
            for item in value:
                _validate_filter(item, where)
        else:
            raise InvalidEventPattern(f"{where}: match values must be in a JSON array, got {value!r}")


def _validate_filter(item: Any, where: str) -> None:
    if isinstance(item, _LITERAL_TYPES):
        return
    if not isinstance(item, Mapping) or len(item) != 1:
        raise InvalidEventPattern(f"{where}: {item!r} is neither a value nor a single content filter")
    ((name, arg),) = item.items()
    if name in ("prefix", "suffix"):
        if isinstance(arg, Mapping) and set(arg) == {"equals-ignore-case"}:
            arg = arg["equals-ignore-case"]
        if not isinstance(arg, str):
            raise InvalidEventPattern(f"{where}: {name} takes a string")
    elif name == "equals-ignore-case":
        if not isinstance(arg, str):
            raise InvalidEventPattern(f"{where}: equals-ignore-case takes a string")
    elif name == "wildcard":
        _validate_wildcard(arg, where)
    elif name == "exists":
        if not isinstance(arg, bool):
            raise InvalidEventPattern(f"{where}: exists takes true or false")
    elif name == "numeric":
        _validate_numeric(arg, where)
    elif name == "cidr":
        try:
            ipaddress.ip_network(arg, strict=False)
        except (TypeError, ValueError) as error:
            raise InvalidEventPattern(f"{where}: cidr {arg!r} is not a CIDR block") from error
    elif name == "anything-but":
        _validate_anything_but(arg, where)
    else:
        raise InvalidEventPattern(f"{where}: unknown content filter {name!r}")


def _validate_wildcard(arg: Any, where: str) -> None:
    if not isinstance(arg, str):
        raise InvalidEventPattern(f"{where}: wildcard takes a string")
    if "**" in arg.replace("\\\\", "").replace("\\*", ""):
        raise InvalidEventPattern(f"{where}: consecutive wildcard characters are not allowed")


def _validate_numeric(arg: Any, where: str) -> None:
    if not isinstance(arg, list) or not arg or len(arg) % 2 or len(arg) > 4:
        raise InvalidEventPattern(f"{where}: numeric takes one or two operator/number pairs")
    for operator, number in zip(arg[::2], arg[1::2], strict=True):
        if operator not in _NUMERIC_OPERATORS:
            raise InvalidEventPattern(f"{where}: unknown numeric operator {operator!r}")
        if not _is_number(number):
            raise InvalidEventPattern(f"{where}: numeric needs numbers, got {number!r}")
    if len(arg) == 4 and "=" in arg[::2]:
        raise InvalidEventPattern(f"{where}: '=' cannot be combined with a range")


def _validate_anything_but(arg: Any, where: str) -> None:
    if isinstance(arg, Mapping):
        if len(arg) != 1 or next(iter(arg)) not in _STRING_FILTERS:
            allowed = ", ".join(_STRING_FILTERS)
            raise InvalidEventPattern(f"{where}: anything-but takes one of {allowed}")
        ((name, inner),) = arg.items()
        values = inner if isinstance(inner, list) and name in ("equals-ignore-case", "wildcard") else [inner]
        for value in values:
            if name == "wildcard":
                _validate_wildcard(value, where)
            elif not isinstance(value, str):
                raise InvalidEventPattern(f"{where}: anything-but {name} takes strings")
        return
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise InvalidEventPattern(f"{where}: anything-but needs at least one value")
    for value in values:
        if not isinstance(value, str) and not _is_number(value):
            raise InvalidEventPattern(f"{where}: anything-but takes strings or numbers, got {value!r}")


# --------------------------------------------------------------------------- matching


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True when `event` matches the EventBridge `pattern` (validated first)."""
    validate_pattern(pattern)
    return _match_object(pattern, event)


def _match_object(pattern: Mapping[str, Any], obj: Any) -> bool:
    for key, expected in pattern.items():
        if key == "$or":
            if not any(_match_object(alternative, obj) for alternative in expected):
                return False
            continue
        value = obj.get(key, _MISSING) if isinstance(obj, Mapping) else _MISSING
        ok = _match_nested(expected, value) if isinstance(expected, Mapping) else _match_leaf(expected, value)
        if not ok:
            return False
    return True


def _match_nested(pattern: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, list):
        objects = [item for item in value if isinstance(item, Mapping)]
        if objects:
            return any(_match_object(pattern, item) for item in objects)
        return _match_object(pattern, _MISSING)
    return _match_object(pattern, value if isinstance(value, Mapping) else _MISSING)


def _match_leaf(filters: list[Any], value: Any) -> bool:
    if value is _MISSING or isinstance(value, Mapping):
        candidates: list[Any] = []
    elif isinstance(value, list):
        candidates = [item for item in value if not isinstance(item, (Mapping, list))]
    else:
        candidates = [value]
    present = bool(candidates)
    for item in filters:
        if isinstance(item, Mapping) and "exists" in item:
            if item["exists"] is present:
                return True
            continue
        if any(_match_one(item, candidate) for candidate in candidates):
            return True
    return False


def _match_one(item: Any, value: Any) -> bool:
    if not isinstance(item, Mapping):
        return _equal(item, value)
    ((name, arg),) = item.items()
    if name in ("prefix", "suffix"):
        return _affix(name, arg, value)
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == arg.casefold()
    if name == "wildcard":
        return isinstance(value, str) and _wildcard_regex(arg).fullmatch(value) is not None
    if name == "numeric":
        return _numeric(arg, value)
    if name == "cidr":
        return _in_cidr(arg, value)
    if name == "anything-but":
        return _anything_but(arg, value)
    raise InvalidEventPattern(f"unknown content filter {name!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(expected: Any, value: Any) -> bool:
    if expected is None or isinstance(expected, bool):
        return value is expected
    if _is_number(expected):
        return _is_number(value) and value == expected
    return isinstance(value, str) and value == expected


def _affix(name: str, arg: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    ignore_case = isinstance(arg, Mapping)
    needle = arg["equals-ignore-case"] if ignore_case else arg
    haystack = value.casefold() if ignore_case else value
    needle = needle.casefold() if ignore_case else needle
    return haystack.startswith(needle) if name == "prefix" else haystack.endswith(needle)


def _wildcard_regex(expression: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(expression):
        char = expression[index]
        if char == "\\" and index + 1 < len(expression) and expression[index + 1] in "*\\":
            parts.append(re.escape(expression[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def _numeric(arg: list[Any], value: Any) -> bool:
    if not _is_number(value):
        return False
    pairs = zip(arg[::2], arg[1::2], strict=True)
    return all(_NUMERIC_OPERATORS[operator](value, number) for operator, number in pairs)


def _in_cidr(arg: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
    except ValueError:
        return False


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, Mapping):
        ((name, inner),) = arg.items()
        alternatives = inner if isinstance(inner, list) else [inner]
        if name in ("prefix", "suffix"):
            return isinstance(value, str) and not any(_affix(name, alt, value) for alt in alternatives)
        return isinstance(value, str) and not any(_match_one({name: alt}, value) for alt in alternatives)
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_equal(item, value) for item in excluded)


# --------------------------------------------------------------------------- routing


def make_event(
    source: str,
    detail_type: str,
    detail: Mapping[str, Any],
    *,
    account: str = "123456789012",
    region: str = "us-east-1",
    resources: list[str] | None = None,
    time: dt.datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An EventBridge event envelope (version "0") around `detail`, as a rule target receives it."""
    when = (time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": list(resources or []),
        "detail": copy.deepcopy(dict(detail)),
    }


@dataclass(frozen=True)
class Delivery:
    """One event handed to one rule's target, and what the target did with it."""

    rule: str
    event: dict[str, Any]
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Rule:
    name: str
    pattern: dict[str, Any]
    target: Target
    enabled: bool = True


class EventRouter:
    """An event bus with rules: `put_events` hands each matching rule's target its own copy of the event.

    Delivery is synchronous and in rule-registration order. A target that raises is recorded in
    `deliveries`; the first such error is re-raised after every matching target has run, unless
    `raise_target_errors=False` (EventBridge itself would retry and then drop or dead-letter it).

    A bus of ``account`` with a resource policy (``admits(sender_account)``) takes `put_events` from another
    account only when the policy admits it: otherwise PutEventsDenied, recorded in `refused`, and no rule
    sees the event (a bus's own account needs no policy).

    Two ways onto a bus, as in AWS: `put_events` is an event that arrives whole (an AWS service's, or one a
    rule forwards from another bus, which keeps its ``source``, ``account`` and ``region``); `put_events_call`
    is an account calling the PutEvents API, which may not claim an ``aws.`` source
    (NotAuthorizedForSource, recorded in `refused`) and whose event EventBridge stamps: ``account`` the
    caller's, ``region`` the bus's, a fresh ``id``, whatever the caller wrote.
    """

    def __init__(
        self,
        *,
        raise_target_errors: bool = True,
        name: str = "default",
        account: str | None = None,
        region: str | None = None,
        admits: Callable[[str], bool] | None = None,
    ) -> None:
        self.raise_target_errors = raise_target_errors
        self.name, self.account, self.region, self.admits = name, account, region, admits
        self.refused: list[tuple[str, dict[str, Any]]] = []
        self.deliveries: list[Delivery] = []
        self.unmatched: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._rules: dict[str, _Rule] = {}
        self._lock = threading.RLock()

    def add_rule(self, name: str, pattern: Mapping[str, Any], target: Target) -> None:
        validate_pattern(pattern)
        with self._lock:
            if name in self._rules:
                raise ValueError(f"rule {name!r} already exists")
            self._rules[name] = _Rule(name, json.loads(json.dumps(pattern)), target)

    def remove_rule(self, name: str) -> None:
        with self._lock:
            del self._rules[name]

    def disable_rule(self, name: str) -> None:
        with self._lock:
            self._rules[name].enabled = False

    def enable_rule(self, name: str) -> None:
        with self._lock:
            self._rules[name].enabled = True

    @property
    def rules(self) -> list[str]:
        with self._lock:
            return list(self._rules)

    def matching_rules(self, event: Mapping[str, Any]) -> list[str]:
        with self._lock:
            rules = [rule for rule in self._rules.values() if rule.enabled]
        return [rule.name for rule in rules if _match_object(rule.pattern, event)]

    def put_events(self, event: Mapping[str, Any], *, sender_account: str | None = None) -> list[str]:
        """Deliver `event` to every enabled matching rule; return the names of the rules that matched.

        ``sender_account``: the account whose rule target (or service) put it here (default: the bus's own).
        The event is taken as it is; a PutEvents API call is `put_events_call`.
        """
        frozen = json.dumps(event)  # an event must be JSON, as on the bus; each target gets a fresh copy
        self._check_sender(sender_account or self.account, json.loads(frozen))
        with self._lock:
            self.events.append(json.loads(frozen))
            rules = [rule for rule in self._rules.values() if rule.enabled]
        matched = [rule for rule in rules if _match_object(rule.pattern, json.loads(frozen))]
        if not matched:
            with self._lock:
                self.unmatched.append(json.loads(frozen))
            return []
        first_error: BaseException | None = None
        for rule in matched:
            copy_for_target = json.loads(frozen)
            try:
                result = rule.target(copy_for_target)
            except Exception as error:
                first_error = first_error or error
                delivery = Delivery(rule.name, json.loads(frozen), error=error)
            else:
                delivery = Delivery(rule.name, json.loads(frozen), result=result)
            with self._lock:
                self.deliveries.append(delivery)
        if first_error is not None and self.raise_target_errors:
            raise first_error
        return [rule.name for rule in matched]

    def put_events_call(self, event: Mapping[str, Any], *, sender_account: str) -> list[str]:
        """One entry of a PutEvents API call by ``sender_account``: the bus's policy first (PutEventsDenied),
        then the entry (NotAuthorizedForSource for an ``aws.`` source); the event EventBridge then builds
        carries the caller's account, the bus's region and a new id. Returns the rules that matched."""
        stamped = json.loads(json.dumps(event))
        stamped.update({"version": "0", "id": str(uuid.uuid4()), "account": sender_account})
        if self.region is not None:
            stamped["region"] = self.region
        self._check_sender(sender_account, stamped)
        if str(stamped.get("source", "")).startswith("aws."):
            with self._lock:
                self.refused.append((sender_account, stamped))
            raise NotAuthorizedForSource(
                f"{NotAuthorizedForSource.error_code}: {NotAuthorizedForSource.error_message} "
                f"(source {stamped.get('source')!r} on event bus {self.name})"
            )
        return self.put_events(stamped, sender_account=sender_account)

    def _check_sender(self, sender: str | None, event: Mapping[str, Any]) -> None:
        if sender != self.account and (self.admits is None or sender is None or not self.admits(sender)):
            with self._lock:
                self.refused.append((str(sender), json.loads(json.dumps(event))))
            raise PutEventsDenied(
                f"User: arn:aws:sts::{sender}:assumed-role/… is not authorized to perform: events:PutEvents on "
                f"resource: event bus {self.name} of account {self.account}"
            )

    def deliveries_to(self, rule: str) -> list[dict[str, Any]]:
        """The events delivered to `rule`, oldest first."""
        with self._lock:
            return [delivery.event for delivery in self.deliveries if delivery.rule == rule]

    @property
    def failures(self) -> list[Delivery]:
        with self._lock:
            return [delivery for delivery in self.deliveries if not delivery.ok]

    def __len__(self) -> int:
        return len(self.deliveries)
