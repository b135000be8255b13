"""QueuedWork: the decider believes nothing on the queue until Slack's signature over the body checks out.

A real ``DecisionService`` over ``DynamoRequestStore`` on moto, the signature checked by the real
``SlackRequestVerifier`` with the signing secret from moto's Secrets Manager (Powertools' SecretsProvider),
and the fakes for S3 Batch Operations and Slack. Requests are signed as Slack signs them (tests.fakes.SlackSigner).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from approvals.adapters.secrets import SlackSecrets
from approvals.adapters.signature import SlackRequestVerifier
from approvals.adapters.store import DynamoRequestStore
from approvals.domain.authorisation import Approvers
from approvals.domain.decisions import DecisionService, Outcome
from approvals.domain.work import QueuedWork
from approvals.models.job import JobRef
from approvals.models.records import AuditEventType, AuditRecord, RequestState
from approvals.models.slack import APPROVE_ACTION_ID, CANCEL_ACTION_ID, ButtonValue
from sandbox.aws_local import LocalAws
from tests.fakes import FakeChat, FakeJobs, SlackSigner, make_job, post_request
from tests.helpers import load_event

SIGNING_SECRET = "test-signing-secret"  # what the local_aws fixture stores in Secrets Manager
TEAM = "T0APPROVE"  # the workspace of tests/events/slack_block_actions_approve.json
REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0004-abcdef")
CHANNEL, MESSAGE_TS = "C0APPROVALS", "1700000000.000100"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def click(action_id: str = APPROVE_ACTION_ID, user: str = "UALICE001", name: str = "alice") -> dict[str, Any]:
    """Slack's block_actions payload for a click on the approval message of REF."""
    payload = load_event("slack_block_actions_approve")
    payload["user"].update(id=user, username=name, name=name)
    payload["actions"][0].update(action_id=action_id, value=ButtonValue.from_ref(REF).encode())
    return payload


class Decider:
    """The decider's domain half, wired as ``wiring.decider()`` wires it, with fakes for S3 and Slack."""

    def __init__(self, local_aws: LocalAws) -> None:
        self.jobs = FakeJobs()
        self.jobs.add(make_job(REF.job_id))
        self.chat = FakeChat()
        self.store = DynamoRequestStore(local_aws.client("dynamodb"), local_aws.requests_table, local_aws.audit_table)
        self.slack = SlackSigner(SIGNING_SECRET)
        self.now = NOW
        secrets = SlackSecrets(SecretsProvider(boto3_client=local_aws.client("secretsmanager")), local_aws.secret_name)
        self.work = QueuedWork(
            decisions=DecisionService(
                jobs=self.jobs,
                store=self.store,
                chat=self.chat,
                approvers=Approvers(frozenset({"UALICE001"}), ()),
                members_of=self.chat.group_members,
                clock=lambda: self.now,
                large_job_threshold=1_000_000,
            ),
            verified=SlackRequestVerifier(secrets).verify_signed,
            teams=(TEAM,),
            clock=lambda: self.now,
        )
        post_request(self.store, REF, NOW, CHANNEL, MESSAGE_TS)

    def history(self) -> list[AuditRecord]:
        return self.store.history(REF)

    def state(self) -> RequestState:
        request = self.store.get(REF)
        assert request is not None
        return request.state


@pytest.fixture
def decider(local_aws: LocalAws) -> Decider:
    return Decider(local_aws)


def assert_refused_as_unverified(decider: Decider) -> AuditRecord:
    """Nothing happened but one decision_refused record under the job; nobody heard of it."""
    assert decider.jobs.calls_to("update_status") == []
    assert decider.chat.calls == [], "nobody is told of a decision that was never proven"
    assert decider.state() == RequestState.PENDING
    [record] = decider.history()
    assert (record.event_type, record.reason, record.job_id) == (
        AuditEventType.DECISION_REFUSED,
        "unverified",
        REF.job_id,
    )
    assert record.actor_id is None, "an unproven message names nobody as the person who acted"
    return record


# -- what is believed -------------------------------------------------------------------------------


def test_a_correctly_signed_approve_is_applied_and_recorded_as_coming_from_slack(decider: Decider) -> None:
    # given
    body = SlackSigner.form(click())
    message = decider.slack.queued("decide", body, at=NOW - timedelta(seconds=2), correlation_id="req-approve")
    # when
    result = decider.work.handle(message)
    # then
    assert result.outcome == Outcome.APPLIED
    assert decider.jobs.calls_to("update_status") == [("Ready", "Approved by alice (UALICE001) via Slack")]
    assert decider.state() == RequestState.APPROVED
    [taken] = decider.history()
    assert (taken.event_type, taken.actor_id, taken.origin, taken.request_id) == (
        AuditEventType.DECISION_TAKEN,
        "UALICE001",
        "slack",
        "req-approve",
    )


def test_the_callbacks_correlation_id_is_handed_on_once_the_message_is_read(decider: Decider) -> None:
    # given
    message = decider.slack.queued("decide", SlackSigner.form(click()), at=NOW, correlation_id="req-42")
    seen: list[str | None] = []
    # when
    decider.work.handle(message, on_read=seen.append)
    # then
    assert seen == ["req-42"]


