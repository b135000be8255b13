"""adapters/queries.py against DynamoDB (moto in server mode), with the requests written by the real store:
Queries on the sparse indexes, never a Scan, each bounded; and the Home tab's own items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from approvals.adapters import queries as q
from approvals.adapters.queries import DynamoHomeQueries
from approvals.adapters.store import DynamoRequestStore
from approvals.models.job import JobRef
from approvals.models.records import Actor, Requester, RequestState
from approvals.models.slack import DecisionCommand
from sandbox.aws_local import LocalAws
from tests.fakes import post_request

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
DANA = "U0DANA001"


def ref(n: int) -> JobRef:
    return JobRef(account_id="123456789012", region="us-east-1", job_id=f"job-{n:04d}-abcdef")


class CountingClient:
    """The real client, counting the operations it is asked for (so a test can say "never a Scan")."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.operations: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.operations.append(name)
        return getattr(self._client, name)


@pytest.fixture
def store(local_aws: LocalAws) -> DynamoRequestStore:
    return DynamoRequestStore(local_aws.client("dynamodb"), local_aws.requests_table, local_aws.audit_table)


@pytest.fixture
def client(local_aws: LocalAws) -> CountingClient:
    return CountingClient(local_aws.client("dynamodb"))


@pytest.fixture
def home(client: CountingClient, local_aws: LocalAws) -> DynamoHomeQueries:
    store = DynamoRequestStore(client, local_aws.requests_table, local_aws.audit_table)
    return DynamoHomeQueries(client, local_aws.requests_table, store)


def decide(store: DynamoRequestStore, job: JobRef, at: datetime) -> None:
    actor = Actor(user_id="U0ALICE01", name="alice")
    command = DecisionCommand(job=job, decision="cancel", actor=actor, reason="no", decision_id=f"d-{job.job_id}")
    assert store.claim_decision(command, at, 120).won
    store.finish_decision(job, command.decision_id, RequestState.CANCELLED, "Cancelled", "Cancelled by alice", at)


def test_the_listings_are_queries_of_the_stacks_state_index(
    store: DynamoRequestStore, home: DynamoHomeQueries, client: CountingClient
) -> None:
    # given
    post_request(store, ref(1), NOW)
    client.operations.clear()

    # when
    home.awaiting()
    home.decided()
    home.find(ref(1).job_id)

    # then
    assert set(client.operations) == {"query"}


def test_open_requests_come_oldest_first_and_decided_ones_leave(
    store: DynamoRequestStore, home: DynamoHomeQueries, client: CountingClient
) -> None:
    # given
    for n in (1, 2, 3):
        post_request(store, ref(n), NOW, requested_at=NOW - timedelta(minutes=10 - n))
    decide(store, ref(2), NOW)

    # when
    awaiting = home.awaiting()
    decided = home.decided()

    # then
    assert [r.job.job_id for r in awaiting] == [ref(1).job_id, ref(3).job_id]
    assert [r.job.job_id for r in decided] == [ref(2).job_id]
    assert decided[0].state == RequestState.CANCELLED
    assert "scan" not in client.operations


def test_a_persons_requests_are_found_by_their_slack_user(store: DynamoRequestStore, home: DynamoHomeQueries) -> None:
    # given
    dana = Requester(principal_arn="arn:aws:iam::123456789012:user/dana", slack_user_id=DANA, found_in="event")
    store.put_requester(ref(1), dana, NOW)  # as the notifier keeps who created a job, however it learnt it
    post_request(store, ref(1), NOW, requester=dana)
    post_request(store, ref(2), NOW)

    # then
    assert [r.job.job_id for r in home.requested_by(DANA)] == [ref(1).job_id]
    assert home.requested_by("U0NOBODY1") == []


def test_recently_decided_is_the_newest_twenty(store: DynamoRequestStore, home: DynamoHomeQueries) -> None:
    # given
    for n in range(1, 26):
        post_request(store, ref(n), NOW)
        decide(store, ref(n), NOW + timedelta(minutes=n))

    # when
    decided = home.decided()

    # then
    assert len(decided) == q.DECIDED_LIMIT == 20
    assert decided[0].job.job_id == ref(25).job_id
    assert decided[-1].job.job_id == ref(6).job_id


def test_a_job_is_found_by_its_id_alone_open_or_decided(store: DynamoRequestStore, home: DynamoHomeQueries) -> None:
    # given
    post_request(store, ref(1), NOW)
    post_request(store, ref(2), NOW)
    decide(store, ref(2), NOW)

    # then
    assert [r.state for r in home.find(ref(1).job_id)] == [RequestState.PENDING]
    assert [r.state for r in home.find(ref(2).job_id)] == [RequestState.CANCELLED]
    assert home.find("job-9999-nothing") == []


def test_home_items_are_remembered_and_kept_apart_from_requests(
    home: DynamoHomeQueries, store: DynamoRequestStore
) -> None:
    # given
    post_request(store, ref(1), NOW)

    # when
    home.remember_home(DANA, NOW)

    # then
    assert home.opened_home(DANA)
    assert not home.opened_home("U0NOBODY1")
    assert [r.job.job_id for r in home.awaiting()] == [ref(1).job_id]


def test_a_delivery_key_is_first_once(home: DynamoHomeQueries) -> None:
    assert home.first_delivery("event:Ev0001", NOW) is True
    assert home.first_delivery("event:Ev0001", NOW) is False
    assert home.first_delivery("event:Ev0002", NOW) is True
