"""The sandbox's event path: EventBridge puts job events on the job events queue, which the notifier drains.

A notifier error returns the event to the queue (the rule is not involved), and an event it keeps failing
on ends, after the queue's maximum receives, in the queue's dead-letter queue; the rule's dead-letter
queue only gets events the queue did not take.
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


def test_a_notifier_error_is_retried_by_the_queue_and_the_request_is_posted_once(d: LocalDeployment) -> None:
    # given
    d.slack.fail("chat.postMessage", "channel_not_found", times=1)
    job_id = d.create_job()
    # when
    d.advance_until(job_id, "Suspended")
    # then
    assert len(d.request_message(job_id).buttons()) == 2
    assert [call.ok for call in d.slack.calls_to("chat.postMessage")] == [False, True]
    assert d.notifier.failures, "the first delivery failed and came back"
    assert d.notifier_failures == []
    assert d.event_dlq == []


def test_an_event_the_notifier_keeps_failing_on_goes_to_the_queue_s_dead_letter_queue(d: LocalDeployment) -> None:
    # given
    d.slack.fail("chat.postMessage", "channel_not_found", times=100)
    job_id = d.create_job()
    # when: settle waits for the queue's redeliveries too
    d.advance_until(job_id, "Suspended", timeout=60)
    # then
    assert d.notifier.idle()
    dead = d.notifier_failures
    assert {_job_of(event) for event in dead} == {job_id}
    assert "AWS Service Event via CloudTrail" in {event["detail-type"] for event in dead}
    assert len(d.notifier.failures) >= c.JOB_EVENTS_QUEUE_MAX_RECEIVES
    assert True not in posts(d, job_id)
    assert d.event_dlq == []  # EventBridge put every event on the queue: its retries and DLQ are not involved


def _job_of(event: dict[str, Any]) -> str:
    """The job a job event or a CreateJob API-call event names."""
    detail = event["detail"]
    return str((detail.get("serviceEventDetails") or detail.get("responseElements") or {})["jobId"])


def test_events_the_queue_does_not_take_go_to_the_rules_dead_letter_queue(d: LocalDeployment) -> None:
    # given: the job events queue is gone
    d.aws.client("sqs").delete_queue(QueueUrl=d.aws.job_events_queue_url)
    job_id = d.create_job()
    # when
    d.advance_until(job_id, "Suspended")
    # then
    assert {_job_of(event) for event in d.event_dlq} == {job_id}
    assert {event["detail-type"] for event in d.event_dlq} == {
        "AWS API Call via CloudTrail",
        "AWS Service Event via CloudTrail",
    }
    assert not d.slack.calls_to("chat.postMessage")


def test_the_functions_get_the_slack_team_the_lease_and_the_audit_table(d: LocalDeployment) -> None:
    # then
    assert os.environ[c.ENV_SLACK_TEAM_ID] == d.slack.team_id
    assert os.environ[c.ENV_DECISION_LEASE_SECONDS] == str(d.aws.timing.lease)
    assert os.environ[c.ENV_AUDIT_TABLE_NAME] == d.aws.audit_table