def test_a_request_signed_59_minutes_ago_is_still_applied(decider: Decider) -> None:
    # given: a retry of a failing decision, well within the hour
    message = decider.slack.queued("decide", SlackSigner.form(click()), at=NOW - timedelta(minutes=59))
    # when
    result = decider.work.handle(message)
    # then
    assert result.outcome == Outcome.APPLIED


# -- what is refused as unverified ----------------------------------------------------------------------


def test_a_queue_message_in_the_old_decision_shape_decides_nothing_and_is_recorded_as_unverified(
    decider: Decider,
) -> None:
    # given: what anyone allowed to send to the queue could write by hand (the queue's old message shape)
    forged = json.dumps(
        {
            "kind": "decision",
            "job": REF.model_dump(),
            "decision": "approve",
            "actor": {"user_id": "UALICE001", "name": "Alice"},
            "decision_id": "x",
        }
    )
    # when
    result = decider.work.handle(forged)
    # then
    assert result.outcome == Outcome.UNVERIFIED
    assert decider.jobs.calls == [], "not even DescribeJob: nothing in the message is acted on"
    record = assert_refused_as_unverified(decider)
    assert record.detail is not None
    assert record.detail.startswith("not a signed Slack request")


def test_a_request_signed_with_another_secret_is_unverified(decider: Decider) -> None:
    # given
    message = SlackSigner("not-the-signing-secret").queued("decide", SlackSigner.form(click()), at=NOW)
    # when
    result = decider.work.handle(message)
    # then
    assert result.outcome == Outcome.UNVERIFIED
    record = assert_refused_as_unverified(decider)
    assert record.detail == "Slack's signature does not match the request"


def test_a_signed_body_altered_after_signing_is_unverified(decider: Decider) -> None:
    # given: Mallory's own click, signed by Slack, with Alice put in her place afterwards
    signed = SlackSigner.form(click(user="UMALLORY1", name="mallory"))
    altered = SlackSigner.form(click(user="UALICE001", name="alice"))
    message = decider.slack.queued("decide", signed, at=NOW, as_body=altered)
    # when
    result = decider.work.handle(message)
    # then
    assert result.outcome == Outcome.UNVERIFIED
    assert_refused_as_unverified(decider)


@pytest.mark.parametrize("age", [timedelta(hours=1, seconds=1), timedelta(days=3)], ids=["1h1s", "3d"])
def test_a_signed_request_older_than_an_hour_is_unverified(decider: Decider, age: timedelta) -> None:
    # given: a message redriven from the dead-letter queue, or replayed
    message = decider.slack.queued("decide", SlackSigner.form(click()), at=NOW - age)
    # when
    result = decider.work.handle(message)
    # then
    assert result.outcome == Outcome.UNVERIFIED
    record = assert_refused_as_unverified(decider)
    assert record.detail is not None
    assert "older than 1 h" in record.detail


def test_a_request_signed_more_than_five_minutes_in_the_future_is_unverified(decider: Decider) -> None:
    # given
    message = decider.slack.queued("decide", SlackSigner.form(click()), at=NOW + timedelta(minutes=6))
    # when
    result = decider.work.handle(message)
    # then
    assert result.outcome == Outcome.UNVERIFIED
    assert assert_refused_as_unverified(decider).detail == "signed in the future"


@pytest.mark.parametrize(
    ("intent", "action_id"),
    [
        ("decide", CANCEL_ACTION_ID),  # a Cancel click decides nothing: only the submitted form does
        ("modal_failed", APPROVE_ACTION_ID),  # no form is opened for an approval
        ("refuse_cancel", APPROVE_ACTION_ID),
        ("invalid", APPROVE_ACTION_ID),  # a body that can be acted on is not an invalid request
    ],
)
def test_an_intent_that_does_not_fit_the_signed_body_is_unverified(
    decider: Decider, intent: Any, action_id: str
) -> None:
    # given
    message = decider.slack.queued(intent, SlackSigner.form(click(action_id)), at=NOW)
    # when
    result = decider.work.handle(message)
    # then
    assert result.outcome == Outcome.UNVERIFIED
    record = assert_refused_as_unverified(decider)
    assert record.detail == f"the intent {intent!r} does not fit the signed request"


# -- a signed request that cannot be acted on -----------------------------------------------------------


def test_an_invalid_request_is_refused_with_the_reason_read_again_from_the_signed_body(decider: Decider) -> None:
    # given: the callback answered 400 to a click on a button this app never rendered
    body = SlackSigner.form(click("delete_bucket", user="UMALLORY1", name="mallory"))
    message = decider.slack.queued("invalid", body, at=NOW)
    # when
    result = decider.work.handle(message)
    # then
    assert result.outcome == Outcome.INVALID_REQUEST
    assert decider.jobs.calls == []
    [record] = decider.history()
    assert (record.event_type, record.actor_id, record.reason) == (
        AuditEventType.DECISION_REFUSED,
        "UMALLORY1",
        "invalid request: unknown action 'delete_bucket'",
    )
    [notice] = decider.chat.calls_to("chat.postEphemeral")
    assert (notice["channel"], notice["user"]) == (CHANNEL, "UMALLORY1")
    assert "delete_bucket" in notice["text"]
