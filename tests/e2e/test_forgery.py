"""Decisions that did not come from Slack are refused, over the wire: forged queue messages, altered
signed requests, replays and people from other workspaces."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlencode

from slack_sdk.signature import SignatureVerifier

from approvals.models.records import AuditEventType as E
from approvals.models.slack import SignedSlackRequest
from sandbox.local import ACCOUNT_ID, ALICE, CHANNEL, MALLORY, REGION, LocalDeployment


def refusals(d: LocalDeployment, job_id: str) -> list[tuple[str | None, str | None]]:
    return [(r.reason, r.detail) for r in d.audit(job_id) if r.event_type == E.DECISION_REFUSED]


def send(d: LocalDeployment, body: str) -> None:
    d.aws.client("sqs").send_message(QueueUrl=d.aws.queue_url, MessageBody=body)
    d.settle()


def signed_click(d: LocalDeployment, job_id: str, person_id: str, *, at: int | None = None) -> SignedSlackRequest:
    """A request as Slack would sign it for a click on the job's Approve button."""
    message = d.request_message(job_id)
    payload = d.slack.block_actions_payload(CHANNEL, message.ts, "approve_job", user=person_id)
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(at if at is not None else int(time.time()))
    signature = SignatureVerifier(d.signing_secret).generate_signature(timestamp=ts, body=body)
    return SignedSlackRequest(intent="decide", body=body, timestamp=ts, signature=signature)


def test_a_hand_written_decision_on_the_queue_does_not_approve_the_job(d: LocalDeployment, suspended_job: str) -> None:
    # given: the message shape the decider trusted before, naming an approver
    forged = {
        "kind": "decision",
        "job": {"account_id": ACCOUNT_ID, "region": REGION, "job_id": suspended_job},
        "decision": "approve",
        "actor": {"user_id": ALICE.id, "name": ALICE.name},
        "decision_id": f"{ALICE.id}:1700000000.000001",
        "channel": CHANNEL,
    }
    updates = d.jobs.calls["UpdateJobStatus"]
    # when
    send(d, json.dumps(forged))
    # then
    assert d.jobs.job_status(suspended_job) == "Suspended"
    assert d.jobs.calls["UpdateJobStatus"] == updates
    [(reason, detail)] = refusals(d, suspended_job)
    assert reason == "unverified"
    assert detail is not None
    assert "not a signed Slack request" in detail
    assert E.DECISION_TAKEN not in [r.event_type for r in d.audit(suspended_job)]


def test_a_signed_click_whose_person_was_swapped_after_signing_is_refused(
    d: LocalDeployment, suspended_job: str
) -> None:
    # given: Mallory's own signed click, with Alice's ID written into the body afterwards
    genuine = signed_click(d, suspended_job, MALLORY.id)
    payload = json.loads(parse_qs(genuine.body)["payload"][0])
    payload["user"]["id"] = ALICE.id
    altered = genuine.model_copy(update={"body": urlencode({"payload": json.dumps(payload)})})
    # when
    send(d, altered.model_dump_json())
    # then
    assert d.jobs.job_status(suspended_job) == "Suspended"
    assert refusals(d, suspended_job) == [("unverified", "Slack's signature does not match the request")]


def test_a_genuine_click_replayed_after_an_hour_is_refused(d: LocalDeployment, suspended_job: str) -> None:
    # given: Alice's click, signed by Slack two hours ago
    old = signed_click(d, suspended_job, ALICE.id, at=int(time.time()) - 2 * 3600)
    # when
    send(d, old.model_dump_json())
    # then
    assert d.jobs.job_status(suspended_job) == "Suspended"
    [(reason, detail)] = refusals(d, suspended_job)
    assert reason == "unverified"
    assert detail is not None
    assert "older than 1 h" in detail


def test_a_genuine_signed_click_on_the_queue_is_applied(d: LocalDeployment, suspended_job: str) -> None:
    # given: the control case, a request exactly as Slack signed it
    genuine = signed_click(d, suspended_job, ALICE.id)
    # when
    send(d, genuine.model_dump_json())
    # then
    assert d.jobs.job_status(suspended_job) == "Ready"
    taken = [r for r in d.audit(suspended_job) if r.event_type == E.DECISION_TAKEN]
    assert [(r.actor_id, r.origin) for r in taken] == [(ALICE.id, "slack")]


def test_a_click_from_another_workspace_is_refused_with_403_and_audited(d: LocalDeployment, suspended_job: str) -> None:
    # given: a person of a Slack Connect partner, clicking Approve in the shared channel
    message = d.request_message(suspended_job)
    payload = d.slack.block_actions_payload(CHANNEL, message.ts, "approve_job", user=ALICE.id)
    payload["user"]["team_id"] = "T0PARTNER"
    # when
    reply = d.post_payload(payload)
    d.settle()
    # then
    assert reply.status == 403
    assert d.jobs.job_status(suspended_job) == "Suspended"
    [(reason, _)] = refusals(d, suspended_job)
    assert reason is not None
    assert reason.startswith("invalid request: this app serves another Slack workspace")
