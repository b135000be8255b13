"""make redrive against SQS (moto in server mode): a dry run changes nothing; --apply moves each job event back
to the job events queue and deletes it from the dead-letter queue; schedule events stay out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from approvals import redrive as r
from sandbox.aws_local import LocalAws
from tests.helpers import load_event

JOB_EVENT = load_event("eventbridge_job_status_changed_suspended")
SCHEDULED = load_event("eventbridge_scheduled_reconcile")


def bodies(sqs: Any, url: str) -> list[Any]:
    found: dict[str, Any] = {}
    for _ in range(5):
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", []):
            found[m["MessageId"]] = json.loads(m["Body"]) if m["Body"].startswith("{") else m["Body"]
    return list(found.values())


@pytest.fixture
def queues(local_aws: LocalAws) -> tuple[Any, dict[str, str]]:
    sqs = local_aws.client("sqs")
    events_dlq = sqs.create_queue(QueueName=f"{local_aws.prefix}-event-dlq")["QueueUrl"]
    failures = sqs.create_queue(QueueName=f"{local_aws.prefix}-notifier-failures")["QueueUrl"]
    urls = {
        "JobEventsDeadLetterQueueUrl": local_aws.job_events_dlq_url,
        "EventDeadLetterQueueUrl": events_dlq,
        "NotifierFailuresQueueUrl": failures,
    }
    return sqs, urls


def test_a_dry_run_looks_and_changes_nothing(local_aws: LocalAws, queues: tuple[Any, dict[str, str]]) -> None:
    # given two job events in the job events dead-letter queue
    sqs, urls = queues
    for _ in range(2):
        sqs.send_message(QueueUrl=local_aws.job_events_dlq_url, MessageBody=json.dumps(JOB_EVENT))

    # when
    done = r.run(sqs, "job-events", urls.__getitem__, apply=False, limit=100)

    # then
    assert (done.looked, done.moved, done.left) == (2, 0, [])
    assert len(bodies(sqs, local_aws.job_events_dlq_url)) == 2
    assert bodies(sqs, local_aws.job_events_queue_url) == []


def test_apply_moves_job_events_back_to_the_job_events_queue(
    local_aws: LocalAws, queues: tuple[Any, dict[str, str]]
) -> None:
    # given
    sqs, urls = queues
    sqs.send_message(QueueUrl=local_aws.job_events_dlq_url, MessageBody=json.dumps(JOB_EVENT))

    # when
    done = r.run(sqs, "job-events", urls.__getitem__, apply=True, limit=100)

    # then: the very event, where the notifier takes it again, and the dead-letter queue empty
    assert done.moved == 1
    assert bodies(sqs, local_aws.job_events_queue_url) == [JOB_EVENT]
    assert bodies(sqs, local_aws.job_events_dlq_url) == []


def test_eventbridges_dead_letters_move_except_schedule_events(
    local_aws: LocalAws, queues: tuple[Any, dict[str, str]]
) -> None:
    # given a job event and a reconciliation EventBridge could not deliver, and a stray body
    sqs, urls = queues
    for body in (json.dumps(JOB_EVENT), json.dumps(SCHEDULED), "not json"):
        sqs.send_message(QueueUrl=urls["EventDeadLetterQueueUrl"], MessageBody=body)

    # when
    done = r.run(sqs, "events", urls.__getitem__, apply=True, limit=100)

    # then the job event moved; the others stay, said why
    assert done.moved == 1
    assert sorted(done.left) == ["a Scheduled Event: the next run does its work", "not JSON"]
    assert bodies(sqs, local_aws.job_events_queue_url) == [JOB_EVENT]
    assert sorted(map(str, bodies(sqs, urls["EventDeadLetterQueueUrl"]))) == sorted([str(SCHEDULED), "not json"])


def test_notifier_failures_are_looked_at_then_deleted_never_moved(
    local_aws: LocalAws, queues: tuple[Any, dict[str, str]]
) -> None:
    sqs, urls = queues
    record = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": SCHEDULED}
    sqs.send_message(QueueUrl=urls["NotifierFailuresQueueUrl"], MessageBody=json.dumps(record))

    looked = r.run(sqs, "notifier-failures", urls.__getitem__, apply=False, limit=100)
    drained = r.run(sqs, "notifier-failures", urls.__getitem__, apply=True, limit=100)

    assert (looked.looked, looked.deleted) == (1, 0)
    assert (drained.moved, drained.deleted) == (0, 1)
    assert bodies(sqs, urls["NotifierFailuresQueueUrl"]) == []
    assert bodies(sqs, local_aws.job_events_queue_url) == []


@pytest.mark.parametrize("queue", ["decisions", "audit"])
def test_decisions_and_audit_failures_are_not_redriven_and_say_why(
    queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert r.main([queue]) == 2
    assert "not redriven" in capsys.readouterr().err
