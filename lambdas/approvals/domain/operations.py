"""What an S3 Batch Operations job does, in words: its operation, manifest and completion report.

DescribeJob's ``Operation`` is a union with one member set; ``Manifest``, ``ManifestGenerator`` and
``Report`` are structures. The ``Job`` model keeps them as boto3 returns them (PascalCase dicts,
timestamps as ``datetime``; test samples may hold ISO strings instead). Every function here reads
them defensively: a missing, empty or unexpected value gives a plainer summary, never an exception.

The values returned are raw text (bucket names, keys and tags come from whoever created the job):
the message escapes them before showing them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from approvals.models.job import Job

UNKNOWN_OPERATION = "Unknown operation"

# Grantee URIs of the predefined S3 groups.
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
PUBLIC_GRANTEES = frozenset({ALL_USERS, AUTHENTICATED_USERS})
PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
ARCHIVE_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})

TITLES: dict[str, str] = {
    "LambdaInvoke": "Invoke a Lambda function on each object",
    "S3PutObjectCopy": "Copy objects",
    "S3PutObjectAcl": "Replace object ACLs",
    "S3PutObjectTagging": "Replace object tags",
    "S3DeleteObjectTagging": "Delete all object tags",
    "S3InitiateRestoreObject": "Restore archived objects",
    "S3PutObjectLegalHold": "Set Object Lock legal hold",
    "S3PutObjectRetention": "Set Object Lock retention",
    "S3ReplicateObject": "Replicate objects (Batch Replication)",
    "S3ComputeObjectChecksum": "Compute object checksums",
    "S3UpdateObjectEncryption": "Change object encryption",
}

MANIFEST_FORMATS = {
    "S3BatchOperations_CSV_20180820": "CSV list of objects",
    "S3InventoryReport_CSV_20161130": "S3 Inventory report",
    "S3InventoryReport_CSV_20211130": "S3 Inventory report",
}
REPORT_SCOPES = {"AllTasks": "All tasks", "FailedTasksOnly": "Failed tasks only"}
CHECKSUM_TYPES = {"FULL_OBJECT": "Full object", "COMPOSITE": "Composite"}
GLACIER_TIERS = {"BULK": "Bulk (cheapest, within 48 hours)", "STANDARD": "Standard (within 12 hours)"}
MANY_ITEMS = 10


class OperationSummary(BaseModel):
    """One operation in words: the union member, a title and its key parameters (raw text)."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    fields: list[tuple[str, str]] = []

    @property
    def known(self) -> bool:
        return self.name in TITLES


# -- value formatting ----------------------------------------------------------------------------


def format_utc(value: object) -> str:
    """A timestamp as ``15 Jan 2025 10:42 UTC``; ISO strings are parsed, anything else shown as is."""
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(when, datetime):
        return "" if value is None else str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    text = f"{when.day} {when:%b %Y %H:%M}"
    if when.second:
        text += f":{when:%S}"
    return text + " UTC"


def format_count(value: int | None) -> str:
    """``1,234,567``, or ``unknown``."""
    return "unknown" if value is None else f"{value:,}"


def format_bytes(value: object) -> str:
    """``5 MiB (5,242,880 bytes)``; small or odd values as given."""
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    size = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            if unit == "bytes":
                return f"{value:,} bytes"
            return f"{size:,.1f}".rstrip("0").rstrip(".") + f" {unit} ({value:,} bytes)"
        size /= 1024
    return f"{value:,} bytes"  # pragma: no cover


def _when(value: object) -> str:
    return "" if value is None else format_utc(value)


def yes_no(value: object) -> str:
    return "Yes" if value is True else "No" if value is False else str(value)


def bucket_name(arn: object) -> str:
    """``arn:aws:s3:::my-bucket`` → ``my-bucket``; any other ARN (directory bucket, access point) as is."""
    text = "" if arn is None else str(arn)
    head, sep, tail = text.partition(":::")
    if sep and head.startswith("arn:") and head.endswith(":s3") and tail and "/" not in tail:
        return tail
    return text


