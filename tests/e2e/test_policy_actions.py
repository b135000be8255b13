"""Rules that decide by themselves, over the wire: the sandbox policy (sandbox/policy.yaml) cancels a LambdaInvoke
job on a production bucket and confirms a small job on a scratch bucket, with no person clicking."""

from __future__ import annotations

import time
from typing import Any

from approvals.models.records import AuditEventType as E
from sandbox.local import ACCOUNT_ID, ALICE, CHANNEL, PEOPLE, LocalDeployment

SCRUB = {"LambdaInvoke": {"FunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:scrub"}}
DENY_REASON = "Cancelled by policy no-lambda-on-production: LambdaInvoke jobs may not run on production buckets."
APPROVE_REASON = "Approved by policy scratch-auto-approve: Small jobs on scratch buckets run without sign-off."


def events(d: LocalDeployment, job_id: str) -> list[E]:
    return [record.event_type for record in d.audit(job_id)]


def status_history(d: LocalDeployment, job_id: str) -> list[str]:
    """Every status the emulator announced for the job, in order."""
    return [
        event["detail"]["serviceEventDetails"]["status"]
        for event in list(d.jobs.emitted)
        if event["detail"].get("serviceEventDetails", {}).get("jobId") == job_id
    ]


def click_on_first_version(d: LocalDeployment, job_id: str, action_id: str, user: str) -> dict[str, Any]:
    """The block_actions payload Slack sends for a click on the request as it was first posted: what someone
    whose Slack client had not redrawn the message yet sends (the stand-in's own helper wants a live button)."""
    message = d.request_message(job_id)
    assert message.edits, "the request was posted first and decided after"
    first = message.edits[0]
    block = next(b for b in first["blocks"] if b.get("type") == "actions")
    button = next(e for e in block["elements"] if e.get("action_id") == action_id)
    person = next(p for p in PEOPLE if p.id == user)
    slack = d.slack
    return {
        "type": "block_actions",
        "user": {"id": user, "username": person.name, "name": person.name, "team_id": slack.team_id},
        "api_app_id": slack.app_id,
        "token": "verification-token-deprecated",
        "container": {"type": "message", "message_ts": message.ts, "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": slack.issue_trigger_id(user),
        "team": {"id": slack.team_id, "domain": slack.team_name},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": CHANNEL, "name": "s3-approvals"},
        "message": {**message.to_api(slack.team_id), "text": first["text"], "blocks": first["blocks"]},
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0STANDIN/1/standin",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block["block_id"],
                "text": button["text"],
                "value": button["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def described(d: LocalDeployment, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = d.s3control().describe_job(AccountId=ACCOUNT_ID, JobId=job_id)["Job"]
    return job


def test_a_lambda_job_on_a_production_bucket_is_cancelled_by_the_policy_at_once(d: LocalDeployment) -> None:
    # given
    updates = d.jobs.calls["UpdateJobStatus"]
    # when: the job reaches Suspended, and nobody clicks anything
    job_id = d.create_job(operation=SCRUB, manifest_bucket="acme-prod-events", object_count=48_000)
    d.advance_until(job_id, "Suspended")
    # then: S3 has it cancelled, by the rule, in one call
    job = described(d, job_id)
    assert job["Status"] == "Cancelled"
    assert job["StatusUpdateReason"] == DENY_REASON
    assert d.jobs.calls["UpdateJobStatus"] == updates + 1
    assert status_history(d, job_id)[-2:] == ["Suspended", "Cancelled"]
    # and the audit says the policy did it
    assert events(d, job_id) == [E.APPROVAL_REQUESTED, E.DECISION_TAKEN, E.JOB_STATUS_CHANGED]
    taken = d.audit(job_id)[1]
    assert (taken.origin, taken.action, taken.rule) == ("system:policy", "cancel", "no-lambda-on-production")
    assert taken.actor_id == "policy:no-lambda-on-production"
    assert taken.status_update_reason == DENY_REASON
    assert taken.approvers is None
    # and the message says so, with nothing left to click
    message = d.request_message(job_id)
    assert message.buttons() == []
    shown = str(message.blocks)
    assert "Cancelled by policy rule `no-lambda-on-production`" in shown
    assert "LambdaInvoke jobs may not run on production buckets." in shown
    assert "*By:*" not in shown  # no person decided
    assert "by policy rule no-lambda-on-production" in message.text


def test_a_late_click_on_a_job_the_policy_cancelled_is_told_the_policy_decided(d: LocalDeployment) -> None:
    # given: a stale message still showing the buttons to Alice
    updates = d.jobs.calls["UpdateJobStatus"]
    job_id = d.create_job(operation=SCRUB, manifest_bucket="acme-prod-events")
    d.advance_until(job_id, "Suspended")
    payload = click_on_first_version(d, job_id, "approve_job", ALICE.id)
    # when
    click = d.post_payload(payload)
    d.settle()
    # then
    assert click.status == 200
    assert d.jobs.calls["UpdateJobStatus"] == updates + 1
    assert d.jobs.job_status(job_id) == "Cancelled"
    told = [e.text for e in d.slack.ephemerals(ALICE.id) if job_id in e.text]
    assert told
    assert "already cancelled by policy rule `no-lambda-on-production`" in told[-1]
    refused = d.audit(job_id)[-1]
    assert (refused.event_type, refused.actor_id, refused.reason) == (E.DECISION_REFUSED, ALICE.id, "already decided")


def test_a_small_job_on_a_scratch_bucket_is_approved_by_the_policy(d: LocalDeployment) -> None:
    # given
    updates = d.jobs.calls["UpdateJobStatus"]
    # when
    job_id = d.create_job(object_count=500, manifest_bucket="acme-scratch-tmp")
    d.advance_until(job_id, "Suspended")
    # then: confirmed by the rule, and S3 runs it
    job = described(d, job_id)
    assert job["Status"] == "Ready"
    assert job["StatusUpdateReason"] == APPROVE_REASON
    assert d.jobs.calls["UpdateJobStatus"] == updates + 1
    assert status_history(d, job_id)[-2:] == ["Suspended", "Ready"]
    assert events(d, job_id) == [E.APPROVAL_REQUESTED, E.DECISION_TAKEN, E.JOB_STATUS_CHANGED]
    taken = d.audit(job_id)[1]
    assert (taken.origin, taken.action, taken.rule) == ("system:policy", "approve", "scratch-auto-approve")
    assert taken.actor_id == "policy:scratch-auto-approve"
    message = d.request_message(job_id)
    assert message.buttons() == []
    assert "Approved by policy rule `scratch-auto-approve`" in str(message.blocks)
    # and it runs to the end like any approved job
    d.advance_until(job_id, "Complete")
    assert d.jobs.job_status(job_id) == "Complete"


def test_a_scratch_job_above_the_rules_limit_still_needs_a_person(d: LocalDeployment) -> None:
    # given
    updates = d.jobs.calls["UpdateJobStatus"]
    # when: 10,001 objects, one more than scratch-auto-approve allows
    job_id = d.create_job(object_count=10_001, manifest_bucket="acme-scratch-tmp")
    d.advance_until(job_id, "Suspended")
    # then
    assert d.jobs.job_status(job_id) == "Suspended"
    assert d.jobs.calls["UpdateJobStatus"] == updates
    assert [b["action_id"] for b in d.request_message(job_id).buttons()] == ["approve_job", "cancel_job"]
    assert d.request_record(job_id).rule.name == "default"
    assert events(d, job_id) == [E.APPROVAL_REQUESTED]
