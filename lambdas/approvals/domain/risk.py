"""What a person should think twice about before approving a job: short sentences, raw text.

The message puts ⚠️ in front of each and escapes them (bucket names and ARNs come from the job).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from approvals.domain.operations import (
    ARCHIVE_STORAGE_CLASSES,
    PUBLIC_CANNED_ACLS,
    UNKNOWN_OPERATION,
    bucket_name,
    describe_operation,
    format_count,
    format_utc,
    manifest_filters,
    operation_member,
    public_grants,
    report_enabled,
)
from approvals.models.job import Job


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _public(canned: object, grants: object) -> str | None:
    permissions = public_grants(grants)
    if canned in PUBLIC_CANNED_ACLS:
        return f"Makes every object readable outside your account (canned ACL {canned})."
    if permissions:
        return f"Grants {', '.join(sorted(set(permissions)))} to everyone or any AWS account: objects become public."
    return None


def _retention_lock(mode: object, until: object) -> str | None:
    when = f" until {format_utc(until)}" if until is not None else ""
    if mode == "COMPLIANCE":
        return (
            f"Sets COMPLIANCE retention{when}: nobody, not even the root user, can shorten it "
            "or delete these object versions before then."
        )
    if mode == "GOVERNANCE":
        return f"Sets GOVERNANCE retention{when}: only users with s3:BypassGovernanceRetention can undo it."
    return None


def _operation_warnings(name: str, params: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if name == "LambdaInvoke":
        function = params.get("FunctionArn") or "a Lambda function"
        out.append(f"Runs custom code ({function}) on every object: check what the function does.")
    elif name == "S3PutObjectCopy":
        if params.get("MetadataDirective") == "REPLACE":
            out.append("Replaces object metadata: headers and user metadata not listed are lost on the copies.")
        storage = params.get("StorageClass")
        if storage in ARCHIVE_STORAGE_CLASSES:
            out.append(f"Copies into {storage}: the copies must be restored before anyone can read them.")
        if "NewObjectTagging" in params:
            out.append("Sets new tags on the copies: the source objects' tags are not kept.")
        public = _public(params.get("CannedAccessControlList"), params.get("AccessControlGrants"))
        if public:
            out.append(public)
        lock = _retention_lock(params.get("ObjectLockMode"), params.get("ObjectLockRetainUntilDate"))
        if lock:
            out.append(lock.replace("Sets", "Copies get", 1))
        if params.get("ObjectLockLegalHoldStatus") == "ON":
            out.append("Copies get a legal hold: they cannot be deleted until it is removed.")
    elif name == "S3PutObjectAcl":
        policy = _dict(params.get("AccessControlPolicy"))
        public = _public(policy.get("CannedAccessControlList"), _dict(policy.get("AccessControlList")).get("Grants"))
        out.append(public or "Replaces each object's ACL: grants not listed are removed.")
    elif name == "S3PutObjectTagging":
        out.append("Replaces each object's whole tag set: tags not listed are removed.")
    elif name == "S3DeleteObjectTagging":
        out.append("Deletes every tag on every object: lifecycle rules, policies and cost reports using tags change.")
    elif name == "S3PutObjectRetention":
        retention = _dict(params.get("Retention"))
        lock = _retention_lock(retention.get("Mode"), retention.get("RetainUntilDate"))
        if lock:
            out.append(lock)
        elif retention.get("RetainUntilDate") is None:
            out.append("Removes Object Lock retention from every object: protected versions become deletable.")
        if params.get("BypassGovernanceRetention") is True:
            out.append("Bypasses GOVERNANCE retention already on the objects.")
    elif name == "S3PutObjectLegalHold":
        status = _dict(params.get("LegalHold")).get("Status")
        if status == "ON":
            out.append("Places a legal hold on every object: no version can be deleted until the hold is removed.")
        elif status == "OFF":
            out.append("Releases the legal hold on every object: protected versions become deletable.")
    elif name == "S3UpdateObjectEncryption":
        key = _dict(_dict(params.get("ObjectEncryption")).get("SSEKMS")).get("KMSKeyArn")
        if key:
            out.append(f"Re-encrypts every object with KMS key {key}: readers then need kms:Decrypt on it.")
    return out


def risk_warnings(job: Job, large_job_threshold: int) -> list[str]:
    """Short warnings about the job, most important first; empty when nothing stands out."""
    summary = describe_operation(job.operation)
    name, params = operation_member(job.operation)
    warnings: list[str] = []
    if summary.title == UNKNOWN_OPERATION:
        warnings.append(
            f"Unknown operation {summary.name}: this app cannot describe it, so check the job in the S3 console."
        )
    warnings += _operation_warnings(name, params)

    count = job.object_count
    if count is None:
        warnings.append("Object count unknown: S3 has not reported how many objects the job covers.")
    elif count >= large_job_threshold:
        warnings.append(
            f"Very large job: {format_count(count)} objects (this channel's threshold is "
            f"{format_count(large_job_threshold)})."
        )

    if manifest_filters(job) == []:
        source = _dict(_dict(job.manifest_generator).get("S3JobManifestGenerator")).get("SourceBucket")
        warnings.append(f"No filters: the job acts on every object in {bucket_name(source) or 'the bucket'}.")
    if not report_enabled(job):
        warnings.append("No completion report: there will be no record of which objects succeeded or failed.")
    return warnings
