"""Drain a dead-letter queue after the cause is fixed: look first (the default), then move the messages back.

    make redrive QUEUE=job-events                look: what the job events dead-letter queue holds
    make redrive QUEUE=job-events APPLY=1        move each message back to the job events queue
    PYTHONPATH=lambdas python -m approvals.redrive job-events|events|notifier-failures|decisions|audit
                                                 [--apply] [--stack NAME] [--region R] [--limit N]

Queues, by the stack's outputs (--stack, default S3BatchApprovals):

- ``job-events`` (JobEventsDeadLetterQueueUrl): job events and CreateJob calls the notifier kept failing on.
  Moved back to the job events queue (the queue the dead-letter queue serves), where the notifier takes
  them again: it dedupes job events on their jobEventId, and recording a creator is idempotent.
- ``events`` (EventDeadLetterQueueUrl): events EventBridge could not put on the job events queue, or could
  not hand to the notifier. Job events and CreateJob calls are moved to the job events queue; schedule
  events (the reconciliation, the lifecycle tick) are left out: the next run does their work.
- ``notifier-failures`` (NotifierFailuresQueueUrl): schedule runs Lambda gave up on. Nothing to move: the
  next run starts over. ``--apply`` deletes them once looked at.
- ``decisions`` and ``audit`` are not redriven: the decider refuses a request Slack signed more than an hour
  ago (the person decides again: the reconciliation has reopened or finished the claim), and an audit
  writer failure names stream records, which the writer reads again only from the stream itself (24 hours).

A message is deleted from the dead-letter queue only after it was sent to its destination; a crash between
the two leaves a copy in both, which the notifier's deduplication absorbs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from approvals import __version__

SCHEDULED = ("Scheduled Event", "Lifecycle Tick")
OUTPUTS = {
    "job-events": "JobEventsDeadLetterQueueUrl",
    "events": "EventDeadLetterQueueUrl",
    "notifier-failures": "NotifierFailuresQueueUrl",
    "decisions": "DecisionsDeadLetterQueueUrl",
    "audit": "AuditDeadLetterQueueUrl",
}
NOT_REDRIVEN = {
    "decisions": "decisions are not redriven: the decider refuses a request Slack signed more than an hour ago. "
    "Ask the person to decide again (the reconciliation reopens or finishes any claim the decision left).",
    "audit": "audit writer failures are not redriven from here: each names stream records, which the writer can "
    "only read again from the table's stream (kept 24 hours). Fix the cause; the event source retries what "
    "the stream still holds.",
}


@dataclass
class Redrive:
    """What one pass found and did."""

    looked: int = 0
    moved: int = 0
    deleted: int = 0
    left: list[str] = field(default_factory=list)  # why each message not moved was left out


Verdict = Callable[[str], str | None]  # a message body -> None to move it, else why it stays out


def job_event_or_call(body: str) -> str | None:
    """Move job events and CreateJob calls; leave schedule events (superseded by the next run) out."""
    try:
        event = json.loads(body)
    except ValueError:
        return "not JSON"
    if not isinstance(event, dict):
        return "not a JSON object"
    kind = event.get("detail-type")
    if kind in SCHEDULED:
        return f"a {kind}: the next run does its work"
    if event.get("source") != "aws.s3":
        return f"not an S3 event (source {str(event.get('source'))[:40]!r})"
    return None


def nothing(_body: str) -> str:
    return "a schedule run Lambda gave up on: the next run starts over"


def redrive(
    sqs: Any,
    dead_letters: str,
    destination: str | None,
    verdict: Verdict,
    *,
    apply: bool,
    delete_left: bool = False,
    limit: int = 1000,
) -> Redrive:
    """One pass over ``dead_letters``: with ``apply``, each message ``verdict`` accepts is sent to
    ``destination`` and then deleted; with ``delete_left`` too, the ones it leaves out are deleted (after
    being reported). Without ``apply`` nothing changes: messages are looked at with a visibility timeout of 0."""
    done = Redrive()
    seen: set[str] = set()
    while done.looked < limit:
        messages = sqs.receive_message(
            QueueUrl=dead_letters,
            MaxNumberOfMessages=min(10, limit - done.looked),
            VisibilityTimeout=60 if apply else 0,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        for again in (m for m in messages if m["MessageId"] in seen and apply):  # one left out, received again
            sqs.change_message_visibility(
                QueueUrl=dead_letters, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=0
            )
        if not fresh:
            break
        for found in fresh:
            seen.add(found["MessageId"])
            done.looked += 1
            why = verdict(found["Body"])
            if why is not None:
                done.left.append(why)
                if apply and delete_left:
                    sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=found["ReceiptHandle"])
                    done.deleted += 1
                elif apply:  # left where it was, visible again at once for whoever looks next
                    sqs.change_message_visibility(
                        QueueUrl=dead_letters, ReceiptHandle=found["ReceiptHandle"], VisibilityTimeout=0
                    )
                continue
            if not apply:
                continue
            if destination is None:
                raise ValueError("no destination to move messages to")
            sqs.send_message(QueueUrl=destination, MessageBody=found["Body"])
            sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=found["ReceiptHandle"])
            done.moved += 1
    return done


def source_of(sqs: Any, dead_letters: str) -> str:
    """The one queue whose dead-letter queue this is."""
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dead_letters).get("queueUrls", [])
    if len(sources) != 1:
        raise SystemExit(f"expected one source queue for {dead_letters}, found {len(sources)}")
    return str(sources[0])


def _output(session: Any, stack: str, key: str) -> str:
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    for output in described.get("Outputs", []):
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    raise SystemExit(f"stack {stack} has no {key} output")


def run(sqs: Any, queue: str, urls: Callable[[str], str], *, apply: bool, limit: int) -> Redrive:
    """The redrive of one of the stack's queues, found through ``urls`` (output key -> queue URL)."""
    if queue in NOT_REDRIVEN:
        raise SystemExit(NOT_REDRIVEN[queue])
    dead_letters = urls(OUTPUTS[queue])
    if queue == "notifier-failures":
        return redrive(sqs, dead_letters, None, nothing, apply=apply, delete_left=True, limit=limit)
    job_events_queue = source_of(sqs, urls(OUTPUTS["job-events"]))
    return redrive(sqs, dead_letters, job_events_queue, job_event_or_call, apply=apply, limit=limit)


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(
        prog="python -m approvals.redrive", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"s3-batch-approvals {__version__}")
    parser.add_argument("queue", choices=sorted(OUTPUTS))
    parser.add_argument("--apply", action="store_true", help="move (or delete) the messages; default: only look")
    parser.add_argument("--stack", default="S3BatchApprovals")
    parser.add_argument("--region")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many messages in one pass")
    args = parser.parse_args(argv)
    if args.queue in NOT_REDRIVEN:
        print(NOT_REDRIVEN[args.queue], file=sys.stderr)
        return 2
    session = boto3.session.Session(region_name=args.region or os.environ.get("AWS_REGION"))
    done = run(
        session.client("sqs"),
        args.queue,
        lambda key: _output(session, args.stack, key),
        apply=args.apply,
        limit=args.limit,
    )
    report(args.queue, done, args.apply)
    return 0


def report(queue: str, done: Redrive, apply: bool) -> None:
    verb = "moved" if apply else "would move"
    print(f"{queue}: {done.looked} looked at; {verb} {done.moved if apply else done.looked - len(done.left)}")
    for why in sorted(set(done.left)):
        print(f"  left out ({done.left.count(why)}): {why}" + (" (deleted)" if apply and done.deleted else ""))
    if not apply and done.looked:
        print("  nothing changed: run again with --apply (make redrive … APPLY=1) once the cause is fixed")


if __name__ == "__main__":
    sys.exit(main())
