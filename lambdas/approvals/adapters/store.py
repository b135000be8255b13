"""DynamoDB: the requests table (one REQUEST item per job) and the audit table (AUDIT# items per job).

Every state change is a conditional write, so concurrent deliveries and clicks agree on one winner.
Audit items are only ever inserted (``attribute_not_exists``); the audit table's resource policy denies
deletes and updates to everyone, and the audit writer alarms on any overwrite it sees on the stream.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from approvals.domain.ports import Claim, ClaimLost, VoteOutcome
from approvals.models.job import JobRef
from approvals.models.policy import Rule
from approvals.models.records import Actor, ApprovalRequest, AuditRecord, DecisionKind, Requester, RequestState
from approvals.models.slack import DecisionCommand, SystemOrigin

REQUEST_SK = "REQUEST"
REQUESTER_SK = "REQUESTER"  # who created the job, learnt before or after its request was posted
AUDIT_PREFIX = "AUDIT#"
UNATTRIBUTED_PREFIX = "UNATTRIBUTED#"  # partition of audit records that name no valid job, by UTC day
DECIDING_INDEX = "DecidingIndex"  # sparse: only requests whose claim is held carry its key
DECIDING = "1"
# The state index (infra.constants.REQUESTS_STATE_INDEX): one sparse index, overloaded, so that an upgrade adds
# one index (CloudFormation adds at most one global secondary index per update). Its keys, ``listed`` and
# ``listed_at`` (both written through ``#k`` / ``#t``):
#   - an open request (pending or deciding; REQUEST item): ``OPEN`` and when its next lifecycle step is due
#     (``NEVER`` once none is left), so the sweep queries what is due and the Home tab what is open;
#   - a decided or closed request (REQUEST item): ``DECIDED`` and when, newest last;
#   - who created a job (REQUESTER item): ``REQUESTER#<Slack user ID>`` and when it was learnt.
STATE_INDEX = "StateIndex"
OPEN = "OPEN"
DECIDED = "DECIDED"
REQUESTER_LISTING = "REQUESTER#"
NEVER = "9999-12-31T23:59:59.999999Z"  # an open request with no lifecycle step left
_KEYS = {"#k": "listed", "#t": "listed_at"}
# Attributes only the store writes, for its indexes and claims: never part of the request model.
_INDEX_ONLY = ("pk", "sk", "expires_at", "deciding", "listed", "listed_at", "step_claim")
_ser = TypeSerializer()
_de = TypeDeserializer()


RELEASED = datetime(1970, 1, 1, tzinfo=UTC)  # a posting claim given up: older than any lease


def _numbers(value: Any) -> Any:
    """DynamoDB's numbers (Decimal) as the ints and floats they were written as, all the way down: the
    policy's models are strict and take no Decimal."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_numbers(v) for v in value]
    return value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def due_key(moment: datetime) -> str:
    """A time as the state index sorts it: fixed width, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _values(**values: Any) -> dict[str, Any]:
    return {f":{k}": _ser.serialize(v) for k, v in values.items()}


class AuditReader:
    """Reads a job's audit records from the audit table (the audit command and the sandbox)."""

    def __init__(self, client: Any, audit_table_name: str) -> None:
        self._db = client
        self._audit_table = audit_table_name

    def history(self, ref: JobRef) -> list[AuditRecord]:
        return self._audit_items(ref.key)

    def unattributed(self, day: str) -> list[AuditRecord]:
        """Refused requests that named no valid job, on one UTC day (YYYY-MM-DD)."""
        return self._audit_items(f"{UNATTRIBUTED_PREFIX}{day}")

    def _audit_items(self, pk: str) -> list[AuditRecord]:
        records: list[AuditRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._audit_table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :audit)",
            "ExpressionAttributeValues": _values(pk=pk, audit=AUDIT_PREFIX),
        }
        while True:
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                data = {k: _de.deserialize(v) for k, v in item.items()}
                records.append(AuditRecord.model_validate(data["record"]))
            if "LastEvaluatedKey" not in page:
                return sorted(records, key=lambda r: r.time)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


NOTICE_PREFIX, NOTICE_SK = "NOTICE#", "NOTICE"  # notices said once (RequestStore.first_notice)
NOTICE_TTL = timedelta(days=1)