def split_object_arn(arn: object) -> tuple[str, str] | None:
    """``arn:aws:s3:::bucket/path/key.csv`` → ``("bucket", "path/key.csv")``; None if it is not that."""
    text = "" if arn is None else str(arn)
    head, sep, tail = text.partition(":::")
    if not (sep and head.startswith("arn:") and head.endswith(":s3")):
        return None
    bucket, slash, key = tail.partition("/")
    if not (bucket and slash and key):
        return None
    return bucket, key


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, datetime):
        return format_utc(value)
    return str(value)


def _many(items: list[str], noun: str) -> str:
    """``a, b, c`` or, past ten items, ``60 tags: a, b, …`` so the reader sees how many there are."""
    joined = ", ".join(items)
    return f"{len(items)} {noun}: {joined}" if len(items) > MANY_ITEMS else joined


def tag_list(tags: object) -> list[str]:
    """``[{"Key": "env", "Value": "prod"}]`` → ``["env=prod"]``."""
    out = []
    for tag in _list(tags):
        tag = _dict(tag)
        key, value = _text(tag.get("Key")), _text(tag.get("Value"))
        out.append(f"{key}={value}" if value else key)
    return out


def grantee_label(grantee: object) -> str:
    """Who a grant is for, in words: everyone, any AWS account, or the ID/e-mail given."""
    grantee = _dict(grantee)
    identifier = _text(grantee.get("Identifier"))
    if identifier == ALL_USERS:
        return "Everyone (AllUsers, public)"
    if identifier == AUTHENTICATED_USERS:
        return "Any AWS account (AuthenticatedUsers)"
    if identifier == LOG_DELIVERY:
        return "S3 log delivery"
    name = _text(grantee.get("DisplayName"))
    kind = {"id": "canonical ID", "emailAddress": "e-mail", "uri": "group"}.get(
        _text(grantee.get("TypeIdentifier")), ""
    )
    label = identifier or name or "unnamed grantee"
    if name and identifier and name != identifier:
        label = f"{name} ({identifier})"
    return f"{label} [{kind}]" if kind else label


def grant_list(grants: object) -> list[str]:
    """``READ: Everyone (AllUsers, public)`` for each grant."""
    out = []
    for grant in _list(grants):
        grant = _dict(grant)
        out.append(f"{_text(grant.get('Permission')) or '?'}: {grantee_label(grant.get('Grantee'))}")
    return out


def public_grants(grants: object) -> list[str]:
    """The permissions a grant list gives to everyone or to any AWS account."""
    return [
        _text(_dict(grant).get("Permission")) or "?"
        for grant in _list(grants)
        if _text(_dict(_dict(grant).get("Grantee")).get("Identifier")) in PUBLIC_GRANTEES
    ]


def _hold_duration(duration: object) -> str:
    duration = _dict(duration)
    parts = []
    if duration.get("Years") is not None:
        parts.append(f"{duration['Years']} years")
    if duration.get("Days") is not None:
        parts.append(f"{duration['Days']} days")
    return " and ".join(parts)


