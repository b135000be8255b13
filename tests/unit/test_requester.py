"""RequestService learns who created a job (the CreateJob event, else CloudTrail's history), puts it and the
policy's rule on the request, shows it, and lets a rule that denies or approves decide."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from approvals.adapters.store import DynamoRequestStore
from approvals.domain.decisions import DecisionResult, Outcome
from approvals.domain.identity import IdentityResolver
from approvals.domain.ports import ChatUnavailable, RequestersUnavailable
from approvals.domain.requests import EventOutcome, RequestService
from approvals.models.events import CreateJobCall
from approvals.models.job import JobRef
from approvals.models.policy import load_policy
from approvals.models.records import AuditEventType, RequestState
from approvals.models.slack import DecisionCommand, SystemOrigin
from sandbox.aws_local import LocalAws
from tests.fakes import FakeChat, FakeJobs, make_job

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ALICE_SSO = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Data_0123456789abcdef/alice@example.com"
SSO_ROLE = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Data_0123456789abcdef"
ROBOT = "arn:aws:sts::123456789012:assumed-role/untrusted-robot/run-1"
POLICY = load_policy(
    {
        "version": 1,
        "rules": [
            {
                "name": "no-robots",
                "match": {"requesters": ["arn:aws:sts::*:assumed-role/untrusted-*"]},
                "action": "deny",
                "reason": "Robots may not run batch jobs.",
            },
            {"name": "default"},
        ],
    }
)


class FakeRequesters:
    """CloudTrail's event history: what it holds, whether it answers, and how often it was asked."""

    def __init__(self) -> None:
        self.calls: dict[str, CreateJobCall] = {}
        self.down = False
        self.asked = 0

    def lookup(self, ref: JobRef, created_at: datetime) -> CreateJobCall | None:
        self.asked += 1
        if self.down:
            raise RequestersUnavailable("LookupEvents failed: ThrottlingException after 3 attempts")
        return self.calls.get(ref.job_id)


class Notifier:
    def __init__(self, local_aws: LocalAws, job_id: str) -> None:
        self.ref = JobRef(account_id="123456789012", region="us-east-1", job_id=job_id)
        self.jobs, self.chat = FakeJobs(), FakeChat()
        self.chat.emails["alice@example.com"] = "UALICE001"
        self.jobs.add(make_job(job_id))
        self.store = DynamoRequestStore(local_aws.client("dynamodb"), local_aws.requests_table, local_aws.audit_table)
        self.history = FakeRequesters()
        self.decided: list[DecisionCommand] = []
        self.service = RequestService(
            jobs=self.jobs,
            store=self.store,
            chat=self.chat,
            channel="C0APPROVALS",
            clock=lambda: NOW,
            large_job_threshold=1_000_000,
            policy=POLICY,
            identities=IdentityResolver(POLICY.identities, self.chat.user_by_email),
            requesters=self.history,
            decide=self._decide,
        )

    def _decide(self, command: DecisionCommand) -> DecisionResult:
        self.decided.append(command)
        return DecisionResult(Outcome.APPLIED)

    def call(self, principal: str) -> CreateJobCall:
        return CreateJobCall(
            job_id=self.ref.job_id,
            account_id=self.ref.account_id,
            region=self.ref.region,
            event_time=datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
            principal_arn=principal,
            principal_type="AssumedRole",
            session_issuer_arn=SSO_ROLE if principal == ALICE_SSO else None,
        )

    def audit(self) -> list[Any]:
        return self.store.history(self.ref)

    def posted_blocks(self) -> str:
        return str(self.chat.calls_to("chat.postMessage")[0]["blocks"])


@pytest.fixture
def notifier(local_aws: LocalAws, request: pytest.FixtureRequest) -> Notifier:
    return Notifier(local_aws, f"job-{abs(hash(request.node.name)) % 10**12:012d}")


def test_a_create_job_event_before_the_request_is_kept_and_the_request_is_posted_with_it(notifier: Notifier) -> None:
    # when: the CreateJob event comes while the job is still being prepared, then the job waits
    early = notifier.service.on_create_job(notifier.call(ALICE_SSO))
    posted = notifier.service.on_job_event(notifier.ref)
    # then
    assert early.outcome == EventOutcome.REQUESTER_RECORDED
    assert posted.outcome == EventOutcome.POSTED
    request = notifier.store.get(notifier.ref)
    assert request is not None
    assert request.requester is not None
    assert (request.requester.slack_user_id, request.requester.mapped_by) == ("UALICE001", "email")
    assert request.rule is not None
    assert request.rule.name == "default"
    assert "UALICE001" in notifier.posted_blocks()
    assert notifier.history.asked == 0  # the event said it: no lookup
    [requested] = notifier.audit()
    assert requested.requester_arn == ALICE_SSO