class DynamoRequestStore:
    """Implements ``domain.ports.RequestStore`` on a DynamoDB client (passed in)."""

    def __init__(self, client: Any, table_name: str, audit_table_name: str, ttl_days: int = 120) -> None:
        self._db = client
        self._table = table_name
        self._audit_table = audit_table_name
        self._ttl = timedelta(days=ttl_days)

    def first_notice(self, key: str, now: datetime) -> bool:
        """An item ``NOTICE#<key>`` / ``NOTICE`` (TTL a day), written only if absent: a notice is said once."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": _ser.serialize(NOTICE_PREFIX + key),
                    "sk": _ser.serialize(NOTICE_SK),
                    "said_at": _ser.serialize(now.isoformat()),
                    "expires_at": _ser.serialize(int((now + NOTICE_TTL).timestamp())),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def forget_notice(self, key: str) -> None:
        self._db.delete_item(
            TableName=self._table,
            Key={"pk": _ser.serialize(NOTICE_PREFIX + key), "sk": _ser.serialize(NOTICE_SK)},
        )

    # -- reading --------------------------------------------------------------------------------

    def get(self, ref: JobRef) -> ApprovalRequest | None:
        item = self._db.get_item(TableName=self._table, Key=self._key(ref), ConsistentRead=True).get("Item")
        return self._request(item) if item else None

    def history(self, ref: JobRef) -> list[AuditRecord]:
        return AuditReader(self._db, self._audit_table).history(ref)

    def stuck(self, now: datetime, lease_seconds: int) -> list[ApprovalRequest]:
        """Requests whose decision claim has been held past its lease (its holder died)."""
        found: list[ApprovalRequest] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DECIDING_INDEX,
            "KeyConditionExpression": "deciding = :one AND deciding_since < :stale",
            "ExpressionAttributeValues": _values(one=DECIDING, stale=_iso(now - timedelta(seconds=lease_seconds))),
        }
        while True:
            page = self._db.query(**kwargs)
            found.extend(self._request(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- posting --------------------------------------------------------------------------------

    def claim_posting(self, request: ApprovalRequest, now: datetime, lease_seconds: int) -> bool:
        item = self._item(request)
        item["claimed_at"] = _ser.serialize(_iso(now))
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR (#s = :posting AND claimed_at < :stale)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=_values(
                    posting=RequestState.POSTING.value, stale=_iso(now - timedelta(seconds=lease_seconds))
                ),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def mark_posted(self, ref: JobRef, channel: str, message_ts: str, due_at: datetime | None = None) -> None:
        """The request is in the channel: pending, and listed open with its first lifecycle step due at
        ``due_at`` (None: a request without a lifecycle, listed open with no step)."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(ref),
            UpdateExpression=(
                "SET #s = :pending, channel = :channel, message_ts = :ts, #k = :open, #t = :due REMOVE claimed_at"
            ),
            ConditionExpression="#s = :posting",
            ExpressionAttributeNames={"#s": "state", **_KEYS},
            ExpressionAttributeValues=_values(
                pending=RequestState.PENDING.value,
                posting=RequestState.POSTING.value,
                channel=channel,
                ts=message_ts,
                open=OPEN,
                due=due_key(due_at) if due_at is not None else NEVER,
            ),
        )

    def release_posting(self, ref: JobRef, claimed_at: datetime) -> None:
        """Give up the posting claim made at ``claimed_at`` so that the next delivery may take it at once.

        The record stays (state posting, no message): the next delivery then knows a post may have gone
        through and looks for it before posting. A claim taken over meanwhile is left alone.
        """
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression="SET claimed_at = :released",
                ConditionExpression="#s = :posting AND claimed_at = :mine",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=_values(
                    posting=RequestState.POSTING.value, mine=_iso(claimed_at), released=_iso(RELEASED)
                ),
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def adopt_posted(
        self, ref: JobRef, channel: str, message_ts: str, claimed_at: datetime | None, due_at: datetime | None = None
    ) -> bool:
        """Record a message an earlier delivery posted, if the claim is still the one that was seen expired."""
        condition = "#s = :posting AND " + ("claimed_at = :seen" if claimed_at else "attribute_not_exists(claimed_at)")
        values: dict[str, Any] = {"pending": RequestState.PENDING.value, "posting": RequestState.POSTING.value}
        values |= {"channel": channel, "ts": message_ts}
        if claimed_at:
            values["seen"] = _iso(claimed_at)
        values |= {"open": OPEN, "due": due_key(due_at) if due_at is not None else NEVER}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression=(
                    "SET #s = :pending, channel = :channel, message_ts = :ts, #k = :open, #t = :due REMOVE claimed_at"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "state", **_KEYS},
                ExpressionAttributeValues=_values(**values),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def add_vote(
        self, ref: JobRef, voter: Actor, decision_id: str, now: datetime, self_allowed: bool = False
    ) -> tuple[VoteOutcome, ApprovalRequest | None]:
        """One approval vote per person per job, while the request is pending (one conditional write), and
        never by the job's creator (unless ``self_allowed``), even one learnt since the caller looked.

        ``again`` when this very click was counted before (a redelivery), ``already`` when the person
        voted with another click, ``requester`` when the person created the job, ``closed`` when the
        request is no longer pending (or there is none).
        """
        condition = "#s = :pending AND attribute_not_exists(votes.#u)"
        values: dict[str, Any] = {"pending": RequestState.PENDING.value}
        if not self_allowed:
            condition += " AND (attribute_not_exists(requester.slack_user_id) OR requester.slack_user_id <> :me)"
            values["me"] = voter.user_id
        vote = {"user_id": voter.user_id, "name": voter.name, "team_id": voter.team_id, "at": _iso(now)}
        vote["decision_id"] = decision_id
        for attempt in range(2):
            try:
                response = self._db.update_item(
                    TableName=self._table,
                    Key=self._key(ref),
                    UpdateExpression="SET votes.#u = :vote",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#s": "state", "#u": voter.user_id},
                    ExpressionAttributeValues=_values(**values, vote=vote),
                    ReturnValues="ALL_NEW",
                )
                return "recorded", self._request(response["Attributes"])
            except ClientError as exc:
                if _conditional_failed(exc):
                    break
                if attempt or exc.response.get("Error", {}).get("Code") != "ValidationException":
                    raise
                self._start_votes(ref)  # a record written before votes existed: give it an empty map first
        current = self.get(ref)
        if current is None or current.state != RequestState.PENDING:
            mine = self._votes_of(ref).get(voter.user_id)
            if current is not None and mine is not None and mine.get("decision_id") == decision_id:
                return "again", current
            return "closed", current
        mine = self._votes_of(ref).get(voter.user_id)
        if mine is not None and mine.get("decision_id") == decision_id:
            return "again", current
        if mine is None and current.requester is not None and current.requester.slack_user_id == voter.user_id:
            return "requester", current
        return "already", current

    def _start_votes(self, ref: JobRef) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression="SET votes = :none",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(votes)",
                ExpressionAttributeValues=_values(none={}),
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def _votes_of(self, ref: JobRef) -> dict[str, Any]:
        item = self._db.get_item(TableName=self._table, Key=self._key(ref), ConsistentRead=True).get("Item") or {}
        votes = _de.deserialize(item["votes"]) if "votes" in item else {}
        return votes if isinstance(votes, dict) else {}

    def put_requester(self, ref: JobRef, requester: Requester, now: datetime) -> bool:
        """Keep who created the job beside its request (which may not exist yet); the first answer wins."""
        data = requester.model_dump(mode="json", exclude_none=True)
        item = {k: _ser.serialize(v) for k, v in data.items()}
        item |= {
            "pk": _ser.serialize(ref.key),
            "sk": _ser.serialize(REQUESTER_SK),
            "expires_at": _ser.serialize(int((now + self._ttl).timestamp())),
        }
        if requester.slack_user_id:  # listed under its creator: "Your jobs" on the Home tab
            item |= {
                "listed": _ser.serialize(f"{REQUESTER_LISTING}{requester.slack_user_id}"),
                "listed_at": _ser.serialize(due_key(now)),
            }
        try:
            self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def requester_of(self, ref: JobRef) -> Requester | None:
        key = {"pk": _ser.serialize(ref.key), "sk": _ser.serialize(REQUESTER_SK)}
        item = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        if not item:
            return None
        data = {k: _de.deserialize(v) for k, v in item.items() if k not in ("pk", "sk", "expires_at")}
        return Requester.model_validate(data)

    def set_requester(self, ref: JobRef, requester: Requester, rule: Rule | None) -> ApprovalRequest | None:
        """Record who created the job (and the rule that applies now that it is known), once: the first
        answer wins, a later one (the event after the history, or a redelivery) changes nothing."""
        names = {"#r": "requester"}
        update = "SET #r = :requester"
        values: dict[str, Any] = {"requester": requester.model_dump(mode="json", exclude_none=True)}
        if rule is not None:
            update += ", #rule = :rule"
            names["#rule"] = "rule"
            values["rule"] = rule.model_dump(mode="json", exclude_none=True)
        condition = "attribute_exists(pk) AND attribute_not_exists(#r)"
        if rule is not None:  # a rule changes only while nothing is decided under the old one
            condition += " AND #s IN (:posting, :pending)"
            names["#s"] = "state"
            values |= {"posting": RequestState.POSTING.value, "pending": RequestState.PENDING.value}
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_values(**values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            if rule is None:
                return None
            return self.set_requester(ref, requester, None)  # decided meanwhile: keep who, not a new rule
        return self._request(response["Attributes"])

    def record_job_status(self, ref: JobRef, status: str) -> bool:
        """Set the last seen job status; False when it was already that (a repeated status)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression="SET job_status = :status",
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(job_status) OR job_status <> :status)"
                ),
                ExpressionAttributeValues=_values(status=status),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def restore_job_status(self, ref: JobRef, status: str, previous: str | None) -> None:
        """Undo ``record_job_status`` (when showing the change failed), unless another status came since."""
        update = "SET job_status = :previous" if previous is not None else "REMOVE job_status"
        values = {"status": status, **({"previous": previous} if previous is not None else {})}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression=update,
                ConditionExpression="job_status = :status",
                ExpressionAttributeValues=_values(**values),
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    # -- deciding -------------------------------------------------------------------------------

    def claim_decision(
        self, command: DecisionCommand, now: datetime, lease_seconds: int, without_requester: bool = False
    ) -> Claim:
        actor = command.actor
        origin = f"system:{command.origin.source}" if isinstance(command.origin, SystemOrigin) else "slack"
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=self._key(command.job),
                UpdateExpression=(
                    "SET #s = :deciding, decision = :decision, decision_id = :id, decider = :decider, "
                    "decision_reason = :reason, deciding_since = :now, deciding = :one, decision_origin = :origin, "
                    "approved_without_requester = :unknown"
                ),
                # A claim held within its lease is never shared, not even with another delivery of the
                # same click: only a claim whose holder went quiet for the lease can be taken over.
                ConditionExpression="#s = :pending OR (#s = :deciding AND deciding_since < :stale)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=_values(
                    deciding=RequestState.DECIDING.value,
                    pending=RequestState.PENDING.value,
                    decision=command.decision,
                    id=command.decision_id,
                    decider=actor.model_dump(),
                    reason=command.reason,
                    now=_iso(now),
                    stale=_iso(now - timedelta(seconds=lease_seconds)),
                    one=DECIDING,
                    origin=origin,
                    unknown=without_requester,
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return Claim(won=False, request=self.get(command.job))
            raise
        return Claim(won=True, request=self._request(response["Attributes"]))

    def finish_decision(
        self,
        ref: JobRef,
        decision_id: str,
        state: RequestState,
        s3_status: str | None,
        status_update_reason: str | None,
        now: datetime,
        note: str | None = None,
        decider: Actor | None = None,
        decision: DecisionKind | None = None,
        counted: tuple[Actor, ...] = (),
    ) -> ApprovalRequest:
        """Record the outcome of the claim ``decision_id``; raises ClaimLost if that claim is gone.

        ``counted``: a quorum's approvers as the decision names them (the request's approvals from then on).
        """
        decided_by = ", decider = :decider, decision = :decision" if decider and decision else ""
        extra: dict[str, Any] = {"decider": decider.model_dump(), "decision": decision} if decider and decision else {}
        if counted:
            decided_by += ", counted = :counted"
            extra["counted"] = [actor.model_dump() for actor in counted]
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression=(
                    "SET #s = :state, s3_status = :s3, status_update_reason = :sur, decided_at = :now, "
                    f"outcome_note = :note, #k = :decided, #t = :at{decided_by} REMOVE step_claim"
                ),
                ConditionExpression="#s = :deciding AND decision_id = :id",
                ExpressionAttributeNames={"#s": "state", **_KEYS},
                ExpressionAttributeValues=_values(
                    state=state.value,
                    s3=s3_status,
                    sur=status_update_reason,
                    now=_iso(now),
                    note=note,
                    deciding=RequestState.DECIDING.value,
                    id=decision_id,
                    decided=DECIDED,
                    at=due_key(now),
                    **extra,
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise ClaimLost(f"the claim {decision_id} on job {ref.job_id} was taken over") from exc
            raise
        return self._request(response["Attributes"])

    def settle_decision(self, ref: JobRef, decision_id: str) -> None:
        """The decision is recorded, audited and shown: drop it from the index of claims in progress.

        ``finish_decision`` leaves it there, so a decider that dies between recording and auditing is
        found by the reconciliation, which writes what is missing.
        """
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression="REMOVE deciding, deciding_since",
                ConditionExpression="decision_id = :id AND #s IN (:approved, :cancelled)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=_values(
                    id=decision_id,
                    approved=RequestState.APPROVED.value,
                    cancelled=RequestState.CANCELLED.value,
                ),
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def release_decision(self, ref: JobRef, decision_id: str) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression=(
                    "SET #s = :pending REMOVE decision, decision_id, decider, decision_reason, deciding_since, deciding"
                ),
                ConditionExpression="#s = :deciding AND decision_id = :id",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=_values(
                    pending=RequestState.PENDING.value, deciding=RequestState.DECIDING.value, id=decision_id
                ),
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def close(
        self, ref: JobRef, note: str, job_status: str | None, now: datetime, decision_id: str | None = None
    ) -> ApprovalRequest | None:
        """The job moved on outside Slack: no decision can be taken here any more.

        Closes a pending request, or one in ``deciding`` only for the holder of that claim.
        """
        owned = "#s = :pending OR (#s = :deciding AND decision_id = :id)" if decision_id else "#s = :pending"
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression=(
                    "SET #s = :closed, outcome_note = :note, decided_at = :now, job_status = :status, "
                    "#k = :decided, #t = :at REMOVE deciding_since, deciding, step_claim"
                ),
                ConditionExpression=owned,
                ExpressionAttributeNames={"#s": "state", **_KEYS},
                ExpressionAttributeValues=_values(
                    closed=RequestState.CLOSED.value,
                    note=note,
                    now=_iso(now),
                    status=job_status,
                    decided=DECIDED,
                    at=due_key(now),
                    pending=RequestState.PENDING.value,
                    **({"deciding": RequestState.DECIDING.value, "id": decision_id} if decision_id else {}),
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return self.get(ref)
            raise
        return self._request(response["Attributes"])

    # -- lifecycle (reminders, escalation, expiry) -------------------------------------------------

    def due(self, now: datetime, limit: int) -> list[ApprovalRequest]:
        """Up to ``limit`` open requests whose next lifecycle step is due by ``now``, the most overdue first:
        one Query of the state index, which reads only the due items however many requests there are."""
        return self._listed(OPEN, limit, before=due_key(now))

    def open_requests(self, limit: int) -> list[ApprovalRequest]:
        """Up to ``limit`` open requests (pending or deciding), the soonest due first."""
        return self._listed(OPEN, limit)

    def recently_decided(self, limit: int) -> list[ApprovalRequest]:
        """The ``limit`` most recently decided or closed requests, newest first."""
        return self._listed(DECIDED, limit, newest_first=True)

    def jobs_of(self, slack_user_id: str, limit: int) -> list[ApprovalRequest]:
        """Up to ``limit`` requests for jobs this Slack user created, the most recently learnt first."""
        found = self._query_listing(f"{REQUESTER_LISTING}{slack_user_id}", limit, newest_first=True)
        refs = [self._ref_of(item) for item in found]
        return [request for ref in refs if ref is not None and (request := self.get(ref)) is not None]

    def _listed(
        self, listed: str, limit: int, before: str | None = None, newest_first: bool = False
    ) -> list[ApprovalRequest]:
        items = self._query_listing(listed, limit, before=before, newest_first=newest_first)
        return [self._request(item) for item in items if item.get("sk", {}).get("S") == REQUEST_SK]

    def _query_listing(
        self, listed: str, limit: int, before: str | None = None, newest_first: bool = False
    ) -> list[dict[str, Any]]:
        condition = "#k = :listed" + (" AND #t <= :before" if before is not None else "")
        values = {"listed": listed, **({"before": before} if before is not None else {})}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": STATE_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": _KEYS if before is not None else {"#k": _KEYS["#k"]},
            "ExpressionAttributeValues": _values(**values),
            "ScanIndexForward": not newest_first,
            "Limit": min(limit, 100),
        }
        found: list[dict[str, Any]] = []
        while len(found) < limit:
            page = self._db.query(**kwargs)
            found.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit]

    @staticmethod
    def _ref_of(item: dict[str, Any]) -> JobRef | None:
        """The job a record's partition key (``JOB#<account>#<region>#<job id>``) names."""
        parts = item.get("pk", {}).get("S", "").split("#", 3)
        if len(parts) != 4 or parts[0] != "JOB":
            return None
        try:
            return JobRef(account_id=parts[1], region=parts[2], job_id=parts[3])
        except ValueError:
            return None

    def claim_step(self, request: ApprovalRequest, claim_id: str, lease_until: datetime) -> ApprovalRequest | None:
        """Take the request's due step (one conditional write): while it is pending and its step is still the
        one seen, move its due time to the end of the lease (a holder that dies leaves it due again then).
        None when another sweep took it, or the request was decided or moved on meanwhile."""
        if request.due_at is None:
            return None
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=self._key(request.job),
                UpdateExpression="SET #t = :lease, step_claim = :id",
                ConditionExpression="#s = :pending AND #k = :open AND #t = :seen",
                ExpressionAttributeNames={"#s": "state", **_KEYS},
                ExpressionAttributeValues=_values(
                    lease=due_key(lease_until),
                    id=claim_id,
                    pending=RequestState.PENDING.value,
                    open=OPEN,
                    seen=due_key(request.due_at),
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return self._request(response["Attributes"])

    def finish_step(self, ref: JobRef, claim_id: str, reminders_sent: int, next_due: datetime | None) -> bool:
        """The claimed step is done: count the reminder and schedule the next step (None: no step left; the
        request stays listed open). False when the claim is no longer this one's (taken over after its lease)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression="SET reminders_sent = :sent, #t = :next REMOVE step_claim",
                ConditionExpression="step_claim = :id AND #k = :open",
                ExpressionAttributeNames=_KEYS,
                ExpressionAttributeValues=_values(
                    id=claim_id,
                    sent=reminders_sent,
                    open=OPEN,
                    next=due_key(next_due) if next_due is not None else NEVER,
                ),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def release_step(self, ref: JobRef, claim_id: str, due_at: datetime) -> None:
        """Give the claimed step back, due at ``due_at`` (now: the next sweep tries again)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression="SET #t = :due REMOVE step_claim",
                ConditionExpression="step_claim = :id AND #k = :open",
                ExpressionAttributeNames=_KEYS,
                ExpressionAttributeValues=_values(id=claim_id, due=due_key(due_at), open=OPEN),
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def mark_expired(self, ref: JobRef, claim_id: str, now: datetime) -> ApprovalRequest | None:
        """The claimed expiry left the request pending (rule action ``leave`` with its buttons kept): record
        when it expired; it stays listed open with no step left. None when the claim is no longer this one's."""
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression="SET expired_at = :now, #t = :never REMOVE step_claim",
                ConditionExpression="step_claim = :id AND #s = :pending AND #k = :open",
                ExpressionAttributeNames={"#s": "state", **_KEYS},
                ExpressionAttributeValues=_values(
                    id=claim_id, now=_iso(now), never=NEVER, pending=RequestState.PENDING.value, open=OPEN
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return self._request(response["Attributes"])

    def defer_step(self, request: ApprovalRequest, until: datetime) -> None:
        """A due request that is not pending: one with a decision under way is looked at again at ``until``;
        one decided or closed (every decision lists it as decided already) is left alone."""
        if request.due_at is None or request.state != RequestState.DECIDING:
            return
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(request.job),
                UpdateExpression="SET #t = :until",
                ConditionExpression="#s = :deciding AND #k = :open AND #t = :seen",
                ExpressionAttributeNames={"#s": "state", **_KEYS},
                ExpressionAttributeValues=_values(
                    until=due_key(until),
                    deciding=RequestState.DECIDING.value,
                    open=OPEN,
                    seen=due_key(request.due_at),
                ),
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    # -- audit ----------------------------------------------------------------------------------

    def put_audit(self, record: AuditRecord, key: str | None = None) -> None:
        """Filed under the job; a refused request that names no valid job goes under its day.

        With ``key`` (a fact's own identity, e.g. the decision's ID) the write is idempotent: a retry
        that records the same fact again leaves the one record there is.
        """
        data = record.to_log()
        if record.job_id and record.account_id and record.region:
            pk = JobRef(account_id=record.account_id, region=record.region, job_id=record.job_id).key
        else:
            pk = f"{UNATTRIBUTED_PREFIX}{str(data['time'])[:10]}"
        try:
            self._db.put_item(
                TableName=self._audit_table,
                Item={
                    "pk": _ser.serialize(pk),
                    "sk": _ser.serialize(self._audit_sk(data, key)),
                    "event_type": _ser.serialize(record.event_type.value),
                    "record": _ser.serialize(data),
                },
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if not (key and _conditional_failed(exc)):
                raise

    @staticmethod
    def _audit_sk(data: dict[str, Any], key: str | None) -> str:
        """``AUDIT#<key>`` for a fact with an identity (written once however often it is retried),
        else ``AUDIT#<time>#<random>``. ``history`` orders records by their time either way."""
        return f"{AUDIT_PREFIX}{key}" if key else f"{AUDIT_PREFIX}{data['time']}#{uuid.uuid4().hex[:12]}"

    # -- mapping --------------------------------------------------------------------------------

    @staticmethod
    def _key(ref: JobRef) -> dict[str, Any]:
        return {"pk": _ser.serialize(ref.key), "sk": _ser.serialize(REQUEST_SK)}

    def _item(self, request: ApprovalRequest) -> dict[str, Any]:
        data = {k: v for k, v in request.model_dump(mode="json").items() if v is not None}
        data.pop("claimed_at", None)  # written by claim_posting alone, in _iso's sortable form
        data.pop("approvals", None)  # read from the votes map, which add_vote alone writes
        data["votes"] = {}
        data["pk"] = request.job.key
        data["sk"] = REQUEST_SK
        data.pop("due_at", None)  # listed (open, and when due) by mark_posted alone, once the message exists
        data["expires_at"] = int((request.requested_at + self._ttl).timestamp())
        return {k: _ser.serialize(v) for k, v in data.items()}

    @staticmethod
    def _request(item: dict[str, Any]) -> ApprovalRequest:
        data = {k: _numbers(_de.deserialize(v)) for k, v in item.items()}
        listed, listed_at = data.get("listed"), data.get("listed_at")
        data["due_at"] = listed_at if listed == OPEN and listed_at != NEVER else None
        for key in _INDEX_ONLY:
            data.pop(key, None)
        votes = data.pop("votes", None) or {}
        ordered = sorted(votes.values(), key=lambda vote: (str(vote.get("at")), str(vote.get("user_id"))))
        data["approvals"] = [
            {"user_id": vote["user_id"], "name": vote.get("name") or vote["user_id"], "team_id": vote.get("team_id")}
            for vote in ordered
        ]
        rule = data.get("rule") or {}
        creator = (data.get("requester") or {}).get("slack_user_id")
        if creator and not rule.get("allow_self_approval"):
            # A vote cast before its voter was known to have created the job never counts.
            data["approvals"] = [vote for vote in data["approvals"] if vote["user_id"] != creator]
        counted = data.pop("counted", None)
        if counted:
            # Decided: the approvers the decision names (votes that came in beside them, or that no longer
            # counted, stay in the item and the audit).
            data["approvals"] = counted
        if data.get("object_count") is not None:
            data["object_count"] = int(data["object_count"])
        return ApprovalRequest.model_validate(data)
