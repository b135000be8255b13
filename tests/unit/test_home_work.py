"""QueuedWork for the approver's queue: an app_home_opened event or a slash command is acted on only once
Slack's signature over the queued body checks out, and then read from that body. A real DecisionService and
store on moto, the real verifier with moto's secret, the real DynamoHomeQueries, and fakes for S3 and Slack."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from approvals.adapters.queries import DynamoHomeQueries
from approvals.adapters.secrets import SlackSecrets
from approvals.adapters.signature import SlackRequestVerifier
from approvals.adapters.store import DynamoRequestStore
from approvals.domain.authorisation import Approvers
from approvals.domain.decisions import DecisionResult, DecisionService, Outcome
from approvals.domain.home import HomeResult, HomeService
from approvals.domain.work import QueuedWork
from approvals.models.job import JobRef
from approvals.models.records import AuditEventType
from sandbox.aws_local import LocalAws
from tests.fakes import FakeChat, FakeJobs, SlackSigner, post_request
from tests.unit.test_home import FakeHomeChat

SIGNING_SECRET = "test-signing-secret"
TEAM = "T0APPROVE"
ALICE = "U0ALICE01"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0001-abcdef")
HOOK = "https://hooks.slack.com/commands/T0APPROVE/1/abc"


class Decider:
    def __init__(self, local_aws: LocalAws) -> None:
        self.store = DynamoRequestStore(local_aws.client("dynamodb"), local_aws.requests_table, local_aws.audit_table)
        self.chat = FakeHomeChat()
        self.slack = SlackSigner(SIGNING_SECRET)
        decisions = DecisionService(
            jobs=FakeJobs(),
            store=self.store,
            chat=FakeChat(),
            approvers=Approvers(frozenset({ALICE}), ()),
            members_of=lambda group: frozenset(),
            clock=lambda: NOW,
            large_job_threshold=1_000_000,
        )
        self.home = HomeService(
            queries=DynamoHomeQueries(local_aws.client("dynamodb"), local_aws.requests_table, self.store),
            chat=self.chat,
            approvers_for=decisions.approvers_for,
            members_of=lambda group: frozenset(),
            history=self.store.history,
            clock=lambda: NOW,
            command_name="/s3-approvals",
        )
        secrets = SlackSecrets(SecretsProvider(boto3_client=local_aws.client("secretsmanager")), local_aws.secret_name)
        self.work = QueuedWork(
            decisions=decisions,
            verified=SlackRequestVerifier(secrets).verify_signed,
            teams=(TEAM,),
            clock=lambda: NOW,
            home=self.home,
            response_prefixes=("https://hooks.slack.com/",),
        )
        post_request(self.store, REF, NOW)

    def handle(self, raw: str) -> DecisionResult | HomeResult:
        return self.work.handle(raw)


@pytest.fixture
def decider(local_aws: LocalAws) -> Decider:
    return Decider(local_aws)


def event(event_id: str = "Ev0AB12CD34", user: str = ALICE) -> str:
    opened = {"type": "app_home_opened", "user": user, "tab": "home"}
    return json.dumps({"type": "event_callback", "team_id": TEAM, "event_id": event_id, "event": opened})


def command(text: str = "pending", trigger: str = "1.2.abc") -> str:
    return urlencode(
        {
            "command": "/s3-approvals",
            "text": text,
            "user_id": ALICE,
            "team_id": TEAM,
            "response_url": HOOK,
            "trigger_id": trigger,
        }
    )


def test_a_signed_home_event_publishes_the_persons_home(decider: Decider) -> None:
    # when
    result = decider.handle(decider.slack.queued("home", event(), NOW))

    # then
    assert isinstance(result, HomeResult)
    assert result.outcome == "published"
    assert REF.job_id in json.dumps(decider.chat.published[ALICE])


def test_the_same_event_queued_twice_publishes_once(decider: Decider) -> None:
    # when
    outcomes = [decider.handle(decider.slack.queued("home", event(), NOW)) for _ in range(2)]

    # then
    assert [o.outcome for o in outcomes] == ["published", "duplicate"]
    assert decider.chat.publishes == [ALICE]


def test_a_signed_command_is_answered_through_its_response_url(decider: Decider) -> None:
    # when
    result = decider.handle(decider.slack.queued("command", command("pending"), NOW))

    # then
    assert isinstance(result, HomeResult)
    assert result.outcome == "answered"
    [(url, text, _)] = decider.chat.replies
    assert (url, text) == (HOOK, "1 approval request waits for your decision.")


@pytest.mark.parametrize(
    ("intent", "body", "swapped"),
    [
        ("home", event(), event(user="U0MALLORY")),  # altered after signing
        ("command", command("help"), command("pending", trigger="9.9.zzz")),
    ],
)
def test_an_altered_body_is_refused_as_unverified(decider: Decider, intent: Any, body: str, swapped: str) -> None:
    # when
    result = decider.handle(decider.slack.queued(intent, body, NOW, as_body=swapped))

    # then
    assert isinstance(result, DecisionResult)
    assert result.outcome == Outcome.UNVERIFIED
    assert len(decider.chat) == 0


@pytest.mark.parametrize(
    ("intent", "body"),
    [
        ("home", command()),  # the intent does not fit the signed body
        ("command", event()),
        ("decide", event()),
        ("home", json.dumps({"type": "url_verification", "challenge": "x"})),
    ],
)
def test_an_intent_that_does_not_fit_the_signed_body_is_refused(decider: Decider, intent: Any, body: str) -> None:
    # when
    result = decider.handle(decider.slack.queued(intent, body, NOW))

    # then
    assert isinstance(result, DecisionResult)
    assert result.outcome == Outcome.UNVERIFIED
    assert len(decider.chat) == 0
    assert [r.reason for r in result.audit] == ["unverified"]
    assert result.audit[0].event_type == AuditEventType.DECISION_REFUSED