def test_a_request_posted_before_the_event_shows_the_requester_once_it_comes(notifier: Notifier) -> None:
    notifier.service.on_job_event(notifier.ref)
    assert "Looking up who created this job" in notifier.posted_blocks()
    # when
    learnt = notifier.service.on_create_job(notifier.call(ALICE_SSO))
    again = notifier.service.on_create_job(notifier.call(ALICE_SSO))  # a redelivery
    # then
    assert learnt.outcome == EventOutcome.REQUESTER_LEARNT
    assert again.outcome == EventOutcome.REQUESTER_LEARNT
    updates = notifier.chat.calls_to("chat.update")
    assert updates
    assert "UALICE001" in str(updates[-1]["blocks"])
    identified = [r for r in notifier.audit() if r.event_type == AuditEventType.REQUESTER_IDENTIFIED]
    assert len(identified) == 1
    assert identified[0].requester_slack_id == "UALICE001"


def test_the_history_names_the_requester_when_no_event_came(notifier: Notifier) -> None:
    notifier.history.calls[notifier.ref.job_id] = notifier.call(ALICE_SSO)
    notifier.service.on_job_event(notifier.ref)
    request = notifier.store.get(notifier.ref)
    assert request is not None
    assert request.requester is not None
    assert request.requester.found_in == "history"


def test_the_reconciliation_asks_the_history_again_until_it_knows(notifier: Notifier) -> None:
    notifier.service.on_job_event(notifier.ref)  # posted; the history does not have it yet
    notifier.history.calls[notifier.ref.job_id] = notifier.call(ALICE_SSO)
    # when: the next reconciliation follows the job
    result = notifier.service.on_job_event(notifier.ref)
    # then
    assert result.request is not None
    assert result.request.requester is not None
    assert result.request.requester.slack_user_id == "UALICE001"
    assert notifier.history.asked == 2


def test_a_history_that_fails_never_fails_the_posting(notifier: Notifier) -> None:
    notifier.history.down = True
    result = notifier.service.on_job_event(notifier.ref)
    assert result.outcome == EventOutcome.POSTED
    assert result.requester_problem is not None
    assert "ThrottlingException" in result.requester_problem


def test_slack_failing_the_email_lookup_fails_the_event_rather_than_record_an_unmapped_requester(
    notifier: Notifier,
) -> None:
    notifier.chat.fail_next("users.lookupByEmail")
    with pytest.raises(ChatUnavailable):
        notifier.service.on_create_job(notifier.call(ALICE_SSO))
    assert notifier.store.requester_of(notifier.ref) is None


def test_a_deny_rule_that_matches_the_requester_decides_once_the_requester_is_known(notifier: Notifier) -> None:
    notifier.service.on_job_event(notifier.ref)
    assert notifier.decided == []  # the default rule: a person decides
    # when
    notifier.service.on_create_job(notifier.call(ROBOT))
    # then
    [command] = notifier.decided
    assert command.decision == "cancel"
    assert command.decision_id == "policy:no-robots"
    assert isinstance(command.origin, SystemOrigin)
    request = notifier.store.get(notifier.ref)
    assert request is not None
    assert request.rule is not None
    assert request.rule.name == "no-robots"


def test_a_deny_rule_known_at_posting_decides_right_after_the_post(notifier: Notifier) -> None:
    notifier.service.on_create_job(notifier.call(ROBOT))
    result = notifier.service.on_job_event(notifier.ref)
    assert result.outcome == EventOutcome.POSTED
    assert [c.decision_id for c in notifier.decided] == ["policy:no-robots"]
    assert notifier.chat.calls_to("chat.postMessage"), "the channel is told: the request is posted first"


def test_a_decided_request_only_records_who_created_the_job(notifier: Notifier) -> None:
    notifier.service.on_job_event(notifier.ref)
    notifier.store.close(notifier.ref, "confirmed elsewhere", "Ready", NOW)
    result = notifier.service.on_create_job(notifier.call(ROBOT))
    assert notifier.decided == []
    request = notifier.store.get(notifier.ref)
    assert request is not None
    assert request.state == RequestState.CLOSED
    assert result.request is not None
    assert result.request.requester is not None


def test_a_rule_with_its_own_channel_posts_the_request_there(notifier: Notifier) -> None:
    # given: a policy whose default rule names another channel
    notifier.service.policy = load_policy({"version": 1, "rules": [{"name": "default", "channel": "C0STORAGE1"}]})
    # when
    notifier.service.on_job_event(notifier.ref)
    # then
    [post] = notifier.chat.calls_to("chat.postMessage")
    assert post["channel"] == "C0STORAGE1"
    request = notifier.store.get(notifier.ref)
    assert request is not None
    assert request.channel == "C0STORAGE1"
