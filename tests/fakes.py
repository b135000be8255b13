"""Fakes for the services that cannot run here, behaving like them (errors included).

``FakeJobs`` keeps S3 Batch Operations' status rules; ``FakeChat`` records what Slack was asked.
Both record their calls so asserts read naturally (``len(fake)``, ``fake.calls_to(...)``).
``SlackSigner`` is Slack's side of request signing: it signs a body as Slack does (slack_sdk's own
``SignatureVerifier.generate_signature``), so tests queue requests exactly as the callback would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from approvals.domain.ports import ChatUnavailable, JobNotFound, JobStatusConflict, RequestStore
from approvals.models.job import TERMINAL_STATUSES, Job, JobRef
from approvals.models.policy import Rule
from approvals.models.records import ApprovalRequest, Requester, RequestState
from approvals.models.slack import Intent, SignedSlackRequest


def make_job(
    job_id: str,
    status: str = "Suspended",
    *,
    confirmation: bool = True,
    tasks: int = 1200,
    operation: dict[str, Any] | None = None,
    description: str = "Re-tag raw events",
) -> Job:
    return Job.model_validate(
        {
            "JobId": job_id,
            "JobArn": f"arn:aws:s3:us-east-1:123456789012:job/{job_id}",
            "Description": description,
            "ConfirmationRequired": confirmation,
            "Status": status,
            "Priority": 10,
            "RoleArn": "arn:aws:iam::123456789012:role/batch-ops",
            "Operation": operation or {"S3PutObjectTagging": {"TagSet": [{"Key": "tier", "Value": "cold"}]}},
            "Manifest": {
                "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                "Location": {"ObjectArn": "arn:aws:s3:::manifests/raw.csv", "ETag": "abc"},
            },
            "Report": {"Enabled": False},
            "ProgressSummary": {"TotalNumberOfTasks": tasks, "NumberOfTasksSucceeded": 0, "NumberOfTasksFailed": 0},
            "CreationTime": datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
        }
    )


def post_request(
    store: RequestStore,
    ref: JobRef,
    now: datetime,
    channel: str = "C0APPROVALS",
    ts: str = "1700000000.000100",
    *,
    rule: Rule | None = None,
    requester: Requester | None = None,
    requested_at: datetime | None = None,
) -> None:
    """A pending approval request for ``ref``, as the notifier leaves it once its message is posted (with
    the policy's ``rule`` and the job's ``requester`` when given; requested 5 minutes before ``now``)."""
    request = ApprovalRequest(
        job=ref,
        state=RequestState.POSTING,
        requested_at=requested_at or now - timedelta(minutes=5),
        operation="S3PutObjectTagging",
        object_count=1200,
        job_status="Suspended",
        rule=rule,
        requester=requester,
    )
    assert store.claim_posting(request, now, 300)
    store.mark_posted(ref, channel, ts)


class FakeJobs:
    """S3 Control's job rules: Ready only from Suspended, Cancelled from any non-terminal status."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.job_tags: dict[str, dict[str, str]] = {}  # job ID -> its tags (GetJobTagging)
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.failures: dict[str, list[Exception]] = {}
        self._lock = threading.Lock()

    def add(self, job: Job) -> Job:
        self.jobs[job.job_id] = job
        return job

    def fail_next(self, operation: str, *errors: Exception) -> None:
        self.failures.setdefault(operation, []).extend(errors)

    def calls_to(self, operation: str) -> list[tuple[Any, ...]]:
        return [args for op, _, args in self.calls if op == operation]

    def __len__(self) -> int:
        return len(self.calls)

    def _maybe_fail(self, operation: str) -> None:
        pending = self.failures.get(operation)
        if pending:
            raise pending.pop(0)

    def describe(self, ref: JobRef) -> Job:
        with self._lock:
            self.calls.append(("describe", ref.job_id, ()))
            self._maybe_fail("describe")
            if ref.job_id not in self.jobs:
                raise JobNotFound(ref.job_id)
            job = self.jobs[ref.job_id]
        return job

    def update_status(self, ref: JobRef, requested: str, reason: str) -> str:
        with self._lock:
            self.calls.append(("update_status", ref.job_id, (requested, reason)))
            self._maybe_fail("update_status")
            job = self.jobs.get(ref.job_id)
            if job is None:
                raise JobNotFound(ref.job_id)
            if requested == "Ready":
                if job.status != "Suspended":
                    raise JobStatusConflict(f"job is {job.status}")
                new = "Ready"
            elif requested == "Cancelled":
                if job.status in TERMINAL_STATUSES:
                    raise JobStatusConflict(f"job is {job.status}")
                new = "Cancelling" if job.status in {"Active", "Pausing", "Paused"} else "Cancelled"
            else:
                raise ValueError(requested)
            self.jobs[ref.job_id] = job.model_copy(update={"status": new, "status_update_reason": reason})
            return new

    def set_status(self, job_id: str, status: str, reason: str | None = None) -> None:
        self.jobs[job_id] = self.jobs[job_id].model_copy(update={"status": status, "status_update_reason": reason})

    def list_awaiting(self, account_id: str, region: str, limit: int | None = None) -> list[str]:
        self.calls.append(("list_awaiting", account_id, (region,)))
        found = [j.job_id for j in self.jobs.values() if j.status == "Suspended"]
        return found if limit is None else found[:limit]

    def set_tags(self, job_id: str, tags: dict[str, str]) -> None:
        """The job's tags, as PutJobTagging would set them (the whole set is replaced)."""
        self.job_tags[job_id] = dict(tags)

    def tags(self, ref: JobRef) -> dict[str, str]:
        with self._lock:
            self.calls.append(("tags", ref.job_id, ()))
            self._maybe_fail("tags")
            if ref.job_id not in self.jobs:
                raise JobNotFound(ref.job_id)
            return dict(self.job_tags.get(ref.job_id, {}))