class _Fields:
    """Collects (label, value) pairs, skipping empty values."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, label: str, value: object) -> None:
        text = value if isinstance(value, str) else _text(value)
        if text:
            self.items.append((label, text))


# -- operations ----------------------------------------------------------------------------------


def _lambda_invoke(p: Mapping[str, Any], f: _Fields) -> None:
    f.add("Function", p.get("FunctionArn"))
    f.add("Invocation schema", p.get("InvocationSchemaVersion") or "1.0 (default)")
    args = _dict(p.get("UserArguments"))
    f.add("User arguments", ", ".join(f"{k}={_text(v)}" for k, v in args.items()))


def _copy(p: Mapping[str, Any], f: _Fields) -> None:
    f.add("Target bucket", bucket_name(p.get("TargetResource")) or "not given")
    f.add("Key prefix", p.get("TargetKeyPrefix"))
    f.add("Storage class", p.get("StorageClass"))
    f.add("Canned ACL", p.get("CannedAccessControlList"))
    f.add("Access grants", _many(grant_list(p.get("AccessControlGrants")), "grants"))
    directive = _text(p.get("MetadataDirective"))
    f.add(
        "Metadata",
        {"REPLACE": "Replace with new metadata", "COPY": "Copy from source"}.get(directive, directive),
    )
    meta = _dict(p.get("NewObjectMetadata"))
    new_meta = [
        f"{label}={_text(meta[key])}"
        for key, label in (
            ("ContentType", "Content-Type"),
            ("CacheControl", "Cache-Control"),
            ("ContentDisposition", "Content-Disposition"),
            ("ContentEncoding", "Content-Encoding"),
            ("ContentLanguage", "Content-Language"),
        )
        if meta.get(key) is not None
    ]
    if meta.get("HttpExpiresDate") is not None:
        new_meta.append(f"Expires={format_utc(meta['HttpExpiresDate'])}")
    new_meta += [f"x-amz-meta-{k}={_text(v)}" for k, v in _dict(meta.get("UserMetadata")).items()]
    f.add("New metadata", _many(new_meta, "headers"))
    if "NewObjectTagging" in p:
        tags = tag_list(p.get("NewObjectTagging"))
        f.add("New tags", _many(tags, "tags") if tags else "none (copies get no tags)")
    encryption = _text(meta.get("SSEAlgorithm"))
    encryption = {"KMS": "SSE-KMS", "AES256": "SSE-S3 (AES256)"}.get(encryption, encryption)
    if p.get("SSEAwsKmsKeyId"):
        encryption = f"{encryption or 'SSE-KMS'} with key {_text(p['SSEAwsKmsKeyId'])}"
    f.add("Encryption", encryption)
    f.add("S3 Bucket Key", p.get("BucketKeyEnabled"))
    f.add("Checksum", p.get("ChecksumAlgorithm"))
    lock = _text(p.get("ObjectLockMode"))
    if lock and p.get("ObjectLockRetainUntilDate") is not None:
        lock = f"{lock} until {format_utc(p['ObjectLockRetainUntilDate'])}"
    f.add("Object Lock retention", lock)
    f.add("Legal hold", p.get("ObjectLockLegalHoldStatus"))
    hold = _text(p.get("ObjectLockEventHold"))
    duration = _hold_duration(p.get("ObjectLockEventHoldDuration"))
    f.add("Event hold", f"{hold} ({duration} after release)" if hold and duration else hold)
    f.add("Annotations", p.get("AnnotationDirective"))
    f.add("Only if modified since", _when(p.get("ModifiedSinceConstraint")))
    f.add("Only if unmodified since", _when(p.get("UnModifiedSinceConstraint")))
    f.add("Website redirect", p.get("RedirectLocation"))
    f.add("Requester pays", p.get("RequesterPays"))


def _acl(p: Mapping[str, Any], f: _Fields) -> None:
    policy = _dict(p.get("AccessControlPolicy"))
    f.add("Canned ACL", policy.get("CannedAccessControlList"))
    acl = _dict(policy.get("AccessControlList"))
    owner = _dict(acl.get("Owner"))
    f.add("Owner", owner.get("DisplayName") or owner.get("ID"))
    if "Grants" in acl:
        f.add("Grants", _many(grant_list(acl.get("Grants")), "grants") or "none")


def _tagging(p: Mapping[str, Any], f: _Fields) -> None:
    tags = tag_list(p.get("TagSet"))
    f.add("Tags", _many(tags, "tags") if tags else "none (removes all tags)")


def _delete_tagging(p: Mapping[str, Any], f: _Fields) -> None:
    f.add("Effect", "Removes every tag from each object")


def _restore(p: Mapping[str, Any], f: _Fields) -> None:
    days = p.get("ExpirationInDays")
    f.add("Keep restored copy for", f"{days} days" if days is not None else "")
    tier = _text(p.get("GlacierJobTier"))
    f.add("Retrieval tier", GLACIER_TIERS.get(tier, tier))


def _legal_hold(p: Mapping[str, Any], f: _Fields) -> None:
    f.add("Legal hold", _dict(p.get("LegalHold")).get("Status") or "not given")


def _retention(p: Mapping[str, Any], f: _Fields) -> None:
    retention = _dict(p.get("Retention"))
    if retention.get("Mode") is None and retention.get("RetainUntilDate") is None:
        f.add("Effect", "Removes Object Lock retention from each object")
    f.add("Mode", retention.get("Mode"))
    f.add("Retain until", _when(retention.get("RetainUntilDate")))
    f.add("Bypass governance retention", p.get("BypassGovernanceRetention", False))
    f.add("Event hold", retention.get("EventHold"))
    f.add("Event hold duration", _hold_duration(retention.get("EventHoldDuration")))


def _replicate(p: Mapping[str, Any], f: _Fields) -> None:
    f.add("Destination", "As set in the source bucket's replication rules")


def _checksum(p: Mapping[str, Any], f: _Fields) -> None:
    f.add("Algorithm", p.get("ChecksumAlgorithm"))
    kind = _text(p.get("ChecksumType"))
    f.add("Checksum type", CHECKSUM_TYPES.get(kind, kind))


def _encryption(p: Mapping[str, Any], f: _Fields) -> None:
    encryption = _dict(p.get("ObjectEncryption"))
    kms = _dict(encryption.get("SSEKMS"))
    if "SSEKMS" in encryption:
        f.add("Encryption", "SSE-KMS")
        f.add("KMS key", kms.get("KMSKeyArn"))
        f.add("S3 Bucket Key", kms.get("BucketKeyEnabled"))
    for other in encryption:
        if other != "SSEKMS":
            f.add("Encryption", other)


_DESCRIBERS = {
    "LambdaInvoke": _lambda_invoke,
    "S3PutObjectCopy": _copy,
    "S3PutObjectAcl": _acl,
    "S3PutObjectTagging": _tagging,
    "S3DeleteObjectTagging": _delete_tagging,
    "S3InitiateRestoreObject": _restore,
    "S3PutObjectLegalHold": _legal_hold,
    "S3PutObjectRetention": _retention,
    "S3ReplicateObject": _replicate,
    "S3ComputeObjectChecksum": _checksum,
    "S3UpdateObjectEncryption": _encryption,
}


def operation_member(operation: object) -> tuple[str, Mapping[str, Any]]:
    """The union member that is set, and its parameters. A known member wins over extra keys."""
    members = [key for key, value in _dict(operation).items() if value is not None]
    name = next((key for key in members if key in _DESCRIBERS), members[0] if members else "")
    return name, _dict(_dict(operation).get(name))


def describe_operation(operation: dict[str, Any] | None) -> OperationSummary:
    """The operation in words with its key parameters; an unknown or empty one is named, never fatal."""
    name, params = operation_member(operation)
    describe = _DESCRIBERS.get(name)
    fields = _Fields()
    if describe is None:
        fields.add("Parameters", ", ".join(str(key) for key in params) or "none")
        return OperationSummary(name=str(name or "Unknown"), title=UNKNOWN_OPERATION, fields=fields.items)
    describe(params, fields)
    return OperationSummary(name=name, title=TITLES[name], fields=fields.items)


# -- manifest and report -------------------------------------------------------------------------


def _filters(flt: Mapping[str, Any]) -> list[tuple[str, str]]:
    f = _Fields()
    keys = _dict(flt.get("KeyNameConstraint"))
    f.add("Key prefix", " or ".join(_text(v) for v in _list(keys.get("MatchAnyPrefix"))))
    f.add("Key suffix", " or ".join(_text(v) for v in _list(keys.get("MatchAnySuffix"))))
    f.add("Key contains", " or ".join(_text(v) for v in _list(keys.get("MatchAnySubstring"))))
    f.add("Created after", _when(flt.get("CreatedAfter")))
    f.add("Created before", _when(flt.get("CreatedBefore")))
    if flt.get("ObjectSizeGreaterThanBytes") is not None:
        f.add("Larger than", format_bytes(flt["ObjectSizeGreaterThanBytes"]))
    if flt.get("ObjectSizeLessThanBytes") is not None:
        f.add("Smaller than", format_bytes(flt["ObjectSizeLessThanBytes"]))
    f.add("Storage class", " or ".join(_text(v) for v in _list(flt.get("MatchAnyStorageClass"))))
    f.add("Replication status", " or ".join(_text(v) for v in _list(flt.get("ObjectReplicationStatuses"))))
    f.add("Eligible for replication", flt.get("EligibleForReplication"))
    encryption = []
    for item in _list(flt.get("MatchAnyObjectEncryption")):
        for kind, detail in _dict(item).items():
            key = _dict(detail).get("KmsKeyArn")
            encryption.append(f"{kind} ({_text(key)})" if key else str(kind))
    f.add("Encryption", " or ".join(encryption))
    return f.items


def manifest_filters(job: Job) -> list[tuple[str, str]] | None:
    """The generator's filters (empty: every object in the bucket), or None without a generator."""
    generator = _dict(_dict(job.manifest_generator).get("S3JobManifestGenerator"))
    if not generator:
        return None
    return _filters(_dict(generator.get("Filter")))


