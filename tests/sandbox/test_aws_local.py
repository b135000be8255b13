"""Local AWS: DynamoDB requests applied whole (as DynamoDB does), and the tables the stack defines."""

from __future__ import annotations

import http.client
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from infra import constants as c
from sandbox.aws_local import (
    SANDBOX_DECISION_TIMING,
    DecisionTiming,
    LocalAws,
    SerialisedDynamoDB,
    WsgiServer,
)

CLIENTS = 8
TRIALS = 40


class OverlapProbe:
    """A WSGI app that holds each request until a second one overlaps it (or 0.15 s pass), counting overlap."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.current = 0
        self.most = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            self.current += 1
            self.most = max(self.most, self.current)
            self._lock.notify_all()
            self._lock.wait_for(lambda: self.most > 1, timeout=0.15)
            self.current -= 1
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b'{"ok": ', b"true}"]


def send_together(url: str, target: str, count: int = CLIENTS) -> list[bytes]:
    """POST ``count`` requests at once, each on its own connection; the response bodies."""
    split = urlsplit(url)
    start = threading.Barrier(count)
    bodies: list[bytes] = []

    def one() -> None:
        connection = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
        start.wait()
        try:
            connection.request("POST", "/", body=b"{}", headers={"X-Amz-Target": target})
            bodies.append(connection.getresponse().read())
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return bodies


@pytest.fixture
def serve() -> Iterator[Callable[[Any], WsgiServer]]:
    servers: list[WsgiServer] = []

    def start(app: Any) -> WsgiServer:
        servers.append(WsgiServer(app).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


# -- the serialising front --------------------------------------------------------------------------


def test_a_plain_threaded_server_runs_dynamodb_requests_at_the_same_time(serve: Callable[[Any], WsgiServer]) -> None:
    # given
    probe = OverlapProbe()
    server = serve(probe)
    # when
    send_together(server.url, "DynamoDB_20120810.UpdateItem")
    # then: what moto's own server does, and why two conditional updates could both win
    assert probe.most > 1


def test_the_front_runs_one_dynamodb_request_at_a_time(serve: Callable[[Any], WsgiServer]) -> None:
    # given
    probe = OverlapProbe()
    server = serve(SerialisedDynamoDB(probe))
    # when
    bodies = send_together(server.url, "DynamoDB_20120810.UpdateItem")
    # then
    assert probe.most == 1
    assert bodies == [b'{"ok": true}'] * CLIENTS


def test_the_front_leaves_streams_and_other_services_concurrent(serve: Callable[[Any], WsgiServer]) -> None:
    # given
    streams, sqs = OverlapProbe(), OverlapProbe()
    # when
    send_together(serve(SerialisedDynamoDB(streams)).url, "DynamoDBStreams_20120810.GetRecords")
    send_together(serve(SerialisedDynamoDB(sqs)).url, "AmazonSQS.ReceiveMessage")
    # then
    assert streams.most > 1
    assert sqs.most > 1


# -- moto behind the front ------------------------------------------------------------------------------


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Switch threads every microsecond instead of every 5 ms, so an unlocked check-then-write is caught often.

    Without the front, moto lets two claims win in about one trial in five like this (and rarely otherwise).
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.fixture(scope="module")
def race_table(moto_server: LocalAws) -> str:
    name = f"race-{uuid.uuid4().hex[:8]}"
    dynamodb = moto_server.client("dynamodb")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def race(clients: list[Any], attempt: Callable[[Any, str], None]) -> list[str]:
    """Every client tries ``attempt`` at the same moment; the names of those whose write succeeded."""
    start = threading.Barrier(len(clients))
    won: list[str] = []
    refused: list[str] = []

    def one(client: Any, me: str) -> None:
        start.wait()
        try:
            attempt(client, me)
        except ClientError as error:
            refused.append(error.response["Error"]["Code"])
        else:
            won.append(me)

    threads = [threading.Thread(target=one, args=(client, f"c{n}")) for n, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert set(refused) <= {"ConditionalCheckFailedException"}
    return won


@pytest.mark.usefixtures("eager_thread_switching")
@pytest.mark.parametrize("condition", ["attribute_not_exists", "state"])
def test_concurrent_conditional_claims_have_exactly_one_winner_every_time(
    moto_server: LocalAws, race_table: str, condition: str
) -> None:
    # given
    clients = [moto_server.client("dynamodb") for _ in range(CLIENTS)]
    winners: list[list[str]] = []
    for trial in range(TRIALS):
        key = {"pk": {"S": f"{condition}-{trial}-{uuid.uuid4().hex[:6]}"}}
        if condition == "state":
            clients[0].put_item(TableName=race_table, Item={**key, "state": {"S": "PENDING"}})

        def claim(client: Any, me: str, key: dict[str, Any] = key) -> None:
            if condition == "attribute_not_exists":
                client.update_item(
                    TableName=race_table,
                    Key=key,
                    UpdateExpression="SET holder = :me",
                    ConditionExpression="attribute_not_exists(holder)",
                    ExpressionAttributeValues={":me": {"S": me}},
                )
            else:
                client.update_item(
                    TableName=race_table,
                    Key=key,
                    UpdateExpression="SET #s = :deciding, holder = :me",
                    ConditionExpression="#s = :pending",
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={
                        ":me": {"S": me},
                        ":deciding": {"S": "DECIDING"},
                        ":pending": {"S": "PENDING"},
                    },
                )

        # when
        won = race(clients, claim)
        # then (checked after all trials, so a failure shows how often)
        stored = clients[0].get_item(TableName=race_table, Key=key, ConsistentRead=True)["Item"]["holder"]["S"]
        winners.append(won if won == [stored] else [*won, f"stored={stored}"])
    assert [w for w in winners if len(w) != 1] == []


# -- the tables, queue and settings ---------------------------------------------------------------------


def test_the_audit_table_is_keyed_like_the_stack_streams_both_images_and_never_expires(local_aws: LocalAws) -> None:
    # given
    dynamodb = local_aws.client("dynamodb")
    # when
    table = dynamodb.describe_table(TableName=local_aws.audit_table)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=local_aws.audit_table)["TimeToLiveDescription"]
    # then
    assert local_aws.audit_table == f"{local_aws.prefix}-audit"
    assert table["KeySchema"] == [
        {"AttributeName": c.AUDIT_TABLE_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": c.AUDIT_TABLE_SORT_KEY, "KeyType": "RANGE"},
    ]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert ttl["TimeToLiveStatus"] == "DISABLED"


def test_the_requests_table_has_the_stacks_sparse_indexes_and_no_stream(local_aws: LocalAws) -> None:
    # given
    dynamodb = local_aws.client("dynamodb")
    pk, sk = c.REQUESTS_TABLE_PARTITION_KEY, c.REQUESTS_TABLE_SORT_KEY
    deciding, since = c.REQUESTS_DECIDING_INDEX_PARTITION_KEY, c.REQUESTS_DECIDING_INDEX_SORT_KEY
    # when
    table = dynamodb.describe_table(TableName=local_aws.requests_table)["Table"]
    dynamodb.put_item(TableName=local_aws.requests_table, Item={pk: {"S": "JOB#a"}, sk: {"S": "REQUEST"}})
    dynamodb.put_item(
        TableName=local_aws.requests_table,
        Item={pk: {"S": "JOB#b"}, sk: {"S": "REQUEST"}, deciding: {"S": "1"}, since: {"S": "2026-01-01T00:00:00Z"}},
    )
    indexed = dynamodb.query(
        TableName=local_aws.requests_table,
        IndexName=c.REQUESTS_DECIDING_INDEX,
        KeyConditionExpression="#d = :one",
        ExpressionAttributeNames={"#d": deciding},
        ExpressionAttributeValues={":one": {"S": "1"}},
    )["Items"]
    # then
    index = next(i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == c.REQUESTS_DECIDING_INDEX)
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [name for name, _, _ in c.REQUESTS_INDEXES]
    assert index["KeySchema"] == [
        {"AttributeName": deciding, "KeyType": "HASH"},
        {"AttributeName": since, "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    assert "StreamSpecification" not in table or not table["StreamSpecification"]["StreamEnabled"]
    assert [item[pk]["S"] for item in indexed] == ["JOB#b"]


def test_the_settings_name_the_audit_table_and_the_lease_the_queue_was_built_for(local_aws: LocalAws) -> None:
    # given
    sqs = local_aws.client("sqs")
    # when
    env = local_aws.env()
    visibility = sqs.get_queue_attributes(QueueUrl=local_aws.queue_url, AttributeNames=["VisibilityTimeout"])
    # then
    assert env[c.ENV_AUDIT_TABLE_NAME] == local_aws.audit_table
    assert env[c.ENV_DECISION_LEASE_SECONDS] == str(SANDBOX_DECISION_TIMING.lease)
    assert int(env[c.ENV_DECISION_LEASE_SECONDS]) >= 10  # what the functions accept
    assert visibility["Attributes"]["VisibilityTimeout"] == str(SANDBOX_DECISION_TIMING.visibility_timeout)


def test_the_sandbox_timing_passes_the_stacks_own_check() -> None:
    # given
    timing = SANDBOX_DECISION_TIMING
    # when / then: raises if a change broke it
    c.check_decision_timing(
        visibility_timeout=timing.visibility_timeout, lease=timing.lease, function_timeout=timing.function_timeout
    )


@pytest.mark.parametrize(
    ("visibility", "lease", "function_timeout"),
    [(60, 20, 20), (30, 20, 10), (5, 120, 60)],
    ids=["lease-not-longer-than-an-invocation", "redelivery-inside-the-lease", "the-old-sandbox-values"],
)
def test_a_timing_that_would_redeliver_into_a_held_claim_is_refused_when_built(
    visibility: int, lease: int, function_timeout: int
) -> None:
    # when / then
    with pytest.raises(ValueError, match="must exceed"):
        DecisionTiming(visibility_timeout=visibility, lease=lease, function_timeout=function_timeout)


def test_a_stopped_server_frees_its_port_promptly() -> None:
    # given
    aws = LocalAws().start()
    url = aws.url
    # when
    started = time.monotonic()
    aws.stop()
    # then
    assert time.monotonic() - started < 5
    split = urlsplit(url)
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection(split.hostname, split.port, timeout=1).request("GET", "/")
