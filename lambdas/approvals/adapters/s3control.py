"""S3 Control: DescribeJob, GetJobTagging, UpdateJobStatus and ListJobs, with S3's errors mapped to domain ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from approvals.domain.ports import JobNotFound, JobStatusConflict, JobsUnavailable, RequestedStatus
from approvals.domain.reasons import MAX_REASON
from approvals.models.job import Job, JobRef

REQUESTABLE = ("Ready", "Cancelled")
LIST_PAGE_SIZE = 1000


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3ControlJobs:
    """Implements ``domain.ports.Jobs``. ``client_for(account_id, region, job_id)`` gives the S3 Control client
    that acts in the job's own account and region (adapters/aws.py AccountClients; tests hand in a stub); it
    raises AccountNotServed or AccountUnreachable (both JobsUnavailable) where the hub cannot act."""

    def __init__(self, client_for: Callable[[str, str, str | None], Any]) -> None:
        self._client_for = client_for

    def _client(self, ref: JobRef) -> Any:
        return self._client_for(ref.account_id, ref.region, ref.job_id)

    def describe(self, ref: JobRef) -> Job:
        try:
            response = self._client(ref).describe_job(AccountId=ref.account_id, JobId=ref.job_id)
        except ClientError as exc:
            raise self._map(exc, ref) from exc
        except BotoCoreError as exc:
            raise JobsUnavailable(f"S3 Control did not answer: {exc}") from exc
        return Job.model_validate(response["Job"])

    def tags(self, ref: JobRef) -> dict[str, str]:
        """The job's tags as a key → value dict (GetJobTagging; DescribeJob does not return them).

        A job without tags gives ``{}``. Errors are mapped as ``describe`` maps them.
        """
        try:
            response = self._client(ref).get_job_tagging(AccountId=ref.account_id, JobId=ref.job_id)
        except ClientError as exc:
            raise self._map(exc, ref) from exc
        except BotoCoreError as exc:
            raise JobsUnavailable(f"S3 Control did not answer: {exc}") from exc
        return {str(tag["Key"]): str(tag.get("Value", "")) for tag in response.get("Tags") or []}

    def update_status(self, ref: JobRef, requested: RequestedStatus, reason: str) -> str:
        # botocore checks minimum lengths only: validate what S3 would refuse before sending.
        if requested not in REQUESTABLE:
            raise ValueError(f"RequestedJobStatus must be Ready or Cancelled, not {requested!r}")
        if not 1 <= len(reason) <= MAX_REASON:
            raise ValueError(f"StatusUpdateReason must be 1 to {MAX_REASON} characters")
        try:
            response = self._client(ref).update_job_status(
                AccountId=ref.account_id, JobId=ref.job_id, RequestedJobStatus=requested, StatusUpdateReason=reason
            )
        except ClientError as exc:
            raise self._map(exc, ref) from exc
        except BotoCoreError as exc:
            raise JobsUnavailable(f"S3 Control did not answer: {exc}") from exc
        return str(response["Status"])

    def list_awaiting(self, account_id: str, region: str, limit: int | None = None) -> list[str]:
        """IDs of Suspended jobs, at most ``limit`` (ListJobs has no paginator in botocore: loop on NextToken)."""
        client = self._client_for(account_id, region, None)
        ids: list[str] = []
        token: str | None = None
        try:
            while True:
                kwargs: dict[str, Any] = {
                    "AccountId": account_id,
                    "JobStatuses": ["Suspended"],
                    "MaxResults": LIST_PAGE_SIZE,
                }
                if token:
                    kwargs["NextToken"] = token
                page = client.list_jobs(**kwargs)
                ids.extend(job["JobId"] for job in page.get("Jobs", []) if job.get("Status") == "Suspended")
                token = page.get("NextToken")
                if not token or (limit is not None and len(ids) >= limit):
                    return ids if limit is None else ids[:limit]
        except ClientError as exc:
            raise JobsUnavailable(f"ListJobs failed: {_code(exc) or exc}") from exc
        except BotoCoreError as exc:
            raise JobsUnavailable(f"S3 Control did not answer: {exc}") from exc

    @staticmethod
    def _map(exc: ClientError, ref: JobRef) -> Exception:
        code = _code(exc)
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if code in {"NotFoundException", "NoSuchJob"}:
            return JobNotFound(f"job {ref.job_id} not found")
        if code == "JobStatusException":
            return JobStatusConflict(message or "job status does not allow this change")
        if (
            code
            in {
                "TooManyRequestsException",
                "InternalServiceException",
                "ServiceUnavailable",
                "SlowDown",
                "InternalError",
                "Throttling",
                "ThrottlingException",
            }
            or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
        ):
            return JobsUnavailable(f"S3 Control kept failing ({code})")
        # BadRequest, AccessDenied and anything unexpected: not retryable by waiting.
        return JobsUnavailable(f"S3 Control refused the call ({code}: {message})")