def describe_manifest(job: Job) -> list[tuple[str, str]]:
    """Which objects: the manifest's bucket, key and format, or the generator's bucket and filters."""
    f = _Fields()
    generator = _dict(_dict(job.manifest_generator).get("S3JobManifestGenerator"))
    if generator:
        f.add("Source bucket", bucket_name(generator.get("SourceBucket")) or "not given")
        f.add("Bucket owner", generator.get("ExpectedBucketOwner"))
        filters = _filters(_dict(generator.get("Filter")))
        f.items.extend(filters)
        if not filters:
            f.add("Filters", "none: every object in the bucket")
        output = _dict(generator.get("ManifestOutputLocation"))
        if generator.get("EnableManifestOutput") and output:
            where = bucket_name(output.get("Bucket"))
            if output.get("ManifestPrefix"):
                where = f"{where}/{_text(output['ManifestPrefix'])}"
            f.add("Generated manifest saved to", where)
        return f.items
    manifest = _dict(job.manifest)
    location = _dict(manifest.get("Location"))
    spec = _dict(manifest.get("Spec"))
    if not location and not spec:
        return [("Manifest", "not given")]
    parts = split_object_arn(location.get("ObjectArn"))
    if parts:
        f.add("Manifest bucket", parts[0])
        f.add("Manifest key", parts[1])
    else:
        f.add("Manifest object", location.get("ObjectArn"))
    f.add("Manifest version", location.get("ObjectVersionId"))
    fmt = _text(spec.get("Format"))
    f.add("Format", MANIFEST_FORMATS.get(fmt, fmt))
    f.add("Columns", ", ".join(_text(v) for v in _list(spec.get("Fields"))))
    return f.items


