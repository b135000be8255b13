"""DynamoDB: the read-only listings behind the Home tab and the slash command, and the few items the
approver's queue keeps itself in the requests table. Implements ``domain.home.HomeQueries``.

The listings are the store's (adapters/store.py: Queries of the requests table's sparse state index,
never a Scan), each bounded here:

- open requests (pending or deciding), soonest due first: at most ``AWAITING_LIMIT``;
- one person's requests ("Your jobs"), most recently learnt first: ``MINE_LIMIT``;
- the newest ``DECIDED_LIMIT`` decided or closed requests;
- ``find(job_id)``: a lookup by job ID alone (the account and region are not given), among the open
  requests (``AWAITING_LIMIT``) and the newest ``FIND_DECIDED_LIMIT`` decided ones.

Items it writes (with UpdateItem and GetItem, which the decider has on the table already: no new
permission), beside the REQUEST items, which it never writes:

- ``HOME#<user>`` / ``HOME``: the person opened the Home tab (refreshes publish only their views); TTL
  ``HOME_TTL_DAYS`` after the last opening;
- ``SLACKDELIVERY#<key>`` / ``SLACKDELIVERY``: an Events API ``event_id`` or a command's ``trigger_id`` was
  handled, by a conditional write (``attribute_not_exists``), so a retried or redelivered one is not; TTL a day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from approvals.adapters.store import DynamoRequestStore
from approvals.models.records import ApprovalRequest

HOME_PREFIX = "HOME#"
HOME_SK = "HOME"
DELIVERY_PREFIX = "SLACKDELIVERY#"
DELIVERY_SK = "SLACKDELIVERY"
AWAITING_LIMIT = 500  # open requests read for one view (5 pages of 100)
MINE_LIMIT = 10
DECIDED_LIMIT = 20
FIND_DECIDED_LIMIT = 300  # a status lookup reads at most the newest 300 decided requests
HOME_TTL_DAYS = 90
DELIVERY_TTL = timedelta(days=1)  # Slack retries an event within minutes; SQS redelivers within hours
_ser = TypeSerializer()


def _values(**values: Any) -> dict[str, Any]:
    return {f":{k}": _ser.serialize(v) for k, v in values.items()}


class DynamoHomeQueries:
    def __init__(self, client: Any, table_name: str, store: DynamoRequestStore) -> None:
        self._db = client
        self._table = table_name
        self._store = store

    # -- the listings (the store's queries of the state index)

    def awaiting(self) -> list[ApprovalRequest]:
        return self._store.open_requests(AWAITING_LIMIT)

    def requested_by(self, user_id: str) -> list[ApprovalRequest]:
        return self._store.jobs_of(user_id, MINE_LIMIT)

    def decided(self) -> list[ApprovalRequest]:
        return self._store.recently_decided(DECIDED_LIMIT)

    def find(self, job_id: str) -> list[ApprovalRequest]:
        listed = self._store.open_requests(AWAITING_LIMIT) + self._store.recently_decided(FIND_DECIDED_LIMIT)
        return [request for request in listed if request.job.job_id == job_id]

    # -- the queue's own items

    def opened_home(self, user_id: str) -> bool:
        key = {"pk": _ser.serialize(HOME_PREFIX + user_id), "sk": _ser.serialize(HOME_SK)}
        return "Item" in self._db.get_item(TableName=self._table, Key=key, ProjectionExpression="pk")

    def remember_home(self, user_id: str, now: datetime) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"pk": _ser.serialize(HOME_PREFIX + user_id), "sk": _ser.serialize(HOME_SK)},
            UpdateExpression="SET user_id = :user, opened_at = :now, expires_at = :ttl",
            ExpressionAttributeValues=_values(
                user=user_id, now=now.isoformat(), ttl=int((now + timedelta(days=HOME_TTL_DAYS)).timestamp())
            ),
        )

    def first_delivery(self, key: str, now: datetime) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": _ser.serialize(DELIVERY_PREFIX + key), "sk": _ser.serialize(DELIVERY_SK)},
                UpdateExpression="SET seen_at = :now, expires_at = :ttl",
                ConditionExpression="attribute_not_exists(pk)",
                ExpressionAttributeValues=_values(now=now.isoformat(), ttl=int((now + DELIVERY_TTL).timestamp())),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
