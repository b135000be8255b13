"""A local stand-in for CloudTrail's event history: LookupEvents over HTTP, as strict as the real one.

moto's CloudTrail has trails but no LookupEvents, so the sandbox has its own. It speaks CloudTrail's
JSON 1.1 protocol (``X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents``),
so the real boto3 ``cloudtrail`` client talks to it, and keeps the real rules:

- at most one lookup attribute (InvalidLookupAttributesException), of the documented keys, value 1-2000
  characters; MaxResults 1-50 (InvalidMaxResultsException), 50 by default; StartTime after EndTime is an
  InvalidTimeRangeException; EventCategory only ``insight`` (and this history holds no Insights events);
- events of the caller's account and region only, from the last 90 days, newest first; a NextToken works
  only with the parameters it was issued for (InvalidNextTokenException);
- 2 calls per second per account and region; the next is a ThrottlingException (HTTP 400);
- an event recorded at t is visible from t + ``visibility_delay`` (CloudTrail lags minutes), by ``clock``.

``record(cloudtrail_record)`` adds a CloudTrail record (the S3 Batch emulator calls it for CreateJob), and
``create_job_record`` builds one in the documented shape. Fault hooks: ``throttle_next(n)``, ``fail_next(n)``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

from sandbox._http import LoopbackService

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
CONTENT_TYPE = "application/x-amz-json-1.1"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
MANAGEMENT_EVENT_VERSION = "1.09"  # CloudTrail's record format version
API_CALL_DETAIL_TYPE = "AWS API Call via CloudTrail"  # how EventBridge names an API call a trail recorded
RETENTION = timedelta(days=90)
CALLS_PER_SECOND = 2
MAX_RESULTS = 50
MAX_ATTRIBUTE_VALUE = 2000
LOOKUP_KEYS = (
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
)
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/")
_ACCOUNT = re.compile(r"[0-9]{12}")


class CloudTrailError(Exception):
    """An error as CloudTrail answers it: the code botocore reads from ``__type``, a message and the status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class LookupCall:
    """One LookupEvents request the stand-in answered: whose, its parameters, and the error code if any."""

    account_id: str
    region: str
    params: dict[str, Any]
    error: str | None
    returned: int


@dataclass(frozen=True)
class _Stored:
    seq: int
    account_id: str
    region: str
    event_time: datetime
    visible_at: datetime
    record: dict[str, Any]

    def event(self) -> dict[str, Any]:
        """LookupEvents' ``Event`` (boto3 shape, EventTime a datetime)."""
        record = self.record
        raw_identity = record.get("userIdentity")
        identity = raw_identity if isinstance(raw_identity, Mapping) else {}
        event: dict[str, Any] = {
            "EventId": record["eventID"],
            "EventName": record["eventName"],
            "ReadOnly": "true" if record.get("readOnly") else "false",
            "EventTime": self.event_time,
            "EventSource": record["eventSource"],
            "Resources": _resources(record),
            "CloudTrailEvent": json.dumps(record),
        }
        access_key = identity.get("accessKeyId")
        if isinstance(access_key, str) and access_key:
            event["AccessKeyId"] = access_key
        username = _username(identity)
        if username:
            event["Username"] = username
        return event


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _username(identity: Mapping[str, Any]) -> str | None:
    """What LookupEvents shows as Username: the user name, a role session's name, root, or the service."""
    kind = identity.get("type")
    raw = identity.get("arn")
    arn = raw if isinstance(raw, str) else ""
    if kind == "AssumedRole" and "/" in arn:
        return str(arn.rsplit("/", 1)[-1])
    if kind == "Root":
        return "root"
    if kind == "AWSService" and isinstance(identity.get("invokedBy"), str):
        return str(identity["invokedBy"])
    name = identity.get("userName")
    if isinstance(name, str) and name:
        return name
    if kind == "FederatedUser" and "/" in arn:
        return str(arn.rsplit("/", 1)[-1])
    return None


