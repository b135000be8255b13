"""``make demo``: the whole approval loop on one machine, told step by step. Exits non-zero on failure."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
import time
import warnings
from datetime import timedelta
from typing import Any, TextIO

from sandbox.local import (
    ALICE,
    CHANNEL,
    GINA,
    MALLORY,
    ONCALL_CHANNEL,
    PRINCIPALS,
    SPOKE,
    SPOKE_ACCOUNT_ID,
    SPOKE_NAME,
    SPOKE_REGION,
    LocalDeployment,
)
from sandbox.slack import block_kit_builder_url


class DemoFailed(Exception):
    pass


class _QuietStream:
    """Drops the handlers' EMF metric lines from the terminal; everything else passes."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if text.startswith('{"_aws"'):
            return len(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def say(text: str = "") -> None:
    print(text, flush=True)


def step(number: int, title: str) -> None:
    say()
    say(f"━━ {number}. {title} " + "━" * max(0, 70 - len(title)))


def check(condition: bool, failure: str) -> None:
    if not condition:
        raise DemoFailed(failure)


def indent(text: str) -> str:
    return textwrap.indent(text, "   ")


def follow(d: LocalDeployment, job_id: str, statuses: list[str]) -> None:
    for status in statuses:
        d.jobs.advance_until(job_id, status)
        d.settle()
        say(f"   S3 job {job_id[:8]}… → {status}  (JobStatusChanged event → router → notifier)")


def run() -> None:
    started = time.monotonic()
    with LocalDeployment() as d:
        step(1, "Alice creates a job that needs confirmation")
        say(f"   stand-ins: S3 Control {d.s3.url} · Slack {d.slack.url} · API Gateway {d.callback_url}")
        say(f"              DynamoDB, Secrets Manager and SQS on moto {d.aws.url} · CloudTrail {d.cloudtrail.url}")
        say(f"   policy: {d.policy_file}")
        job = d.create_job(description="Re-tag last month's raw events as cold", object_count=48_000, principal="alice")
        d.settle()
        say(f"   CreateJob as {PRINCIPALS['alice']}")
        say(f"   → {job}  status New  (JobCreated event; the CreateJob API-call event says who created it)")
        follow(d, job, ["Preparing", "Suspended"])
        described = d.s3control().describe_job(AccountId="123456789012", JobId=job)["Job"]
        check(described["Status"] == "Suspended", f"job should wait in Suspended, is {described['Status']}")

        step(2, "The approval request lands in Slack")
        message = d.request_message(job)
        say(indent(d.slack.render_message(CHANNEL, message.ts)))
        link = block_kit_builder_url(message.blocks or [])
        handle, saved = tempfile.mkstemp(prefix="s3-batch-approvals-block-kit-", suffix=".url")
        with os.fdopen(handle, "w") as file:
            file.write(link + "\n")
        say(f"   Block Kit Builder: the whole link ({len(link)} characters, too long for a terminal) is in {saved}")
        check(len(message.buttons()) == 2, "the request should carry Approve and Cancel buttons")

        record = d.request_record(job)
        check(
            record.requester is not None and record.requester.slack_user_id == ALICE.id,
            "the request should know that Alice created the job",
        )
        say(f"   requester: {record.requester.principal_arn} → Slack {record.requester.slack_user_id} (by email)")

        step(3, "Alice may not approve her own job; Gina approves it")
        click = d.click(job, "approve_job", ALICE)
        say(f"   callback answered HTTP {click.status} in {click.seconds * 1000:.0f} ms (Slack allows 3 s)")
        check(click.status == 200, f"the approve click got HTTP {click.status}: {click.body}")
        d.settle()
        notes = d.slack.ephemerals(ALICE.id)
        check(bool(notes) and d.jobs.job_status(job) == "Suspended", "Alice's own approval should be refused")
        say(f"   Alice clicks Approve → ephemeral to Alice: {notes[-1].text}")
        click = d.click(job, "approve_job", GINA)
        check(click.status == 200, f"Gina's approve click got HTTP {click.status}: {click.body}")
        d.settle()
        status = d.jobs.job_status(job)
        reason = d.jobs.describe_job("123456789012", job).get("StatusUpdateReason")
        say("   Gina clicks Approve (signed click → API Gateway → callback → queue → decider)")
        say(f"   UpdateJobStatus → {status} · “{reason}”")
        check(status == "Ready", f"the approved job should be Ready, is {status}")
        follow(d, job, ["Active", "Complete"])
        say(indent(d.slack.render_message(CHANNEL, message.ts)))
        for reply in d.slack.thread(CHANNEL, message.ts):
            say(f"   ↳ thread: {reply.text}")
        check(not d.request_message(job).buttons(), "the decided message should have no buttons left")

        step(4, "A second job: Mallory is refused, Alice cancels with a reason")
        job2 = d.create_job(
            description="Copy finance exports to Glacier",
            object_count=2_500_000,
            operation={
                "S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::finance-archive", "StorageClass": "DEEP_ARCHIVE"}
            },
        )
        d.settle()
        follow(d, job2, ["Preparing", "Suspended"])
        refused = d.click(job2, "approve_job", MALLORY)
        d.settle()
        notes = d.slack.ephemerals(MALLORY.id)
        check(refused.status == 200 and bool(notes), "Mallory should be told she may not decide")
        say(f"   Mallory clicks Approve → ephemeral to Mallory: {notes[-1].text}")
        check(d.jobs.job_status(job2) == "Suspended", "a refused click must not change the job")
        opened = d.click(job2, "cancel_job", ALICE)
        check(opened.status == 200 and bool(d.slack.views()), "Cancel should open the reason modal")
        say(f"   Alice clicks Cancel → modal “{d.slack.views()[-1].title}” opened (views.open)")
        empty = d.submit_reason(ALICE, "   ")
        check(
            empty.status == 200 and (empty.json() or {}).get("response_action") == "errors",
            "an empty reason should be refused in the modal",
        )
        say(f"   an empty reason is refused in the modal: {empty.json()['errors']}")
        submitted = d.submit_reason(ALICE, "Manifest points at the wrong prefix")
        check(submitted.status == 200, f"the reason submission got HTTP {submitted.status}")
        d.settle()
        final = d.s3control().describe_job(AccountId="123456789012", JobId=job2)["Job"]
        say(f"   DescribeJob: Status {final['Status']} · StatusUpdateReason “{final.get('StatusUpdateReason')}”")
        check(final["Status"] == "Cancelled", f"the cancelled job should be Cancelled, is {final['Status']}")
        check(
            "Manifest points at the wrong prefix" in final.get("StatusUpdateReason", ""),
            "the reason should be recorded on the job",
        )
        say(indent(d.slack.render_message(CHANNEL, d.request_message(job2).ts)))

        step(5, "A large job needs two approvers: the message shows the progress")
        big = d.create_job(description="Restore the 2019 archive", object_count=1_200_000)
        d.settle()
        follow(d, big, ["Preparing", "Suspended"])
        d.click(big, "approve_job", ALICE)
        d.settle()
        progress = d.slack.render_message(CHANNEL, d.request_message(big).ts)
        check("1 of 2" in progress and d.jobs.job_status(big) == "Suspended", "one vote of two should not decide")
        say("   Alice approves → vote recorded, the message updated:")
        lines = progress.splitlines()
        first = next(i for i, line in enumerate(lines) if "Policy rule" in line)
        last = next(i for i, line in enumerate(lines) if "1 of 2" in line)
        say(indent("\n".join(lines[first : last + 2])))
        d.click(big, "approve_job", GINA)
        d.settle()
        reason = d.jobs.describe_job("123456789012", big).get("StatusUpdateReason") or ""
        check(d.jobs.job_status(big) == "Ready", "the second approval should confirm the job")
        check(ALICE.id in reason and GINA.id in reason, "the reason should name both approvers")
        say(f"   Gina approves → UpdateJobStatus Ready · “{reason}”")

        step(6, "A forbidden job is cancelled by the policy")
        forbidden = d.create_job(
            description="Scrub PII with a Lambda function",
            operation={"LambdaInvoke": {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:scrub"}},
            manifest_bucket="acme-prod-events",
        )
        d.settle()
        follow(d, forbidden, ["Preparing", "Suspended"])
        d.settle()
        denied = d.jobs.describe_job("123456789012", forbidden)
        check(denied["Status"] in ("Cancelling", "Cancelled"), f"the forbidden job should be cancelled: {denied}")
        say(f"   rule no-lambda-on-production → {denied['Status']} · “{denied.get('StatusUpdateReason')}”")
        check(not d.request_message(forbidden).buttons(), "a job the policy cancelled should show no buttons")

        step(7, "Nobody answers: reminded twice, escalated, and cancelled at its deadline")
        idle = d.create_job(description="Re-encrypt last year's access logs", object_count=5_000)
        d.settle()
        follow(d, idle, ["Preparing", "Suspended"])
        idle_message = d.request_message(idle)
        shown = d.slack.render_message(CHANNEL, idle_message.ts)
        check("Expires " in shown, "the request should show its deadline from the start")
        say("   " + next(line.strip() for line in shown.splitlines() if "Expires " in line))
        for by, what in (
            (timedelta(minutes=16), "15 minutes: the first reminder"),
            (timedelta(minutes=30), "45 minutes: the second (the gap doubles)"),
            (timedelta(hours=1), "1 h 45 min: the third, escalated to the on-call group and channel"),
            (timedelta(hours=23), "24 hours: the fourth went out at 3 h 45 min; then the deadline"),
        ):
            seen = len(d.slack.thread(CHANNEL, idle_message.ts))
            d.advance(by)
            say(f"   clock +{what} (python -m sandbox advance {_duration(by)})")
            for reply in d.slack.thread(CHANNEL, idle_message.ts)[seen:]:
                say(f"     ↳ thread: {reply.text}")
        replies = [r.text for r in d.slack.thread(CHANNEL, idle_message.ts) if r.ts != idle_message.ts]
        reminders = [t for t in replies if t.startswith(("Reminder", "Escalated"))]
        check(len(reminders) == 4, f"four reminders were due: {replies}")
        oncall = [m.text for m in d.slack.messages(ONCALL_CHANNEL)]
        check(len(oncall) == 2, f"the third and fourth reminders should reach the on-call channel: {oncall}")
        say(f"   on-call channel: {oncall[0]}")
        expired = d.jobs.describe_job("123456789012", idle)
        check(expired["Status"] in ("Cancelling", "Cancelled"), f"the expired job should be cancelled: {expired}")
        say(f"   UpdateJobStatus → {expired['Status']} · “{expired.get('StatusUpdateReason')}”")
        check(
            expired.get("StatusUpdateReason") == "Expired: no decision within 24 h (policy default)",
            "the expiry's reason should say so",
        )

        step(8, "An approver's queue: Gina's Home tab before and after she approves from it")
        queued = d.create_job(description="Tag the 2025 invoices as archived", object_count=3_000)
        d.settle()
        follow(d, queued, ["Preparing", "Suspended"])
        before = d.home(GINA)
        check(queued in before and "Waiting for you" in before, f"Gina's Home should list the job: {before}")
        say(indent(_section(before, "Waiting for you")))
        clicked = d.click_home(queued, "approve_job", GINA)
        check(clicked.status == 200, f"the Home tab's Approve got HTTP {clicked.status}: {clicked.body}")
        d.settle()
        check(d.jobs.job_status(queued) == "Ready", "the Home tab's Approve should confirm the job")
        say("   Gina clicks Approve on her Home tab → the same verified path → UpdateJobStatus Ready")
        after = d.slack.render_home(GINA.id)
        check("Recently decided" in after, "the refreshed Home should show the decision")
        say(indent(_section(after, "Recently decided")))
        pending = d.command("/s3-approvals pending", MALLORY)
        say(f"   Mallory runs /s3-approvals pending → {pending[-1] if pending else '(no reply)'}")

        step(9, "A third job: a decision written straight onto the queue is refused")
        job3 = d.create_job(description="Delete the staging tags", object_count=900)
        d.settle()
        follow(d, job3, ["Preparing", "Suspended"])
        forged = {
            "kind": "decision",
            "job": {"account_id": "123456789012", "region": "us-east-1", "job_id": job3},
            "decision": "approve",
            "actor": {"user_id": ALICE.id, "name": ALICE.name},
            "decision_id": f"{ALICE.id}:1",
        }
        d.aws.client("sqs").send_message(QueueUrl=d.aws.queue_url, MessageBody=json.dumps(forged))
        d.settle()
        [refusal] = [r for r in d.audit(job3) if r.event_type.value == "decision_refused"] or [None]
        check(refusal is not None and refusal.reason == "unverified", "a forged decision should be refused")
        check(d.jobs.job_status(job3) == "Suspended", "a forged decision must not change the job")
        say("   sqs send-message with an approval “by Alice” (no Slack signature) → decider refuses it:")
        say(f"   decision_refused · reason {refusal.reason} · {refusal.detail}; the job stays Suspended")

        step(10, f"A job in another account ({SPOKE_NAME}, {SPOKE_ACCOUNT_ID}, {SPOKE_REGION}), from the same channel")
        spoke_job = d.create_job(description="Re-tag the analytics exports", object_count=2_400, account=SPOKE)
        d.settle()
        d.advance_until(spoke_job, "Suspended", account=SPOKE)
        spoke_message = d.request_message(spoke_job, account=SPOKE)
        check(SPOKE_NAME in json.dumps(spoke_message.blocks), "the request should name the spoke account")
        say(f"   the spoke's default bus → forward rule → the hub's bus → #{CHANNEL}: the request names the account")
        say(indent(d.slack.render_message(CHANNEL, spoke_message.ts)))
        click = d.click(spoke_job, "approve_job", ALICE, account=SPOKE)
        check(click.status == 200, f"the approve click got HTTP {click.status}: {click.body}")
        d.settle()
        status = d.jobs.job_status(spoke_job, account_id=SPOKE_ACCOUNT_ID)
        check(status == "Ready", f"the approved spoke job should be Ready, is {status}")
        assumed = [c for c in d.sts.calls if c.error is None and spoke_job in c.session_name]
        check(bool(assumed), "the hub should act in the spoke through its spoke role")
        say(f"   Alice approves → AssumeRole {assumed[-1].role_arn} ({assumed[-1].session_name})")
        say(f"   → UpdateJobStatus Ready in {SPOKE_ACCOUNT_ID} ({SPOKE_REGION})")
        d.advance_until(spoke_job, "Active", account=SPOKE)
        d.advance_until(spoke_job, "Complete", account=SPOKE)
        spoke_thread = [r.text.split(":")[0] for r in d.slack.thread(CHANNEL, spoke_message.ts)]
        check(spoke_thread[-1:] == ["Job complete"], f"the spoke job's thread should end complete: {spoke_thread}")
        spoke_records = d.audit(spoke_job, account=SPOKE)
        check(
            {(r.account_id, r.region) for r in spoke_records} == {(SPOKE_ACCOUNT_ID, SPOKE_REGION)},
            "the spoke job's audit should name its account and region",
        )

        step(11, "The audit trail (durable records in DynamoDB)")
        for job_id, account in [(j, None) for j in (job, job2, big, forbidden, idle, queued, job3)] + [
            (spoke_job, SPOKE)
        ]:
            records = d.audit(job_id, account=account)
            where = f" in account {records[0].account_id} ({records[0].region})" if records else ""
            say(f"   job {job_id}{where}")
            for record in records:
                who = f"{record.actor_name} ({record.actor_id})" if record.actor_id else (record.origin or "—")
                say(
                    f"     {record.time:%H:%M:%S} {record.event_type.value:<20} {who:<24} "
                    f"{record.status_before or '':>9} → {record.status_after or '':<9} {record.reason or ''}"
                )
        check(not d.event_dlq, f"{len(d.event_dlq)} events ended in the dead-letter queue")
        check(not d.notifier_failures, f"{len(d.notifier_failures)} events ended in the notifier's failure queue")
        check(not d.pump.failures, f"decisions failed: {d.pump.failures}")
    say()
    say(f"Demo passed in {time.monotonic() - started:.1f} s.")


def _section(rendered: str, title: str, lines: int = 6) -> str:
    """The lines of a rendered Home tab from ``title`` on (a few of them)."""
    shown = rendered.splitlines()
    start = next((i for i, line in enumerate(shown) if title in line), 0)
    return "\n".join(shown[start : start + lines])


def _duration(by: timedelta) -> str:
    hours, minutes = divmod(int(by.total_seconds() // 60), 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")


def quiet_terminal() -> None:
    """Keep the handlers' metric lines and Powertools' empty-metrics warning off the terminal."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if not isinstance(sys.stdout, _QuietStream):
        sys.stdout = _QuietStream(sys.stdout)  # type: ignore[assignment]


def main() -> int:
    quiet_terminal()
    try:
        run()
    except DemoFailed as failure:
        print(f"\nDEMO FAILED: {failure}", file=sys.stderr)
        return 1
    except Exception as error:  # a stand-in or handler broke: say which and stop
        print(f"\nDEMO FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