def report_enabled(job: Job) -> bool:
    return _dict(job.report).get("Enabled") is True


def report_location(job: Job) -> str | None:
    """Where S3 writes the completion report: ``s3://bucket/prefix/job-<id>/``, or None without one."""
    report = _dict(job.report)
    if not report_enabled(job) or not report.get("Bucket"):
        return None
    parts = [bucket_name(report["Bucket"])]
    prefix = _text(report.get("Prefix")).strip("/")
    if prefix:
        parts.append(prefix)
    parts.append(f"job-{job.job_id}")
    return "s3://" + "/".join(parts) + "/"


def describe_report(job: Job) -> list[tuple[str, str]]:
    """The completion report: on or off, bucket, prefix and scope."""
    report = _dict(job.report)
    if not report_enabled(job):
        return [("Completion report", "Off")]
    f = _Fields()
    f.add("Completion report", "On")
    f.add("Report bucket", bucket_name(report.get("Bucket")) or "not given")
    f.add("Report prefix", report.get("Prefix"))
    scope = _text(report.get("ReportScope"))
    f.add("Report scope", REPORT_SCOPES.get(scope, scope))
    return f.items


def pairs(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Fields as a dict (the first value of a label wins), handy for callers and tests."""
    out: dict[str, str] = {}
    for label, value in items:
        out.setdefault(label, value)
    return out