def _resources(record: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    for resource in record.get("resources") or []:
        if isinstance(resource, Mapping):
            item = {}
            if isinstance(resource.get("type"), str):
                item["ResourceType"] = resource["type"]
            if isinstance(resource.get("ARN"), str):
                item["ResourceName"] = resource["ARN"]
            out.append(item)
    return out


def create_job_record(
    job_id: str,
    *,
    principal_arn: str,
    principal_type: str = "AssumedRole",
    account_id: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    event_time: datetime | None = None,
    session_issuer_arn: str | None = None,
    access_key_id: str = "ASIAEXAMPLESANDBOX01",
    request_parameters: Mapping[str, Any] | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """A CloudTrail record of s3:CreateJob in the documented record format (event version 1.09).

    For an assumed role, ``principal_arn`` is the session ARN (``arn:aws:sts::…:assumed-role/Role/session``)
    and the issuer defaults to the role's ARN. For ``AWSService`` the principal is the service's name
    (``batchoperations.s3.amazonaws.com``), written as ``invokedBy``.
    """
    moment = event_time or _utcnow()
    identity: dict[str, Any] = {"type": principal_type, "accountId": account_id}
    if principal_type == "AWSService":
        identity["invokedBy"] = principal_arn
    else:
        identity["arn"] = principal_arn
        identity["principalId"] = "AIDA" + hashlib.sha256(principal_arn.encode()).hexdigest()[:17].upper()
        identity["accessKeyId"] = access_key_id
    if principal_type == "IAMUser":
        identity["userName"] = principal_arn.rsplit("/", 1)[-1]
    if principal_type == "AssumedRole":
        parts = principal_arn.split(":", 5)
        role = parts[5].split("/")[1] if len(parts) == 6 and parts[5].count("/") >= 2 else "role"
        partition = parts[1] if len(parts) == 6 else "aws"
        issuer = session_issuer_arn or f"arn:{partition}:iam::{account_id}:role/{role}"
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROA" + hashlib.sha256(issuer.encode()).hexdigest()[:17].upper(),
                "arn": issuer,
                "accountId": account_id,
                "userName": issuer.rsplit("/", 1)[-1],
            },
            "attributes": {"creationDate": _iso_z(moment - timedelta(minutes=5)), "mfaAuthenticated": "false"},
        }
    return api_call_record(
        identity,
        event_time=moment,
        account_id=account_id,
        region=region,
        request_parameters=dict(request_parameters or {"accountId": account_id}),
        job_id=None if error_code else job_id,
        error_code=error_code,
        error_message=f"{error_code} (sandbox)" if error_code else None,
        source_ip_address="192.0.2.10",
        user_agent="aws-cli/2.17.0 md/command#s3control.create-job",
        request_id=uuid.uuid4().hex[:16].upper(),
    )


def api_call_record(
    identity: Mapping[str, Any],
    *,
    event_time: datetime,
    account_id: str,
    region: str,
    request_parameters: Mapping[str, Any],
    job_id: str | None,
    error_code: str | None,
    error_message: str | None,
    source_ip_address: str,
    user_agent: str,
    request_id: str,
) -> dict[str, Any]:
    """CloudTrail's record of one s3:CreateJob call by ``identity`` (its ``userIdentity``), in the documented
    record format: what the event history holds and what EventBridge carries as ``detail``."""
    record: dict[str, Any] = {
        "eventVersion": MANAGEMENT_EVENT_VERSION,
        "userIdentity": copy.deepcopy(dict(identity)),
        "eventTime": _iso_z(event_time),
        "eventSource": "s3.amazonaws.com",
        "eventName": "CreateJob",
        "awsRegion": region,
        "sourceIPAddress": source_ip_address,
        "userAgent": user_agent,
    }
    if error_code is not None:
        record["errorCode"] = error_code
        record["errorMessage"] = error_message or error_code
    record.update(
        {
            "requestParameters": dict(request_parameters),
            "responseElements": None if job_id is None else {"jobId": job_id},
            "requestID": request_id,
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account_id,
            "eventCategory": "Management",
        }
    )
    return record


