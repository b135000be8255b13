"""SQS queues with the project's defaults: SQS-managed encryption and TLS-only access."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag

DEAD_LETTER_RETENTION = Duration.days(14)


def dead_letter_queue(scope: Construct, construct_id: str, *, used_by: str | None = None) -> sqs.Queue:
    """A queue that keeps failed messages or events for 14 days (the SQS maximum).

    ``used_by`` names a non-SQS source (an EventBridge target, a stream) this queue is the dead-letter
    queue of: cdk-nag's SQS3 only recognises SQS redrive, so that finding is acknowledged.
    """
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
    )
    if used_by is None:
        return queue
    nag.acknowledge(
        queue,
        nag.acknowledgment(
            "SQS3",
            f"This queue is itself the dead-letter queue of {used_by}; an alarm watches its depth.",
        ),
    )
    return queue
