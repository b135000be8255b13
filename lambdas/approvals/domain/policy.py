"""Which policy rule applies to a job, and why: pure matching over the facts known about the job.

Rules are tried in order and the first whose every matcher holds wins; the last rule (empty match)
catches every job. Each matcher says in words why it held or, for a skipped rule, why it did not.

The buckets a rule sees are the ones DescribeJob names, read the way ``domain.operations`` reads them:
the manifest's bucket, a generated manifest's source bucket, and the copy's target bucket. A CSV
manifest lists bucket and key per line, so the objects of such a job may live in buckets DescribeJob
does not name; the rule sees the manifest's bucket only.

The requester matcher is tried last. An unknown requester never matches, so a rule skipped only for
that reason (every other matcher held) may apply once the requester is known: the result lists such
rules in ``pending_requester``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType

from approvals.domain.operations import bucket_name, operation_member, split_object_arn
from approvals.models.job import Job, JobRef
from approvals.models.policy import Match, Policy, Rule, rule_label

MANIFEST_BUCKET = "manifest bucket"
SOURCE_BUCKET = "generated-manifest source bucket"
TARGET_BUCKET = "target bucket"
REQUESTER_UNKNOWN = "the requester is not known yet, so requesters cannot match"
SHOWN = 5  # items of a list quoted in a reason before "and N more"


@dataclass(frozen=True)
class JobFacts:
    """What a policy rule can match on, gathered once per job."""

    account: str
    region: str
    operation: str
    manifest_bucket: str | None = None
    source_bucket: str | None = None
    target_buckets: tuple[str, ...] = ()
    object_count: int | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    requester: str | None = None

    @classmethod
    def of(
        cls,
        job: Job,
        ref: JobRef,
        tags: Mapping[str, str] | None = None,
        requester: str | None = None,
    ) -> JobFacts:
        """The facts of a described job. ``tags`` are the job's tags (GetJobTagging), ``requester`` the
        ARN of the principal that created it, when known."""
        name, params = operation_member(job.operation)
        manifest = job.manifest if isinstance(job.manifest, Mapping) else {}
        location = manifest.get("Location")
        parts = split_object_arn(location.get("ObjectArn")) if isinstance(location, Mapping) else None
        generators = job.manifest_generator if isinstance(job.manifest_generator, Mapping) else {}
        generator = generators.get("S3JobManifestGenerator")
        source = generator.get("SourceBucket") if isinstance(generator, Mapping) else None
        target = params.get("TargetResource") if name == "S3PutObjectCopy" else None
        return cls(
            account=ref.account_id,
            region=ref.region,
            operation=name or "Unknown",
            manifest_bucket=parts[0] if parts else None,
            source_bucket=bucket_name(source) if source else None,
            target_buckets=(bucket_name(target),) if target else (),
            object_count=job.object_count,
            tags=MappingProxyType(dict(tags or {})),
            requester=requester,
        )

    @property
    def buckets(self) -> list[tuple[str, str]]:
        """(kind, name) of every bucket the job names."""
        named = [(MANIFEST_BUCKET, self.manifest_bucket), (SOURCE_BUCKET, self.source_bucket)]
        named += [(TARGET_BUCKET, bucket) for bucket in self.target_buckets]
        return [(kind, name) for kind, name in named if name]


@dataclass(frozen=True)
class PolicyMatch:
    """The rule that applies (numbered from 1), why it matched, and why each earlier rule did not."""

    rule: Rule
    number: int
    why: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (rule name, the first reason it did not match)
    pending_requester: tuple[str, ...] = ()  # earlier rules that may match once the requester is known

    @property
    def label(self) -> str:
        return rule_label(self.rule.name, self.number)

    @property
    def provisional(self) -> bool:
        """True when knowing the requester could change which rule applies."""
        return bool(self.pending_requester)


def evaluate(policy: Policy, facts: JobFacts) -> PolicyMatch:
    """The first rule whose match holds for the job (the last rule always does)."""
    skipped: list[tuple[str, str]] = []
    pending: list[str] = []
    for number, rule in enumerate(policy.rules, start=1):
        held, why = _try(rule.match, facts)
        if held:
            if pending:
                why.append(
                    "the requester is not known yet: "
                    + ", ".join(repr(name) for name in pending)
                    + " may apply instead once it is"
                )
            return PolicyMatch(
                rule=rule, number=number, why=tuple(why), skipped=tuple(skipped), pending_requester=tuple(pending)
            )
        reason = why[0]
        skipped.append((rule.name, reason))
        if reason == REQUESTER_UNKNOWN:
            pending.append(rule.name)
    raise AssertionError("the last rule of a validated policy matches every job")  # pragma: no cover


# -- matchers ------------------------------------------------------------------------------------
# Each returns (held, reason): the reason says why it held, or why not.

Matcher = Callable[[Match, JobFacts], tuple[bool, str]]


def _try(match: Match, facts: JobFacts) -> tuple[bool, list[str]]:
    """(True, why) when every matcher given holds; (False, [first reason it failed]) otherwise."""
    why = []
    for present, matcher in _MATCHERS:
        if present(match):
            held, reason = matcher(match, facts)
            if not held:
                return False, [reason]
            why.append(reason)
    if not why:
        why.append("the default rule: it matches every job that no earlier rule matched")
    return True, why


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _one_of(what: str, value: str, allowed: list[str], field_name: str) -> tuple[bool, str]:
    if value in allowed:
        return True, f"{what} {value} is one of {field_name}"
    return False, f"{what} {value} is not one of {field_name} ({_listing(allowed)})"


def _accounts(match: Match, facts: JobFacts) -> tuple[bool, str]:
    return _one_of("account", facts.account, match.accounts or [], "accounts")


def _regions(match: Match, facts: JobFacts) -> tuple[bool, str]:
    return _one_of("region", facts.region, match.regions or [], "regions")


def _operations(match: Match, facts: JobFacts) -> tuple[bool, str]:
    return _one_of("operation", facts.operation, list(match.operations or []), "operations")


def _buckets(match: Match, facts: JobFacts) -> tuple[bool, str]:
    globs = match.buckets or []
    named = facts.buckets
    if not named:
        return False, f"the job names no bucket, so buckets ({_listing(globs)}) cannot match"
    hits = [
        f"{kind} {name} matches {glob!r}"
        for kind, name in named
        if (glob := next((g for g in globs if fnmatchcase(name, g)), None)) is not None
    ]
    if hits:
        return True, "; ".join(hits)
    seen = _listing(f"{kind} {name}" for kind, name in named)
    return False, f"no bucket matches buckets ({_listing(globs)}): {seen}"


def _object_count(match: Match, facts: JobFacts) -> tuple[bool, str]:
    bounds = match.object_count
    assert bounds is not None
    low, high = bounds.min, bounds.max
    if low is not None and high is not None:
        wanted = f"between {low:,} and {high:,}"
    elif low is not None:
        wanted = f"at least {low:,}"
    else:
        wanted = f"at most {high:,}"
    count = facts.object_count
    if count is None:
        return False, f"the object count is unknown (S3 counts the objects while it prepares the job); wanted {wanted}"
    held = (low is None or count >= low) and (high is None or count <= high)
    return held, f"{count:,} objects is {'' if held else 'not '}{wanted}"


def _tags(match: Match, facts: JobFacts) -> tuple[bool, str]:
    held = []
    for key, glob in (match.tags or {}).items():
        value = facts.tags.get(key)
        if value is None:
            return False, f"tag {key} is not set" + ("" if facts.tags else " (the job has no tags)")
        if not fnmatchcase(value, glob):
            return False, f"tag {key}={value} does not match {glob!r}"
        held.append(f"{key}={value}" + ("" if value == glob else f" (matches {glob!r})"))
    return True, f"tag{'s' if len(held) > 1 else ''} {', '.join(held)}"


def _requesters(match: Match, facts: JobFacts) -> tuple[bool, str]:
    globs = match.requesters or []
    if facts.requester is None:
        return False, REQUESTER_UNKNOWN
    glob = next((g for g in globs if fnmatchcase(facts.requester, g)), None)
    if glob is None:
        return False, f"requester {facts.requester} matches none of requesters ({_listing(globs)})"
    return True, f"requester {facts.requester} matches {glob!r}"


# In this order; requesters last, so that a rule skipped for an unknown requester met every other matcher.
_MATCHERS: tuple[tuple[Callable[[Match], bool], Matcher], ...] = (
    (lambda m: m.accounts is not None, _accounts),
    (lambda m: m.regions is not None, _regions),
    (lambda m: m.operations is not None, _operations),
    (lambda m: m.buckets is not None, _buckets),
    (lambda m: m.object_count is not None, _object_count),
    (lambda m: m.tags is not None, _tags),
    (lambda m: m.requesters is not None, _requesters),
)