def api_call_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """The EventBridge event ("AWS API Call via CloudTrail") that carries ``record`` where a trail records it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": API_CALL_DETAIL_TYPE,
        "source": "aws.s3",
        "account": record.get("recipientAccountId", DEFAULT_ACCOUNT),
        "time": record.get("eventTime", _iso_z(_utcnow())),
        "region": record.get("awsRegion", DEFAULT_REGION),
        "resources": [],
        "detail": copy.deepcopy(dict(record)),
    }


class CloudTrailHistory:
    """The event history of some accounts and regions, in memory, with LookupEvents' rules. Thread-safe.

    ``clock`` is the wall clock (event visibility and the 90 days); ``rate_clock`` is what the 2-per-second
    limit counts in (seconds; ``time.monotonic`` unless a test moves time itself).
    """

    def __init__(
        self,
        *,
        account_id: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        visibility_delay: timedelta | float = 0.0,
        clock: Callable[[], datetime] = _utcnow,
        rate_clock: Callable[[], float] = time.monotonic,
        calls_per_second: int = CALLS_PER_SECOND,
        accounts_by_access_key: Mapping[str, str] | None = None,
        resolve_account: Callable[[str], str | None] | None = None,
        may_lookup: Callable[[str], bool] | None = None,
    ) -> None:
        self.account_id = account_id
        # A key ``accounts_by_access_key`` does not list: whose is it (the sandbox asks moto's STS, for role
        # sessions it issued), or None for the default account.
        self.resolve_account = resolve_account
        # Whether the key's holder is allowed cloudtrail:LookupEvents (None: everyone is); refused is AccessDenied.
        self.may_lookup = may_lookup
        self._resolved: dict[str, str | None] = {}
        self.region = region
        self.visibility_delay = (
            visibility_delay if isinstance(visibility_delay, timedelta) else timedelta(seconds=visibility_delay)
        )
        self.clock = clock
        self.rate_clock = rate_clock
        self.calls_per_second = calls_per_second
        self.accounts_by_access_key = dict(accounts_by_access_key or {})
        self.calls: list[LookupCall] = []
        self._lock = threading.RLock()
        self._events: list[_Stored] = []
        self._seq = 0
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self._throttle = 0
        self._failures: list[tuple[str, int]] = []

    # -- recording -----------------------------------------------------------------------------

    def record(self, cloudtrail_record: Mapping[str, Any]) -> str:
        """Add a CloudTrail record to its account's and region's history; returns its eventID.

        An EventBridge event ("AWS API Call via CloudTrail") is taken too: its ``detail`` is the record. The
        record becomes visible to LookupEvents ``visibility_delay`` after now (by ``clock``).
        """
        record = dict(cloudtrail_record)
        if "detail-type" in record and isinstance(record.get("detail"), Mapping):
            record = dict(record["detail"])
        for name in ("eventName", "eventSource"):
            if not isinstance(record.get(name), str) or not record[name]:
                raise ValueError(f"a CloudTrail record needs {name}")
        record = copy.deepcopy(record)
        record.setdefault("eventID", str(uuid.uuid4()))
        raw_identity = record.get("userIdentity")
        identity = raw_identity if isinstance(raw_identity, Mapping) else {}
        account = record.get("recipientAccountId") or identity.get("accountId") or self.account_id
        region = record.get("awsRegion") or self.region
        if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
            raise ValueError("a CloudTrail record's account must be 12 digits")
        with self._lock:
            now = self.clock()
            moment = _record_time(record.get("eventTime")) or now
            record.setdefault("eventTime", _iso_z(moment))
            record.setdefault("recipientAccountId", account)
            record.setdefault("awsRegion", region)
            self._seq += 1
            self._events.append(_Stored(self._seq, account, str(region), moment, now + self.visibility_delay, record))
            return str(record["eventID"])

    def records(self) -> list[dict[str, Any]]:
        """Every record held, visible or not, oldest first."""
        with self._lock:
            return [copy.deepcopy(stored.record) for stored in self._events]

    # -- fault hooks ---------------------------------------------------------------------------

    def throttle_next(self, count: int = 1) -> None:
        """The next ``count`` calls answer ThrottlingException (HTTP 400), whatever the rate."""
        with self._lock:
            self._throttle += count

    def fail_next(self, count: int = 1, *, code: str = "InternalFailure", status: int = 500) -> None:
        """The next ``count`` calls answer this error (InternalFailure, HTTP 500, by default)."""
        with self._lock:
            self._failures.extend([(code, status)] * count)

    @property
    def throttled(self) -> int:
        """How many calls were answered ThrottlingException (the injected ones and the rate limit's)."""
        with self._lock:
            return sum(call.error == "ThrottlingException" for call in self.calls)

    # -- LookupEvents --------------------------------------------------------------------------

    def lookup_events(self, account_id: str, region: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """LookupEvents for the caller's account and region; raises CloudTrailError. Records the call."""
        with self._lock:
            try:
                result = self._lookup(account_id, region, params)
            except CloudTrailError as error:
                self.calls.append(LookupCall(account_id, region, copy.deepcopy(dict(params)), error.code, 0))
                raise
            self.calls.append(LookupCall(account_id, region, copy.deepcopy(dict(params)), None, len(result["Events"])))
            return result

    def _lookup(self, account_id: str, region: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if self._throttle > 0:
            self._throttle -= 1
            raise CloudTrailError("ThrottlingException", "Rate exceeded")
        if self._failures:
            code, status = self._failures.pop(0)
            raise CloudTrailError(code, "The sandbox was told to fail this call", status)
        self._take_rate(account_id, region)
        attribute = _attribute(params.get("LookupAttributes"))
        limit = params.get("MaxResults", MAX_RESULTS)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
            raise CloudTrailError("InvalidMaxResultsException", "MaxResults must be from 1 to 50")
        category = params.get("EventCategory")
        if category is not None and category != "insight":
            raise CloudTrailError("InvalidEventCategoryException", "EventCategory must be insight")
        now = self.clock()
        start = _param_time(params, "StartTime") or now - RETENTION
        end = _param_time(params, "EndTime") or now
        if start > end:
            raise CloudTrailError("InvalidTimeRangeException", "Start time must be before end time")
        fingerprint = hashlib.sha256(
            json.dumps(
                [account_id, region, attribute, params.get("StartTime"), params.get("EndTime"), category],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()[:24]
        after = _read_token(params["NextToken"], fingerprint) if params.get("NextToken") is not None else None
        matching = [
            stored
            for stored in self._events
            if stored.account_id == account_id
            and stored.region == region
            and stored.visible_at <= now
            and stored.event_time >= now - RETENTION
            and start <= stored.event_time <= end
            and category is None  # the history holds management events only, no Insights events
            and (attribute is None or _matches(stored, attribute))
        ]
        matching.sort(key=lambda stored: (stored.event_time, stored.seq), reverse=True)
        if after is not None:
            matching = [stored for stored in matching if (stored.event_time.timestamp(), stored.seq) < after]
        page = matching[:limit]
        result: dict[str, Any] = {"Events": [stored.event() for stored in page]}
        if len(matching) > limit:
            last = page[-1]
            result["NextToken"] = _make_token(fingerprint, last.event_time.timestamp(), last.seq)
        return result

    def _take_rate(self, account_id: str, region: str) -> None:
        """At most ``calls_per_second`` calls in any second per account and region (a throttled call does not
        count)."""
        now = self.rate_clock()
        window = self._recent.setdefault((account_id, region), deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.calls_per_second:
            raise CloudTrailError("ThrottlingException", "Rate exceeded")
        window.append(now)

    def account_for(self, access_key: str | None) -> str:
        """The account whose history a caller reads: its key's (``accounts_by_access_key``, then
        ``resolve_account``, once per key), or ``account_id``."""
        if access_key in self.accounts_by_access_key:
            return self.accounts_by_access_key[access_key]
        if not access_key or self.resolve_account is None:
            return self.account_id
        with self._lock:
            if access_key in self._resolved:
                return self._resolved[access_key] or self.account_id
        account = self.resolve_account(access_key)
        with self._lock:
            self._resolved[access_key] = account
        return account or self.account_id


def _attribute(value: object) -> tuple[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise CloudTrailError("InvalidLookupAttributesException", "LookupAttributes must be a list")
    if not value:
        return None
    if len(value) > 1:
        raise CloudTrailError(
            "InvalidLookupAttributesException", "You can specify only one lookup attribute in a request"
        )
    item = value[0]
    key = item.get("AttributeKey") if isinstance(item, Mapping) else None
    text = item.get("AttributeValue") if isinstance(item, Mapping) else None
    if key not in LOOKUP_KEYS:
        raise CloudTrailError(
            "InvalidLookupAttributesException", f"AttributeKey must be one of {', '.join(LOOKUP_KEYS)}"
        )
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_ATTRIBUTE_VALUE:
        raise CloudTrailError("InvalidLookupAttributesException", "AttributeValue must be 1 to 2000 characters")
    return str(key), text


def _matches(stored: _Stored, attribute: tuple[str, str]) -> bool:
    key, value = attribute
    event = stored.event()
    if key in ("ResourceType", "ResourceName"):
        return any(resource.get(key) == value for resource in event["Resources"])
    return bool(event.get(key) == value)


def _param_time(params: Mapping[str, Any], name: str) -> datetime | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CloudTrailError("SerializationException", f"{name} must be a timestamp (seconds since the epoch)")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise CloudTrailError("InvalidTimeRangeException", f"{name} is out of range") from exc


def _record_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _make_token(fingerprint: str, after_time: float, after_seq: int) -> str:
    raw = json.dumps({"f": fingerprint, "t": after_time, "s": after_seq}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _read_token(token: object, fingerprint: str) -> tuple[float, int]:
    try:
        if not isinstance(token, str):
            raise ValueError("not a string")
        data = json.loads(base64.b64decode(token, validate=True))
        if data["f"] != fingerprint:
            raise ValueError("issued for other parameters")
        return float(data["t"]), int(data["s"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise CloudTrailError(
            "InvalidNextTokenException", "Invalid token or token that was previously used with different parameters"
        ) from exc


# ------------------------------------------------------------------------------------------------
# The HTTP server


class CloudTrailStandIn(LoopbackService):
    """CloudTrail's LookupEvents on a loopback port, backed by a ``CloudTrailHistory``.

    Point a boto3 ``cloudtrail`` client at ``url`` (``endpoint_url``, or ``AWS_ENDPOINT_URL_CLOUDTRAIL``). The
    region is the one the request was signed for; the account is ``history.account_for(access key)``. Any
    other operation answers UnknownOperationException. Signatures are not checked, but must be present.
    """

    thread_name = "cloudtrail-standin"

    def __init__(self, history: CloudTrailHistory | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.history = history or CloudTrailHistory()
        super().__init__(host, port, _make_handler(self.history))

    def record(self, cloudtrail_record: Mapping[str, Any]) -> str:
        """``history.record``: what the S3 Batch emulator's management-event hook calls."""
        return self.history.record(cloudtrail_record)


def _make_handler(history: CloudTrailHistory) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "CloudTrailStandIn"
        sys_version = ""
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            request_id = str(uuid.uuid4())
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                result = self._answer(body)
            except CloudTrailError as error:
                self._send(error.status, {"__type": error.code, "message": error.message}, request_id)
                return
            self._send(200, result, request_id)

        def do_GET(self) -> None:
            self._send(404, {"__type": "UnknownOperationException", "message": "POST only"}, str(uuid.uuid4()))

        def _answer(self, body: bytes) -> dict[str, Any]:
            target = self.headers.get("X-Amz-Target", "")
            if not target.startswith(TARGET_PREFIX):
                raise CloudTrailError("UnknownOperationException", f"Unknown target {target!r}")
            operation = target[len(TARGET_PREFIX) :]
            if operation != "LookupEvents":
                raise CloudTrailError("UnknownOperationException", f"The sandbox does not implement {operation}")
            authorization = self.headers.get("Authorization", "")
            credential = CREDENTIAL.search(authorization)
            if credential is None:
                raise CloudTrailError("MissingAuthenticationTokenException", "Missing Authentication Token", 400)
            if self.headers.get("Content-Type", "").split(";")[0].strip() != CONTENT_TYPE:
                raise CloudTrailError("SerializationException", f"Content-Type must be {CONTENT_TYPE}")
            try:
                params = json.loads(body or b"{}")
            except ValueError as exc:
                raise CloudTrailError("SerializationException", "The body is not JSON") from exc
            if not isinstance(params, dict):
                raise CloudTrailError("SerializationException", "The body must be a JSON object")
            access_key, region = credential.group(1), credential.group(2)
            if history.may_lookup is not None and not history.may_lookup(access_key):
                raise CloudTrailError(
                    "AccessDeniedException", "User is not authorized to perform: cloudtrail:LookupEvents", 400
                )
            result = history.lookup_events(history.account_for(access_key), region, params)
            for event in result["Events"]:
                event["EventTime"] = event["EventTime"].timestamp()
            return result

        def _send(self, status: int, body: dict[str, Any], request_id: str) -> None:
            raw = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("x-amzn-RequestId", request_id)
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _Handler


__all__ = [
    "CloudTrailError",
    "CloudTrailHistory",
    "CloudTrailStandIn",
    "LookupCall",
    "api_call_event",
    "api_call_record",
    "create_job_record",
]