class FakeChat:
    """Slack's chat and user group calls, recorded. ``fail_next`` makes a method raise like Slack would."""

    def __init__(self, groups: dict[str, set[str]] | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.groups = {k: frozenset(v) for k, v in (groups or {}).items()}
        self.names: dict[str, str] = {}
        self.emails: dict[str, str] = {}  # email -> Slack user ID, for users.lookupByEmail
        self.posted: list[tuple[str, str, dict[str, Any] | None, str | None]] = []  # (channel, ts, metadata, thread)
        self._clock = clock
        self.failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ts = 1700000000.0

    def __len__(self) -> int:
        return len(self.calls)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def fail_next(self, method: str, times: int = 1) -> None:
        self.failures[method] = self.failures.get(method, 0) + times

    def _record(self, method: str, **params: Any) -> None:
        with self._lock:
            if self.failures.get(method):
                self.failures[method] -= 1
                raise ChatUnavailable(f"Slack {method} failed: ratelimited")
            self.calls.append((method, params))

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        metadata: dict[str, Any] | None,
        thread_ts: str | None = None,
    ) -> str:
        self._record(
            "chat.postMessage", channel=channel, text=text, blocks=blocks, metadata=metadata, thread_ts=thread_ts
        )
        with self._lock:
            # ts is Slack's clock: the fake's clock when it has one (never going backwards), else a counter.
            now = self._clock().timestamp() if self._clock else 0.0
            self._ts = max(self._ts + 0.000001, now)
            ts = f"{self._ts:.6f}"
            self.posted.append((channel, ts, metadata, thread_ts))
            return ts

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self._record("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

    def ephemeral(self, channel: str, user_id: str, text: str) -> None:
        self._record("chat.postEphemeral", channel=channel, user=user_id, text=text)

    def open_modal(self, trigger_id: str, view: dict[str, Any]) -> None:
        self._record("views.open", trigger_id=trigger_id, view=view)

    def group_members(self, group_id: str) -> frozenset[str]:
        self._record("usergroups.users.list", usergroup=group_id)
        if group_id not in self.groups:
            raise ChatUnavailable("Slack usergroups.users.list failed: no_such_subteam")
        return self.groups[group_id]

    def cached_group_members(self, group_id: str) -> frozenset[str] | None:
        return None

    def display_name(self, user_id: str) -> str | None:
        self._record("users.info", user=user_id)
        return self.names.get(user_id)

    def user_by_email(self, email: str) -> str | None:
        self._record("users.lookupByEmail", email=email)
        return self.emails.get(email)

    def find_own_message(self, channel: str, since: datetime, metadata: dict[str, Any]) -> str | None:
        self._record("conversations.history", channel=channel, oldest=since.timestamp())
        wanted = metadata.get("event_payload") or {}
        with self._lock:
            for posted_in, ts, meta, thread_ts in reversed(self.posted):  # newest first, as Slack answers
                if posted_in != channel or thread_ts is not None or float(ts) < since.timestamp() or not meta:
                    continue
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == metadata.get("event_type") and all(
                    payload.get(k) == v for k, v in wanted.items()
                ):
                    return ts
        return None


class SlackSigner:
    """Signs interaction bodies with a signing secret, as Slack does, and queues them as the callback does."""

    def __init__(self, signing_secret: str) -> None:
        self.signing_secret = signing_secret

    @staticmethod
    def form(payload: dict[str, Any]) -> str:
        """The body Slack posts for an interaction: ``payload=<json>``, form-encoded."""
        return urlencode({"payload": json.dumps(payload)})

    def signature(self, body: str, at: datetime) -> tuple[str, str]:
        timestamp = str(int(at.timestamp()))
        signature = SignatureVerifier(self.signing_secret).generate_signature(timestamp=timestamp, body=body)
        assert signature is not None
        return timestamp, signature

    def queued(
        self,
        intent: Intent,
        body: str,
        at: datetime,
        correlation_id: str | None = "req-0001",
        as_body: str | None = None,
    ) -> str:
        """The decisions queue's message for ``body`` signed at ``at``; ``as_body`` swaps the body after signing."""
        timestamp, signature = self.signature(body, at)
        work = SignedSlackRequest(
            intent=intent,
            body=body if as_body is None else as_body,
            timestamp=timestamp,
            signature=signature,
            correlation_id=correlation_id,
        )
        return work.model_dump_json()


__all__ = ["FakeChat", "FakeJobs", "SlackSigner", "make_job", "post_request"]


def slash_command_body(user: str, team: str, hook: str, **overrides: str) -> str:
    """The form Slack POSTs for ``/s3-approvals pending`` typed by ``user`` of ``team``, answered at ``hook``
    (any field as ``overrides`` say)."""
    form = {
        "command": "/s3-approvals",
        "text": "pending",
        "user_id": user,
        "user_name": "alice",
        "team_id": team,
        "channel_id": "C0APPROVALS",
        "response_url": hook,
        "trigger_id": "1.2.abc",
        **overrides,
    }
    return urlencode(form)
