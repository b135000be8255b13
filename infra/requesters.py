"""Who created a job: the optional CloudTrail trail that puts CreateJob calls on EventBridge, and the
notifier's permission to read CloudTrail's event history when the call's event has not arrived.

The job events carry S3 itself as the identity and DescribeJob has no creator, so the requester is known
only from the CreateJob management event. Two paths bring it, and both are kept:

- the CreateJob rule (``Notifier.create_job_calls_rule``), which receives events only where a trail with
  logging on records management events in this region: an organisation trail, one the account already
  has, or the one created here when the ``createTrail`` setting asks;
- the history lookup (``requesterLookup``, on by default): ``LookupEvents`` reads the last 90 days of the
  region's management events and needs no trail.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import nag, permissions
from infra.notifier import Notifier
from infra.settings import InfraSettings

# Overwritten or deleted log files stay recoverable this long (the bucket is versioned).
TRAIL_NONCURRENT_VERSIONS_KEPT = Duration.days(365)


class RequesterCapture(Construct):
    """The trail (only with ``createTrail``) and the history lookup grant (only with ``requesterLookup``)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings, notifier: Notifier) -> None:
        super().__init__(scope, construct_id)

        self.trail: cloudtrail.Trail | None = None
        self.trail_bucket: s3.Bucket | None = None
        if settings.create_trail:
            self.trail_bucket = self._trail_bucket()
            self.trail = cloudtrail.Trail(
                self,
                "Trail",
                bucket=self.trail_bucket,
                # CreateJob changes state, so CloudTrail records it as a write management event: a write-only
                # trail delivers it to EventBridge, without the read calls (Describe*, List*, and the
                # notifier's own ListJobs and LookupEvents every few minutes) that would multiply the volume.
                management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
                # S3 Control is a regional service: a trail of this region sees every CreateJob made here.
                is_multi_region_trail=False,
                # IAM, STS and other global services' calls are not needed to know who created a job.
                include_global_service_events=False,
                # Digest files prove the log files were neither changed nor deleted after delivery.
                enable_file_validation=True,
                send_to_cloud_watch_logs=False,
            )
            # No data events: the trail records management events only (none is added here).

        if settings.requester_lookup:
            role = notifier.function.role
            assert role is not None
            notifier.function.add_to_role_policy(permissions.lookup_events())
            # Replaces the notifier's ListJobs reason for the same finding with one naming both actions.
            nag.acknowledge(role, permissions.LIST_JOBS_AND_LOOKUP_EVENTS_ACKNOWLEDGMENT)

    def _trail_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "TrailBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireOldVersions",
                    noncurrent_version_expiration=TRAIL_NONCURRENT_VERSIONS_KEPT,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            # The log files are evidence of who created which job: they outlive the stack.
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            bucket,
            nag.acknowledgment(
                "S1",
                "This bucket holds only CloudTrail's log and digest files; the digests show any change to them, "
                "and an access log bucket would need its own.",
            ),
        )
        return bucket
