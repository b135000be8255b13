"""What a job does, in words: every Operation union member, the manifest, the report and the risks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from approvals.domain.operations import (
    TITLES,
    UNKNOWN_OPERATION,
    describe_manifest,
    describe_operation,
    describe_report,
    format_bytes,
    format_utc,
    pairs,
    report_location,
)
from approvals.domain.risk import risk_warnings
from approvals.models.job import Job
from tests.helpers import EVENTS, load_event

THRESHOLD = 1_000_000
S3CONTROL = botocore.session.get_session().get_service_model("s3control")

# sample name → (union member, title, some key parameters a person reads)
SAMPLES: dict[str, tuple[str, str, dict[str, str]]] = {
    "lambda_invoke": (
        "LambdaInvoke",
        "Invoke a Lambda function on each object",
        {
            "Function": "arn:aws:lambda:eu-west-1:111122223333:function:redact-pii:live",
            "Invocation schema": "2.0",
            "User arguments": "mode=redact, dryRun=false",
        },
    ),
    "copy": (
        "S3PutObjectCopy",
        "Copy objects",
        {
            "Target bucket": "acme-log-archive",
            "Key prefix": "archive/2023/",
            "Storage class": "GLACIER",
            "Canned ACL": "bucket-owner-full-control",
            "Metadata": "Replace with new metadata",
            "Object Lock retention": "GOVERNANCE until 1 Jan 2026 00:00 UTC",
            "Checksum": "SHA256",
            "S3 Bucket Key": "Yes",
        },
    ),
    "acl": (
        "S3PutObjectAcl",
        "Replace object ACLs",
        {"Owner": "acme-media"},
    ),
    "tagging": ("S3PutObjectTagging", "Replace object tags", {"Tags": "env=prod, team=data"}),
    "delete_tagging": (
        "S3DeleteObjectTagging",
        "Delete all object tags",
        {"Effect": "Removes every tag from each object"},
    ),
    "restore": (
        "S3InitiateRestoreObject",
        "Restore archived objects",
        {"Keep restored copy for": "7 days", "Retrieval tier": "Bulk (cheapest, within 48 hours)"},
    ),
    "legal_hold": ("S3PutObjectLegalHold", "Set Object Lock legal hold", {"Legal hold": "ON"}),
    "retention": (
        "S3PutObjectRetention",
        "Set Object Lock retention",
        {"Mode": "COMPLIANCE", "Retain until": "31 Mar 2032 00:00 UTC", "Bypass governance retention": "No"},
    ),
    "replicate": (
        "S3ReplicateObject",
        "Replicate objects (Batch Replication)",
        {"Destination": "As set in the source bucket's replication rules"},
    ),
    "compute_checksum": (
        "S3ComputeObjectChecksum",
        "Compute object checksums",
        {"Algorithm": "CRC64NVME", "Checksum type": "Full object"},
    ),
    "update_encryption": (
        "S3UpdateObjectEncryption",
        "Change object encryption",
        {
            "Encryption": "SSE-KMS",
            "KMS key": "arn:aws:kms:eu-west-1:111122223333:key/9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0",
            "S3 Bucket Key": "Yes",
        },
    ),
}


def sample(name: str) -> Job:
    return Job.model_validate(load_event(f"describe_job_{name}")["Job"])


def with_operation(name: str, operation: dict[str, Any]) -> Job:
    return sample(name).model_copy(update={"operation": operation})


# -- coverage of botocore's model ---------------------------------------------------------------


def test_every_operation_in_botocores_model_has_a_title_and_a_sample() -> None:
    # given
    members = set(S3CONTROL.shape_for("JobOperation").members)
    # then
    assert members == set(TITLES)
    assert members == {member for member, _, _ in SAMPLES.values()}


@pytest.mark.parametrize("path", sorted(EVENTS.glob("describe_job_*.json")), ids=lambda p: p.stem)
def test_every_describe_job_sample_is_a_valid_describe_job_response(path: Any) -> None:
    # given
    shape = S3CONTROL.operation_model("DescribeJob").output_shape
    # when
    report = ParamValidator().validate(load_event(path.stem), shape)
    # then
    assert not report.has_errors(), report.generate_report()


# -- operations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_operation_is_described_in_words_with_its_key_parameters(name: str) -> None:
    # given
    member, title, expected = SAMPLES[name]
    # when
    summary = describe_operation(sample(name).operation)
    # then
    assert summary.name == member
    assert summary.title == title
    assert summary.known
    fields = pairs(summary.fields)
    for label, value in expected.items():
        assert fields.get(label) == value, (label, fields)


def test_a_copy_lists_encryption_metadata_and_grants() -> None:
    # when
    fields = pairs(describe_operation(sample("copy").operation).fields)
    # then
    assert fields["Encryption"] == (
        "SSE-KMS with key arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    assert fields["New metadata"] == "Content-Type=application/gzip, x-amz-meta-source=acme-logs"


def test_acl_grants_say_who_gets_what_in_words() -> None:
    # when
    fields = pairs(describe_operation(sample("acl").operation).fields)
    # then
    assert fields["Grants"].startswith("READ: Everyone (AllUsers, public), FULL_CONTROL: acme-media (")


def test_timestamps_read_the_same_whether_boto3_gave_a_datetime_or_a_string() -> None:
    # given: boto3 parses timestamps into datetimes; the JSON samples hold ISO strings
    as_string = {
        "S3PutObjectRetention": {"Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": "2030-06-01T12:00:00Z"}}
    }
    as_datetime = {
        "S3PutObjectRetention": {
            "Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": datetime(2030, 6, 1, 12, 0, tzinfo=UTC)}
        }
    }
    # when
    a, b = describe_operation(as_string), describe_operation(as_datetime)
    # then
    assert pairs(a.fields)["Retain until"] == pairs(b.fields)["Retain until"] == "1 Jun 2030 12:00 UTC"


def test_tagging_with_many_tags_says_how_many_there_are() -> None:
    # given
    tags = [{"Key": f"k{i}", "Value": f"v{i}"} for i in range(60)]
    # when
    fields = pairs(describe_operation({"S3PutObjectTagging": {"TagSet": tags}}).fields)
    # then
    assert fields["Tags"].startswith("60 tags: k0=v0, k1=v1")


def test_an_empty_tag_set_says_it_removes_all_tags() -> None:
    assert pairs(describe_operation({"S3PutObjectTagging": {"TagSet": []}}).fields) == {
        "Tags": "none (removes all tags)"
    }


def test_retention_without_mode_or_date_says_it_removes_retention() -> None:
    # when
    fields = pairs(describe_operation({"S3PutObjectRetention": {"Retention": {}}}).fields)
    # then
    assert fields["Effect"] == "Removes Object Lock retention from each object"


def test_lambda_invoke_without_schema_version_shows_the_default() -> None:
    # when
    fields = pairs(describe_operation({"LambdaInvoke": {"FunctionArn": "arn:aws:lambda:::function:f"}}).fields)
    # then
    assert fields["Invocation schema"] == "1.0 (default)"


@pytest.mark.parametrize(
    ("operation", "name", "parameters"),
    [
        ({"S3TeleportObjects": {"Destination": "moon", "Speed": 9}}, "S3TeleportObjects", "Destination, Speed"),
        ({}, "Unknown", "none"),
        (None, "Unknown", "none"),
        ({"S3FutureThing": None}, "Unknown", "none"),
        ({"S3FutureThing": "not a structure"}, "S3FutureThing", "none"),
    ],
)
def test_an_unknown_or_empty_operation_is_named_not_fatal(
    operation: dict[str, Any] | None, name: str, parameters: str
) -> None:
    # when
    summary = describe_operation(operation)
    # then
    assert summary.title == UNKNOWN_OPERATION
    assert summary.name == name
    assert pairs(summary.fields) == {"Parameters": parameters}


@pytest.mark.parametrize("member", sorted(TITLES))
def test_a_known_operation_with_odd_parameters_does_not_crash(member: str) -> None:
    # given: every parameter of the wrong type
    odd = {
        "TagSet": "x",
        "Retention": 5,
        "LegalHold": [],
        "UserArguments": "a",
        "AccessControlPolicy": 1,
        "AccessControlGrants": {"x": 1},
        "NewObjectMetadata": "m",
        "ObjectEncryption": [1],
        "NewObjectTagging": None,
        "ObjectLockEventHoldDuration": "d",
    }
    # when
    summary = describe_operation({member: odd})
    # then
    assert summary.title == TITLES[member]
    assert all(isinstance(label, str) and isinstance(value, str) for label, value in summary.fields)


# -- manifest and report ------------------------------------------------------------------------


def test_a_csv_manifest_shows_its_bucket_key_and_format() -> None:
    # when
    manifest = pairs(describe_manifest(sample("tagging")))
    # then
    assert manifest == {
        "Manifest bucket": "acme-batch-manifests",
        "Manifest key": "jobs/2025-03-14/objects.csv",
        "Format": "CSV list of objects",
        "Columns": "Bucket, Key",
    }


def test_a_generated_manifest_shows_the_source_bucket_and_every_filter() -> None:
    # when
    manifest = pairs(describe_manifest(sample("copy")))
    # then
    assert manifest == {
        "Source bucket": "acme-logs",
        "Bucket owner": "111122223333",
        "Key prefix": "logs/2023/",
        "Key suffix": ".gz",
        "Created before": "1 Jan 2024 00:00 UTC",
        "Larger than": "1 MiB (1,048,576 bytes)",
        "Storage class": "STANDARD or STANDARD_IA",
        "Generated manifest saved to": "acme-batch-manifests/generated",
    }


def test_a_generator_without_filters_says_it_takes_every_object() -> None:
    # given
    job = sample("replicate").model_copy(
        update={"manifest_generator": {"S3JobManifestGenerator": {"SourceBucket": "arn:aws:s3:::prod"}}}
    )
    # when
    manifest = pairs(describe_manifest(job))
    # then
    assert manifest == {"Source bucket": "prod", "Filters": "none: every object in the bucket"}


def test_a_job_without_manifest_says_so() -> None:
    # given
    job = sample("tagging").model_copy(update={"manifest": None})
    # then
    assert describe_manifest(job) == [("Manifest", "not given")]


def test_the_report_shows_bucket_prefix_and_scope_and_where_it_lands() -> None:
    # given
    job = sample("tagging")
    # then
    assert pairs(describe_report(job)) == {
        "Completion report": "On",
        "Report bucket": "acme-batch-reports",
        "Report prefix": "batch-reports",
        "Report scope": "Failed tasks only",
    }
    assert report_location(job) == "s3://acme-batch-reports/batch-reports/job-c0ffee00-1234-4abc-8def-001122334455/"


def test_a_disabled_report_is_off_and_has_no_location() -> None:
    # given
    job = sample("delete_tagging")
    # then
    assert describe_report(job) == [("Completion report", "Off")]
    assert report_location(job) is None


def test_times_and_sizes_read_well() -> None:
    assert format_utc(datetime(2025, 3, 14, 9, 30, 5, tzinfo=UTC)) == "14 Mar 2025 09:30:05 UTC"
    assert format_utc("2025-03-14T10:30:00+01:00") == "14 Mar 2025 09:30 UTC"
    assert format_utc("not a date") == "not a date"
    assert format_bytes(512) == "512 bytes"
    assert format_bytes(5 * 1024**3) == "5 GiB (5,368,709,120 bytes)"


# -- risk warnings ------------------------------------------------------------------------------

# sample → words each expected warning contains
EXPECTED_WARNINGS: dict[str, list[str]] = {
    "lambda_invoke": ["Runs custom code (arn:aws:lambda:eu-west-1:111122223333:function:redact-pii:live)"],
    "copy": ["Replaces object metadata", "Copies into GLACIER", "GOVERNANCE retention", "Very large job: 2,500,000"],
    "acl": ["Grants READ to everyone"],
    "tagging": ["Replaces each object's whole tag set"],
    "delete_tagging": ["Deletes every tag on every object", "No completion report"],
    "restore": [],
    "legal_hold": ["Places a legal hold on every object"],
    "retention": ["COMPLIANCE retention until 31 Mar 2032 00:00 UTC: nobody, not even the root user, can shorten it"],
    "replicate": [],
    "compute_checksum": [],
    "update_encryption": ["Re-encrypts every object with KMS key", "Object count unknown"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_each_sample_gets_the_warnings_a_person_should_see(name: str) -> None:
    # when
    warnings = risk_warnings(sample(name), THRESHOLD)
    # then
    assert len(warnings) == len(EXPECTED_WARNINGS[name]), warnings
    for words, warning in zip(EXPECTED_WARNINGS[name], warnings, strict=True):
        assert words in warning


def test_a_job_exactly_at_the_threshold_is_very_large_and_one_below_is_not() -> None:
    # given
    job = sample("restore")
    # then
    assert any("Very large job: 15,000 objects" in w for w in risk_warnings(job, 15_000))
    assert not any("Very large" in w for w in risk_warnings(job, 15_001))


def test_releasing_a_legal_hold_warns_that_versions_become_deletable() -> None:
    # given
    job = with_operation("legal_hold", {"S3PutObjectLegalHold": {"LegalHold": {"Status": "OFF"}}})
    # then
    assert risk_warnings(job, THRESHOLD) == [
        "Releases the legal hold on every object: protected versions become deletable."
    ]


def test_governance_retention_with_bypass_warns_twice() -> None:
    # given
    job = with_operation(
        "retention",
        {
            "S3PutObjectRetention": {
                "BypassGovernanceRetention": True,
                "Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": "2027-01-01T00:00:00Z"},
            }
        },
    )
    # when
    warnings = risk_warnings(job, THRESHOLD)
    # then
    assert warnings[0].startswith("Sets GOVERNANCE retention until 1 Jan 2027 00:00 UTC")
    assert warnings[1] == "Bypasses GOVERNANCE retention already on the objects."


def test_removing_retention_warns_that_versions_become_deletable() -> None:
    # given
    job = with_operation("retention", {"S3PutObjectRetention": {"BypassGovernanceRetention": True, "Retention": {}}})
    # then
    assert risk_warnings(job, THRESHOLD)[0].startswith("Removes Object Lock retention from every object")


@pytest.mark.parametrize(
    "copy",
    [
        {"TargetResource": "arn:aws:s3:::pub", "CannedAccessControlList": "public-read"},
        {
            "TargetResource": "arn:aws:s3:::pub",
            "AccessControlGrants": [
                {
                    "Grantee": {
                        "TypeIdentifier": "uri",
                        "Identifier": "http://acs.amazonaws.com/groups/global/AllUsers",
                    },
                    "Permission": "READ",
                }
            ],
        },
    ],
)
def test_a_copy_that_makes_objects_public_is_flagged(copy: dict[str, Any]) -> None:
    # given
    job = with_operation("copy", {"S3PutObjectCopy": copy})
    # when
    warnings = risk_warnings(job, THRESHOLD)
    # then
    assert any("public" in w or "outside your account" in w for w in warnings), warnings


def test_a_copy_into_deep_archive_warns_but_glacier_instant_retrieval_does_not() -> None:
    # given
    deep = with_operation("copy", {"S3PutObjectCopy": {"StorageClass": "DEEP_ARCHIVE"}})
    instant = with_operation("copy", {"S3PutObjectCopy": {"StorageClass": "GLACIER_IR"}})
    # then
    assert any("Copies into DEEP_ARCHIVE" in w for w in risk_warnings(deep, THRESHOLD))
    assert not any("Copies into" in w for w in risk_warnings(instant, THRESHOLD))


def test_a_generated_manifest_without_filters_warns_that_it_takes_the_whole_bucket() -> None:
    # given
    job = sample("replicate").model_copy(
        update={"manifest_generator": {"S3JobManifestGenerator": {"SourceBucket": "arn:aws:s3:::acme-prod"}}}
    )
    # then
    assert "No filters: the job acts on every object in acme-prod." in risk_warnings(job, THRESHOLD)


def test_an_unknown_operation_tells_people_to_check_the_console() -> None:
    # given
    job = with_operation("tagging", {"S3TeleportObjects": {}})
    # then
    assert risk_warnings(job, THRESHOLD)[0].startswith("Unknown operation S3TeleportObjects")
