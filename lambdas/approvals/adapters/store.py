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


class DynamoRequestStore:
    """Implements ``domain.ports.RequestStore`` on a DynamoDB client (passed in)."""

    def __init__(self, client: Any, table_name: str, audit_table_name: str, ttl_days: int = 120) -> None:
        self._db = client
        self._table = table_name
        self._audit_table = audit_table_name
        self._ttl = timedelta(days=ttl_days)

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

    def mark_posted(self, ref: JobRef, channel: str, message_ts: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=self._key(ref),
            UpdateExpression="SET #s = :pending, channel = :channel, message_ts = :ts REMOVE claimed_at",
            ConditionExpression="#s = :posting",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=_values(
                pending=RequestState.PENDING.value, posting=RequestState.POSTING.value, channel=channel, ts=message_ts
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

    def adopt_posted(self, ref: JobRef, channel: str, message_ts: str, claimed_at: datetime | None) -> bool:
        """Record a message an earlier delivery posted, if the claim is still the one that was seen expired."""
        condition = "#s = :posting AND " + ("claimed_at = :seen" if claimed_at else "attribute_not_exists(claimed_at)")
        values: dict[str, Any] = {"pending": RequestState.PENDING.value, "posting": RequestState.POSTING.value}
        values |= {"channel": channel, "ts": message_ts}
        if claimed_at:
            values["seen"] = _iso(claimed_at)
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(ref),
                UpdateExpression="SET #s = :pending, channel = :channel, message_ts = :ts REMOVE claimed_at",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "state"},
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
                    f"outcome_note = :note{decided_by}"
                ),
                ConditionExpression="#s = :deciding AND decision_id = :id",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=_values(
                    state=state.value,
                    s3=s3_status,
                    sur=status_update_reason,
                    now=_iso(now),
                    note=note,
                    deciding=RequestState.DECIDING.value,
                    id=decision_id,
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
                    "SET #s = :closed, outcome_note = :note, decided_at = :now, job_status = :status "
                    "REMOVE deciding_since, deciding"
                ),
                ConditionExpression=owned,
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=_values(
                    closed=RequestState.CLOSED.value,
                    note=note,
                    now=_iso(now),
                    status=job_status,
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
        data["expires_at"] = int((request.requested_at + self._ttl).timestamp())
        return {k: _ser.serialize(v) for k, v in data.items()}

    @staticmethod
    def _request(item: dict[str, Any]) -> ApprovalRequest:
        data = {k: _numbers(_de.deserialize(v)) for k, v in item.items()}
        for key in ("pk", "sk", "expires_at", "deciding"):
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
