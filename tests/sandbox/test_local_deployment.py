"""The sandbox's event path: EventBridge hands job events to Lambda, which runs the notifier asynchronously.

A notifier error is retried by Lambda (not by the rule), and an event it keeps failing on ends in the
notifier's on-failure destination; the rule's dead-letter queue only gets events Lambda did not accept.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from infra import constants as c
from sandbox.local import LocalDeployment


@pytest.fixture
def d() -> Iterator[LocalDeployment]:
    with LocalDeployment() as running:
        yield running


def posts(d: LocalDeployment, job_id: str) -> list[bool]:
    return [call.ok for call in d.slack.calls_to("chat.postMessage") if job_id in str(call.params)]


def test_a_notifier_error_is_retried_by_lambda_and_the_request_is_posted_once(d: LocalDeployment) -> None:
    # given
    d.slack.fail("chat.postMessage", "channel_not_found", times=1)
    job_id = d.create_job()
    # when
    d.advance_until(job_id, "Suspended")
    # then
    assert len(d.request_message(job_id).buttons()) == 2
    assert [call.ok for call in d.slack.calls_to("chat.postMessage")] == [False, True]
    assert not all(attempt.ok for attempt in d.notifier.attempts)
    assert d.notifier_failures == []
    assert d.event_dlq == []


def test_an_event_the_notifier_keeps_failing_on_goes_to_its_on_failure_destination(d: LocalDeployment) -> None:
    # given
    d.slack.fail("chat.postMessage", "channel_not_found", times=100)
    job_id = d.create_job()
    # when: settle waits for Lambda's retries too
    d.advance_until(job_id, "Suspended")
    # then
    assert d.notifier.idle()
    assert d.notifier_failures
    for record in d.notifier_failures:
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 1 + c.NOTIFIER_ASYNC_RETRY_ATTEMPTS
        assert record["requestPayload"]["detail"]["serviceEventDetails"]["jobId"] == job_id
        assert record["responseContext"]["functionError"] == "Unhandled"
    assert True not in posts(d, job_id)
    assert d.event_dlq == []  # EventBridge handed every event over: its retries and DLQ are not involved


def _job_of(event: dict[str, Any]) -> str:
    """The job a job event or a CreateJob API-call event names."""
    detail = event["detail"]
    return str((detail.get("serviceEventDetails") or detail.get("responseElements") or {})["jobId"])


def test_events_lambda_does_not_accept_go_to_the_rules_dead_letter_queue(d: LocalDeployment) -> None:
    # given
    d.notifier.stop()
    job_id = d.create_job()
    # when
    d.advance_until(job_id, "Suspended")
    # then
    assert {_job_of(event) for event in d.event_dlq} == {job_id}
    assert {event["detail-type"] for event in d.event_dlq} == {
        "AWS API Call via CloudTrail",
        "AWS Service Event via CloudTrail",
    }
    assert d.notifier_failures == []
    assert len(d.notifier) == 0


def test_the_functions_get_the_slack_team_the_lease_and_the_audit_table(d: LocalDeployment) -> None:
    # then
    assert os.environ[c.ENV_SLACK_TEAM_ID] == d.slack.team_id
    assert os.environ[c.ENV_DECISION_LEASE_SECONDS] == str(d.aws.timing.lease)
    assert os.environ[c.ENV_AUDIT_TABLE_NAME] == d.aws.audit_table
