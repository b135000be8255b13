"""RequestService under failures: every status change and every request is audited exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from approvals.adapters.store import DynamoRequestStore
from approvals.domain.requests import EventOutcome, RequestService
from approvals.models.job import JobRef
from approvals.models.records import AuditEventType as E
from sandbox.aws_local import LocalAws
from tests.fakes import FakeChat, FakeJobs, make_job

REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0002-abcdef")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
THROTTLED = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "PutItem")


class Notifier:
    def __init__(self, local_aws: LocalAws) -> None:
        self.aws = local_aws
        self.jobs, self.chat = FakeJobs(), FakeChat()
        self.jobs.add(make_job(REF.job_id))
        self.store = DynamoRequestStore(local_aws.client("dynamodb"), local_aws.requests_table, local_aws.audit_table)
        self.service = RequestService(
            jobs=self.jobs,
            store=self.store,
            chat=self.chat,
            channel="C0APPROVALS",
            clock=lambda: NOW,
            large_job_threshold=1_000_000,
        )

    def fail_next_audit_write(self) -> None:
        put_audit = self.store.put_audit
        failures = [THROTTLED]

        def flaky(record: Any, key: str | None = None) -> None:
            if failures:
                raise failures.pop()
            put_audit(record, key)

        self.store.put_audit = flaky  # type: ignore[method-assign]

    def trail(self) -> list[E]:
        return [r.event_type for r in self.store.history(REF)]

    def sort_keys(self, table: str) -> list[str]:
        items = self.aws.client("dynamodb").scan(TableName=table)["Items"]
        return sorted(item["sk"]["S"] for item in items)


@pytest.fixture
def notifier(local_aws: LocalAws) -> Notifier:
    return Notifier(local_aws)


def test_a_request_whose_audit_write_failed_is_audited_on_the_retry_without_a_second_post(notifier: Notifier) -> None:
    # given
    notifier.fail_next_audit_write()
    with pytest.raises(ClientError):
        notifier.service.on_job_event(REF)
    # when: EventBridge retries, twice
    retried = notifier.service.on_job_event(REF)
    notifier.service.on_job_event(REF)
    # then
    assert retried.outcome == EventOutcome.UNCHANGED  # the request is posted; only its record was missing
    assert len(notifier.chat.calls_to("chat.postMessage")) == 1
    assert notifier.trail() == [E.APPROVAL_REQUESTED]


def test_a_status_change_whose_audit_write_failed_is_audited_on_the_retry(notifier: Notifier) -> None:
    # given: a posted request, then the job is cancelled in the console
    notifier.service.on_job_event(REF)
    notifier.jobs.set_status(REF.job_id, "Cancelled", "Cancelled in the console")
    notifier.fail_next_audit_write()
    with pytest.raises(ClientError):
        notifier.service.on_job_event(REF)
    # when: EventBridge retries, twice
    retried = notifier.service.on_job_event(REF)
    again = notifier.service.on_job_event(REF)
    # then
    assert (retried.outcome, again.outcome) == (EventOutcome.STATUS_UPDATED, EventOutcome.UNCHANGED)
    assert notifier.trail() == [E.APPROVAL_REQUESTED, E.JOB_STATUS_CHANGED]
    replies = [c for c in notifier.chat.calls_to("chat.postMessage") if c["thread_ts"]]
    assert len(replies) == 2  # the failed attempt's reply, then the retry's: Slack has no idempotency key


def test_audit_records_land_in_the_audit_table_and_none_in_the_requests_table(notifier: Notifier) -> None:
    # given: a request posted, then the job cancelled in the console
    notifier.service.on_job_event(REF)
    notifier.jobs.set_status(REF.job_id, "Cancelled", "Cancelled in the console")
    # when
    notifier.service.on_job_event(REF)
    # then
    assert notifier.sort_keys(notifier.aws.requests_table) == ["REQUEST"]
    audit_keys = notifier.sort_keys(notifier.aws.audit_table)
    assert len(audit_keys) == 2
    assert all(key.startswith("AUDIT#") for key in audit_keys)
    assert notifier.trail() == [E.APPROVAL_REQUESTED, E.JOB_STATUS_CHANGED]
