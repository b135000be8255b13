"""IAM statements for S3 Batch Operations jobs, scoped to the job ARN pattern."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import nag

JOB_ARN_ACKNOWLEDGMENT = nag.acknowledgment(
    "IAM5[Resource::arn:<AWS::Partition>:s3:<AWS::Region>:<AWS::AccountId>:job/*]",
    "S3 Batch Operations job IDs are created at run time, so the policy names this account's job ARNs.",
)
LIST_JOBS_ACKNOWLEDGMENT = nag.acknowledgment(
    "IAM5[Resource::*]",
    "s3:ListJobs supports no resource-level permission, so it needs Resource '*' (as does X-Ray).",
)

# The notifier's role has both Resource "*" actions when the history lookup is on; CDK keeps one reason per
# finding and construct, so this one names both (and X-Ray).
LIST_JOBS_AND_LOOKUP_EVENTS_ACKNOWLEDGMENT = nag.acknowledgment(
    "IAM5[Resource::*]",
    "s3:ListJobs and cloudtrail:LookupEvents support no resource-level permission (the Service Authorization "
    "Reference lists no resource type for either), so they need Resource '*' (as does X-Ray).",
)


def job_arn_pattern(scope: Construct) -> str:
    """``arn:<partition>:s3:<region>:<account>:job/*`` for the stack's own account and region."""
    return Stack.of(scope).format_arn(
        service="s3", resource="job", resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )


def describe_job(scope: Construct) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=["s3:DescribeJob"], resources=[job_arn_pattern(scope)])


def get_job_tagging(scope: Construct) -> iam.PolicyStatement:
    """``s3:GetJobTagging`` on this account's job ARNs, as ``describe_job``: DescribeJob does not return a job's
    tags, and the approval policy's ``tags`` matcher needs them. Reading only; PutJobTagging and
    DeleteJobTagging are never granted."""
    return iam.PolicyStatement(actions=["s3:GetJobTagging"], resources=[job_arn_pattern(scope)])


def update_job_status(scope: Construct, job_tag: tuple[str, str] | None) -> iam.PolicyStatement:
    """``s3:UpdateJobStatus``, limited to jobs carrying ``job_tag`` (key, value) when one is set."""
    conditions = None
    if job_tag is not None:
        key, value = job_tag
        conditions = {"StringEquals": {f"aws:ResourceTag/{key}": value}}
    return iam.PolicyStatement(
        actions=["s3:UpdateJobStatus"], resources=[job_arn_pattern(scope)], conditions=conditions
    )


def list_jobs() -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=["s3:ListJobs"], resources=["*"])


def lookup_events() -> iam.PolicyStatement:
    """Read CloudTrail's event history (the CreateJob call of a job whose event has not arrived).

    LookupEvents takes no resource: it reads the account's management events in the caller's region, so the
    statement names Resource "*"; it grants reading the history only, never changing a trail.
    """
    return iam.PolicyStatement(actions=["cloudtrail:LookupEvents"], resources=["*"])
