"""A local stand-in for S3 Batch Operations jobs: the job state machine, its events and the wire API.

No AWS emulator implements S3 Batch Operations jobs, so the sandbox has its own:

- ``JobStore`` holds jobs in memory and applies the documented rules (CreateJob validation and
  idempotency, the status lifecycle, UpdateJobStatus, DescribeJob, ListJobs, and the job's tag set:
  GetJobTagging, PutJobTagging, DeleteJobTagging). Every status change
  becomes an EventBridge event in the CloudTrail service-event shape, delivered to listeners by one
  worker thread, with hooks to lose or duplicate events and to delay, throttle or break API calls.
- ``S3ControlEmulator`` serves the store over HTTP in S3 Control's REST-XML protocol, so the real
  boto3 ``s3control`` client talks to it (through ``sandbox.proxy``, because boto3 always puts
  ``{AccountId}.`` in front of the endpoint host).

Who created a job: every CreateJob call is a CloudTrail management event. The store records the
caller's ``userIdentity`` on the job (over HTTP, from the SigV4 access key through ``principals``), hands
every CreateJob record to ``on_management_event`` (the account's event history, trail or not) and, where
a trail records management events (``trail_enabled``), puts it on the bus as EventBridge delivers it:
``detail-type "AWS API Call via CloudTrail"``, before the job's JobCreated event. Calls that fail are
recorded too, with ``errorCode`` and ``errorMessage`` and no ``responseElements``, as CloudTrail logs them.
DescribeJob, like the real one, does not say who created the job, nor return its tags (GetJobTagging does).

Accounts and regions: a job belongs to one account and one region (the region the request was signed for), and is
known by both with its ID, so one ID in two accounts is two jobs (``use_job_id`` gives the next job of an account a
chosen ID, sandbox-only). Over HTTP every operation's caller must be of the request's account (``x-amz-account-id``)
or it is AccessDenied (403), and a job of another region is NotFound. A caller ``resolve_caller`` finds (a role
session moto's STS issued, for example the spoke role's) may do only what its role's policies (``permissions_for``)
allow, on the job's ARN in that region (``sandbox.iam`` evaluates them).

Requests and responses are read and written from botocore's own s3control model, so the XML shapes
are the ones the real client sends and parses.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import math
import queue
import re
import threading
import time
import unicodedata
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.model import ServiceModel, Shape

from sandbox._http import is_loopback
from sandbox.cloudtrail import API_CALL_DETAIL_TYPE, api_call_event, api_call_record

logger = logging.getLogger(__name__)

XML_NAMESPACE = "http://awss3control.amazonaws.com/doc/2018-08-20/"
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
DEFAULT_REGION = "us-east-1"
DEFAULT_OBJECT_COUNT = 1200
SUSPENDED_CAUSE = "AWAITING_CONFIRMATION"
SUSPENDED_JOB_LIFETIME = timedelta(days=30)

STATUSES = (
    "New",
    "Preparing",
    "Suspended",
    "Ready",
    "Active",
    "Pausing",
    "Paused",
    "Completing",
    "Complete",
    "Failing",
    "Failed",
    "Cancelling",
    "Cancelled",
)
TERMINAL_STATUSES = frozenset({"Complete", "Failed", "Cancelled"})
# UpdateJobStatus(Cancelled) ends these at once; a running job goes through Cancelling first.
CANCEL_AT_ONCE = frozenset({"New", "Preparing", "Suspended", "Ready"})
CANCEL_VIA_CANCELLING = frozenset({"Active", "Pausing", "Paused"})
OPERATIONS = (
    "CreateJob",
    "DescribeJob",
    "ListJobs",
    "UpdateJobStatus",
    "GetJobTagging",
    "PutJobTagging",
    "DeleteJobTagging",
)
# Operations whose successful response has an empty body (HTTP 200, no XML).
EMPTY_RESPONSES = frozenset({"PutJobTagging", "DeleteJobTagging"})

ACCOUNT_ID = re.compile(r"[0-9]{12}")  # matched whole (fullmatch), ASCII digits only, as S3 Control does
JOB_ID = re.compile(r"[A-Za-z0-9_-]{5,36}")
ROLE_ARN = re.compile(r"^arn:[^:]+:iam::\d{12}:role/.+$")
S3_ARN = re.compile(r"^arn:[^:]+:s3:.*$")
CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
CREDENTIAL_KEY = re.compile(r"Credential=([A-Za-z0-9]+)/")
IDENTITY_TYPES = frozenset({"IAMUser", "AssumedRole", "FederatedUser", "Root", "AWSService", "AWSAccount"})
_CALLER_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<resource>root|[a-z-]+/.+)$"
)
MAX_PRIORITY = 2_147_483_647
MAX_JOB_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
# S3Tag's Key and Value pattern, ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$: letters, separators, numbers and these.
TAG_PUNCTUATION = frozenset("_.:/=+-@")


class S3ControlError(Exception):
    """An S3 Control error: the error code the client sees, its message and the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _bad_request(message: str) -> S3ControlError:
    return S3ControlError("BadRequestException", message, 400)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso_z(moment: datetime, *, millis: bool = False) -> str:
    moment = moment.astimezone(UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def job_arn(region: str, account_id: str, job_id: str) -> str:
    return f"arn:{_partition(region)}:s3:{region}:{account_id}:job/{job_id}"


def _stable_id(prefix: str, seed: str, length: int = 17) -> str:
    """An IAM-style unique ID (``AIDA…``, ``AROA…``, ``AKIA…``) that is the same for the same seed."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, seed).hex.upper()
    return prefix + digest[:length]


def identity_from_arn(
    arn: str,
    *,
    access_key_id: str | None = None,
    region: str = DEFAULT_REGION,
    session_created: datetime | None = None,
) -> dict[str, Any]:
    """A plausible CloudTrail ``userIdentity`` for a caller's ARN.

    ``…:iam::ACCT:user/NAME`` is an IAMUser, ``…:sts::ACCT:assumed-role/ROLE/SESSION`` an AssumedRole
    (its ``sessionContext.sessionIssuer`` is the role; an IAM Identity Center role ``AWSReservedSSO_…``
    lives under the path ``aws-reserved/sso.amazonaws.com/``), ``…:sts::ACCT:federated-user/NAME`` a
    FederatedUser and ``…:iam::ACCT:root`` the account's Root. A role ARN is not a caller: it raises
    ValueError, as does anything else.
    """
    match = _CALLER_ARN.match(arn)
    if match is None:
        raise ValueError(f"not a caller ARN: {arn!r}")
    partition, service, account, resource = match["partition"], match["service"], match["account"], match["resource"]
    kind, _, rest = resource.partition("/")
    created = _iso_z(session_created or _utcnow())
    if service == "iam" and resource == "root":
        identity: dict[str, Any] = {"type": "Root", "principalId": account, "arn": arn, "accountId": account}
        key_prefix = "AKIA"
    elif service == "iam" and kind == "user":
        identity = {
            "type": "IAMUser",
            "principalId": _stable_id("AIDA", arn),
            "arn": arn,
            "accountId": account,
            "userName": rest.rsplit("/", 1)[-1],
        }
        key_prefix = "AKIA"
    elif service == "sts" and kind == "assumed-role" and rest.count("/") == 1:
        role_name, session_name = rest.split("/")
        path = ""
        if role_name.startswith("AWSReservedSSO_"):
            path = "aws-reserved/sso.amazonaws.com/" + ("" if region == "us-east-1" else f"{region}/")
        role_arn = f"arn:{partition}:iam::{account}:role/{path}{role_name}"
        role_id = _stable_id("AROA", role_arn)
        identity = {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session_name}",
            "arn": arn,
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": role_arn,
                    "accountId": account,
                    "userName": role_name,
                },
                "attributes": {"creationDate": created, "mfaAuthenticated": "false"},
            },
        }
        key_prefix = "ASIA"
    elif service == "sts" and kind == "federated-user" and rest and "/" not in rest:
        issuer_arn = f"arn:{partition}:iam::{account}:user/sandbox"
        identity = {
            "type": "FederatedUser",
            "principalId": f"{account}:{rest}",
            "arn": arn,
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "IAMUser",
                    "principalId": _stable_id("AIDA", issuer_arn),
                    "arn": issuer_arn,
                    "accountId": account,
                    "userName": "sandbox",
                },
                "attributes": {"creationDate": created, "mfaAuthenticated": "false"},
            },
        }
        key_prefix = "ASIA"
    else:
        raise ValueError(f"not a caller ARN (a user, an assumed-role session, a federated user or root): {arn!r}")
    identity["accessKeyId"] = access_key_id if access_key_id is not None else _stable_id(key_prefix, arn, 16)
    return identity


def _identity(value: Mapping[str, Any] | str, *, access_key_id: str | None, region: str) -> dict[str, Any]:
    """A ``userIdentity`` from a dict (checked and copied) or a caller ARN."""
    if isinstance(value, str):
        return identity_from_arn(value, access_key_id=access_key_id, region=region)
    if not isinstance(value, Mapping) or value.get("type") not in IDENTITY_TYPES:
        raise ValueError(f"a userIdentity needs a type, one of {', '.join(sorted(IDENTITY_TYPES))}: {value!r}")
    if not isinstance(value.get("accountId"), str) or not ACCOUNT_ID.fullmatch(value["accountId"]):
        raise ValueError(f"a userIdentity needs a 12-digit accountId: {value!r}")
    identity = copy.deepcopy(dict(value))
    if access_key_id is not None:
        identity.setdefault("accessKeyId", access_key_id)
    return identity


def example_create_job_params(**overrides: Any) -> dict[str, Any]:
    """Valid CreateJob parameters (without AccountId), usable with boto3 and ``JobStore.create_job``.

    A tagging job over a CSV manifest that needs confirmation; override any top-level key.
    """
    params: dict[str, Any] = {
        "ConfirmationRequired": True,
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "reviewed", "Value": "yes"}]}},
        "Report": {
            "Enabled": True,
            "Bucket": "arn:aws:s3:::example-reports",
            "Format": "Report_CSV_20180820",
            "Prefix": "batch-reports",
            "ReportScope": "AllTasks",
        },
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {
                "ObjectArn": "arn:aws:s3:::example-manifests/manifest.csv",
                "ETag": "60e460c9d1046e73f7dde5043ac3ae85",
            },
        },
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batch-operations",
        "Description": "Tag reviewed objects",
        "ClientRequestToken": str(uuid.uuid4()),
    }
    params.update(overrides)
    return params


# --------------------------------------------------------------------------------------------------
# XML <-> dict, driven by botocore's s3control model


@cache
def service_model() -> ServiceModel:
    """botocore's s3control model (loaded once)."""
    return botocore.session.get_session().get_service_model("s3control")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_name(shape: Shape, default: str) -> str:
    return str(shape.serialization.get("name", default))


def _parse_timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = datetime.fromtimestamp(float(text), UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def decode_xml(shape: Shape, node: ET.Element) -> Any:
    """Turn an XML element into the value boto3 would use for ``shape`` (body members only)."""
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        children = list(node)
        for name, member in shape.members.items():
            if member.serialization.get("location"):
                continue
            tag = _xml_name(member, name)
            found = [child for child in children if _local(child.tag) == tag]
            if not found:
                continue
            if member.type_name == "list" and member.serialization.get("flattened"):
                out[name] = [decode_xml(member.member, child) for child in found]
            else:
                out[name] = decode_xml(member, found[0])
        return out
    if kind == "list":
        item = shape.member
        tag = _xml_name(item, "member")
        return [decode_xml(item, child) for child in node if _local(child.tag) == tag]
    if kind == "map":
        key_shape, value_shape = shape.key, shape.value
        result = {}
        for entry in node:
            key_node = next((c for c in entry if _local(c.tag) == _xml_name(key_shape, "key")), None)
            value_node = next((c for c in entry if _local(c.tag) == _xml_name(value_shape, "value")), None)
            if key_node is not None:
                result[key_node.text or ""] = "" if value_node is None else decode_xml(value_shape, value_node)
        return result
    text = node.text or ""
    if kind == "boolean":
        if text.strip() not in ("true", "false"):
            raise ValueError(f"not a boolean: {text!r}")
        return text.strip() == "true"
    if kind in ("integer", "long"):
        return int(text)
    if kind == "timestamp":
        return _parse_timestamp(text)
    return text


def encode_xml(parent: ET.Element, tag: str, shape: Shape, value: Any) -> None:
    """Append ``value`` under ``parent`` as element ``tag``, shaped by ``shape`` (None is left out)."""
    if value is None:
        return
    kind = shape.type_name
    element = ET.SubElement(parent, tag)
    if kind == "structure":
        for name, member in shape.members.items():
            if member.serialization.get("location") or value.get(name) is None:
                continue
            member_tag = _xml_name(member, name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                for item in value[name]:
                    encode_xml(element, member_tag, member.member, item)
            else:
                encode_xml(element, member_tag, member, value[name])
    elif kind == "list":
        item_shape = shape.member
        for item in value:
            encode_xml(element, _xml_name(item_shape, "member"), item_shape, item)
    elif kind == "map":
        for key, item in value.items():
            entry = ET.SubElement(element, "entry")
            encode_xml(entry, _xml_name(shape.key, "key"), shape.key, key)
            encode_xml(entry, _xml_name(shape.value, "value"), shape.value, item)
    elif kind == "boolean":
        element.text = "true" if value else "false"
    elif kind == "timestamp":
        element.text = _iso_z(value, millis=True) if isinstance(value, datetime) else str(value)
    else:
        element.text = str(value)


def response_xml(operation: str, body: Mapping[str, Any]) -> bytes:
    """The XML body of a successful ``operation`` response."""
    output = service_model().operation_model(operation).output_shape
    holder = ET.Element("holder")
    encode_xml(holder, f"{operation}Result", output, dict(body))
    root = holder[0]
    root.set("xmlns", XML_NAMESPACE)
    document: bytes = ET.tostring(root, encoding="utf-8")
    return _XML_DECLARATION + document


def error_xml(error: S3ControlError, request_id: str) -> bytes:
    """S3 Control's error body; botocore's RestXMLParser reads ``Error/Code`` and ``Error/Message``."""
    root = ET.Element("ErrorResponse")
    inner = ET.SubElement(root, "Error")
    ET.SubElement(inner, "Code").text = error.code
    ET.SubElement(inner, "Message").text = error.message
    ET.SubElement(root, "RequestId").text = request_id
    ET.SubElement(root, "HostId").text = base64.b64encode(request_id.encode()).decode()
    body: bytes = ET.tostring(root, encoding="utf-8")
    return _XML_DECLARATION + body


def parse_create_job_body(body: bytes) -> dict[str, Any]:
    """CreateJob's XML body as boto3-style parameters; malformed XML is a BadRequestException."""
    if not body.strip():
        raise _bad_request("The request body is empty")
    try:
        root = ET.fromstring(body)  # noqa: S314 - loopback sandbox input from our own tests and product
        params: dict[str, Any] = decode_xml(service_model().operation_model("CreateJob").input_shape, root)
        return params
    except (ET.ParseError, ValueError) as exc:
        raise _bad_request(f"The XML you provided was not well-formed: {exc}") from exc


def parse_put_job_tagging_body(body: bytes) -> dict[str, Any]:
    """PutJobTagging's XML body (``PutJobTaggingRequest``) as boto3-style parameters."""
    if not body.strip():
        raise _bad_request("Missing required parameter: Tags")
    try:
        root = ET.fromstring(body)  # noqa: S314 - loopback sandbox input from our own tests and product
        if _local(root.tag) != "PutJobTaggingRequest":
            raise ValueError(f"unexpected root element {_local(root.tag)!r}")
        params: dict[str, Any] = decode_xml(service_model().operation_model("PutJobTagging").input_shape, root)
        return params
    except (ET.ParseError, ValueError) as exc:
        raise _bad_request(f"The XML you provided was not well-formed: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# The job store


@dataclass(frozen=True)
class StatusUpdate:
    """One UpdateJobStatus call that reached a job: when it arrived (``time.perf_counter()``), what it
    asked for, and the status it left (``error`` is the S3 error code when it was refused)."""

    job_id: str
    requested: str
    arrived: float
    status: str | None = None
    error: str | None = None


@dataclass
class _Job:
    job_id: str
    account_id: str
    region: str
    params: dict[str, Any]
    object_count: int
    failed_tasks: int
    creation_time: datetime
    seq: int
    status: str = "New"
    status_update_reason: str | None = None
    suspended_date: datetime | None = None
    suspended_cause: str | None = None
    termination_date: datetime | None = None
    failure_reasons: list[dict[str, str]] = field(default_factory=list)
    created_by: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)
    counted: bool = False
    processed: int = 0
    active_seconds: float = 0.0
    active_since: datetime | None = None

    @property
    def arn(self) -> str:
        return job_arn(self.region, self.account_id, self.job_id)

    @property
    def operation_name(self) -> str:
        return str(next(iter(self.params["Operation"])))

    def progress(self, now: datetime) -> dict[str, Any]:
        failed = self._failed_so_far()
        summary: dict[str, Any] = {
            "NumberOfTasksSucceeded": self.processed - failed,
            "NumberOfTasksFailed": failed,
            "Timers": {"ElapsedTimeInActiveSeconds": int(self.elapsed_active(now))},
        }
        if self.counted:
            summary = {"TotalNumberOfTasks": self.object_count, **summary}
        return summary

    def elapsed_active(self, now: datetime) -> float:
        running = (now - self.active_since).total_seconds() if self.active_since else 0.0
        return self.active_seconds + max(running, 0.0)

    def _failed_so_far(self) -> int:
        if self.object_count == 0:
            return 0
        return min(self.failed_tasks, self.failed_tasks * self.processed // self.object_count)

    def descriptor(self, now: datetime) -> dict[str, Any]:
        """DescribeJob's ``Job``, in boto3's shape (datetimes stay datetimes)."""
        keys = ("Description", "Operation", "Manifest", "ManifestGenerator", "Priority", "RoleArn", "Report")
        job: dict[str, Any] = {
            "JobId": self.job_id,
            "ConfirmationRequired": bool(self.params.get("ConfirmationRequired", False)),
            "JobArn": self.arn,
            "Status": self.status,
            **{key: copy.deepcopy(self.params[key]) for key in keys if self.params.get(key) is not None},
            "ProgressSummary": self.progress(now),
            "CreationTime": self.creation_time,
        }
        if self.status_update_reason is not None:
            job["StatusUpdateReason"] = self.status_update_reason
        if self.failure_reasons:
            job["FailureReasons"] = copy.deepcopy(self.failure_reasons)
        if self.termination_date is not None:
            job["TerminationDate"] = self.termination_date
        if self.suspended_date is not None:
            job["SuspendedDate"] = self.suspended_date
        if self.suspended_cause is not None:
            job["SuspendedCause"] = self.suspended_cause
        generator = (self.params.get("ManifestGenerator") or {}).get("S3JobManifestGenerator")
        if generator and generator.get("EnableManifestOutput") and self.counted:
            output = generator.get("ManifestOutputLocation") or {}
            prefix = output.get("ManifestPrefix", "")
            bucket = output.get("Bucket", "arn:aws:s3:::").split(":::", 1)[-1]
            job["GeneratedManifestDescriptor"] = {
                "Format": "S3InventoryReport_CSV_20211130",
                "Location": {
                    "ObjectArn": f"arn:aws:s3:::{bucket}/{prefix}job-{self.job_id}/manifest.json",
                    "ETag": uuid.uuid5(uuid.NAMESPACE_URL, self.job_id).hex,
                },
            }
        return job

    def list_descriptor(self, now: datetime) -> dict[str, Any]:
        """ListJobs' ``JobListDescriptor``."""
        item: dict[str, Any] = {
            "JobId": self.job_id,
            "Operation": self.operation_name,
            "Priority": self.params["Priority"],
            "Status": self.status,
            "CreationTime": self.creation_time,
            "ProgressSummary": self.progress(now),
        }
        if self.params.get("Description") is not None:
            item["Description"] = self.params["Description"]
        if self.termination_date is not None:
            item["TerminationDate"] = self.termination_date
        return item


Listener = Callable[[dict[str, Any]], object]


class JobStore:
    """S3 Batch Operations jobs in memory, with the real status rules. Thread-safe.

    Jobs move one status per ``advance(job_id)`` (or per ``tick()`` for every job), except that a
    job awaiting confirmation stays Suspended until ``update_job_status(..., "Ready")``. While
    Active, each advance processes about ``1/active_steps`` of the job's objects.

    Fault hooks (all thread-safe):

    - ``drop_next_events(n)`` / ``duplicate_next_events(n)``: lose or double the next n events;
    - ``delay["DescribeJob"] = 5.0``: the HTTP server waits that long before answering;
    - ``throttle_next(operation, n)``: the next n calls answer TooManyRequestsException;
    - ``fail_next(operation, n)``: the next n calls answer InternalServiceException (HTTP 500).

    The drop and duplicate hooks count the CreateJob API-call events as well (they go out first).

    Callers: ``principals`` maps an access key ID to a CloudTrail ``userIdentity`` dict (or a caller ARN,
    see ``identity_from_arn``); over HTTP the caller is the one whose key signed the request. Unknown
    keys, and ``create_job`` without ``principal``, are ``default_principal`` (default: the IAM user
    ``arn:aws:iam::<account>:user/sandbox`` of the account in the request). A caller from another account
    than the request's is AccessDenied. ``trail_enabled``: a trail records management events, so the
    CreateJob call reaches EventBridge; ``on_management_event(record)`` receives every CreateJob
    CloudTrail record either way (the event history). ``management_events`` keeps them all.

    Tags: a job keeps the ``Tags`` given to CreateJob; ``get_job_tagging``, ``put_job_tagging`` (replaces the
    whole set) and ``delete_job_tagging`` read and change them, validated as S3Tag's constraints say.
    """

    def __init__(
        self,
        *,
        region: str = DEFAULT_REGION,
        default_object_count: int = DEFAULT_OBJECT_COUNT,
        active_steps: int = 3,
        clock: Callable[[], datetime] = _utcnow,
        trail_enabled: bool = True,
        on_management_event: Callable[[dict[str, Any]], None] | None = None,
        principals: Mapping[str, Mapping[str, Any] | str] | None = None,
        default_principal: Mapping[str, Any] | str | None = None,
        resolve_caller: Callable[[str], str | None] | None = None,
        permissions_for: Callable[[Mapping[str, Any]], list[dict[str, Any]]] | None = None,
    ) -> None:
        if active_steps < 1:
            raise ValueError("active_steps must be at least 1")
        self.region = region
        self.trail_enabled = trail_enabled
        self.on_management_event = on_management_event
        self.management_events: list[dict[str, Any]] = []
        self.default_principal = (
            None if default_principal is None else _identity(default_principal, access_key_id=None, region=region)
        )
        self.default_object_count = default_object_count
        self.active_steps = active_steps
        self.clock = clock
        self.delay: dict[str, float] = {}
        self.calls: Counter[str] = Counter()
        self.emitted: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        # A job is known by its account, region and ID: the same ID in two accounts is two jobs.
        self._jobs: dict[tuple[str, str, str], _Job] = {}
        self._tokens: dict[tuple[str, str, str], tuple[str, str, str]] = {}
        self._next_ids: dict[str, list[str]] = {}
        self._manifest_counts: dict[str, int] = {}
        self._seq = 0
        self._throttle: Counter[str] = Counter()
        self._throttle_status: dict[str, int] = {}
        self._internal_errors: Counter[str] = Counter()
        self._drop = 0
        self._duplicate = 0
        self._listeners: list[Listener] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._principals: dict[str, dict[str, Any]] = {}
        self._status_updates: list[StatusUpdate] = []
        self.resolve_caller = resolve_caller
        self.permissions_for = permissions_for
        self._resolved: dict[str, dict[str, Any] | None] = {}
        for key, identity in (principals or {}).items():
            self.add_principal(key, identity)

    # -- callers ---------------------------------------------------------------------------------

    def add_principal(self, access_key_id: str, identity: Mapping[str, Any] | str) -> None:
        """Requests signed with ``access_key_id`` come from ``identity`` (a userIdentity dict or a caller ARN)."""
        if not access_key_id:
            raise ValueError("access_key_id must not be empty")
        resolved = _identity(identity, access_key_id=access_key_id, region=self.region)
        with self._lock:
            self._principals[access_key_id] = resolved

    def principal_for(self, access_key_id: str | None, account_id: str) -> dict[str, Any]:
        """The userIdentity of a request signed with ``access_key_id`` (None: unsigned or unreadable)."""
        with self._lock:
            known = self._principals.get(access_key_id or "")
            if known is not None:
                return copy.deepcopy(known)
        resolved = self._resolve(access_key_id)
        if resolved is not None:
            return copy.deepcopy(resolved)
        identity = self._default_identity(account_id)
        if access_key_id:
            identity["accessKeyId"] = access_key_id
        return identity

    def _resolve(self, access_key_id: str | None) -> dict[str, Any] | None:
        """A key ``principals`` does not know, through ``resolve_caller`` (the sandbox asks moto's
        GetCallerIdentity, for keys moto's STS issued), once per key."""
        if not access_key_id or self.resolve_caller is None:
            return None
        with self._lock:
            if access_key_id in self._resolved:
                return self._resolved[access_key_id]
        arn = self.resolve_caller(access_key_id)
        identity = None if arn is None else identity_from_arn(arn, access_key_id=access_key_id, region=self.region)
        with self._lock:
            self._resolved[access_key_id] = identity
        return identity

    def authorize(
        self,
        access_key_id: str | None,
        operation: str,
        account_id: str,
        region: str,
        job_id: str | None = None,
    ) -> dict[str, Any]:
        """The caller of an HTTP request, if it may make it; else AccessDenied (403).

        Every operation's caller must be of the request's account (``x-amz-account-id``). A caller that
        ``resolve_caller`` found (a role session moto's STS issued) must also be allowed ``s3:<operation>`` on
        the job's ARN (``*`` for CreateJob and ListJobs) by its role's permissions (``permissions_for``; a role
        that is gone allows nothing), with the job's tags as ``aws:ResourceTag/<key>``.
        """
        identity = self.principal_for(access_key_id, account_id)
        if identity.get("accountId") != account_id:
            if operation == "CreateJob":
                return identity  # CreateJob refuses it itself, and CloudTrail records the refusal
            raise S3ControlError("AccessDenied", "Access Denied", 403)
        if access_key_id is None or self.permissions_for is None:
            return identity
        with self._lock:
            from_sts = self._resolved.get(access_key_id) is not None
        if not from_sts:
            return identity
        from sandbox.iam import allows

        resource = "*" if job_id is None else job_arn(region, account_id, job_id)
        context: dict[str, str] = {}
        if job_id is not None:
            with self._lock:
                try:
                    tags = self._get(account_id, job_id, region).tags
                except (S3ControlError, ValueError):
                    tags = []
            context = {f"aws:ResourceTag/{tag['Key']}": tag["Value"] for tag in tags}
        if not allows(self.permissions_for(identity), f"s3:{operation}", resource, context):
            raise S3ControlError(
                "AccessDenied",
                f"User: {identity.get('arn')} is not authorized to perform: s3:{operation} on resource: {resource}",
                403,
            )
        return identity

    def job_creator(self, job_id: str, *, account_id: str | None = None) -> dict[str, Any]:
        """Sandbox-only: the userIdentity that created the job (the API has no way to ask)."""
        with self._lock:
            return copy.deepcopy(self._get(account_id, job_id).created_by)

    def _default_identity(self, account_id: str) -> dict[str, Any]:
        if self.default_principal is not None:
            return copy.deepcopy(self.default_principal)
        region = self.region
        return identity_from_arn(f"arn:{_partition(region)}:iam::{account_id}:user/sandbox", region=region)

    # -- jobs ------------------------------------------------------------------------------------

    def set_manifest_object_count(self, location_arn: str, count: int) -> None:
        """Say how many objects the manifest at ``location_arn`` lists (or a generator's SourceBucket).

        CreateJob over HTTP reads the job's object count from here (default: ``default_object_count``).
        """
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            self._manifest_counts[location_arn] = count

    def create_job(
        self,
        account_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        region: str | None = None,
        object_count: int | None = None,
        failed_tasks: int = 0,
        principal: Mapping[str, Any] | str | None = None,
        source_ip_address: str | None = None,
        user_agent: str | None = None,
        request_id: str | None = None,
        **kwargs: Any,
    ) -> str:
        """CreateJob: validate, then store a job in status New and emit JobCreated. Returns the JobId.

        ``params`` (or keyword arguments) are boto3's CreateJob parameters without AccountId.
        ``principal`` is the caller: a CloudTrail userIdentity dict or a caller ARN (default:
        ``default_principal``). ``object_count`` and ``failed_tasks`` are sandbox-only: how many objects
        the manifest lists and how many of their tasks fail. ``source_ip_address``, ``user_agent`` and
        ``request_id`` go into the CloudTrail record (the HTTP front passes the request's).

        The call is recorded as a CloudTrail management event whether it succeeds or not (see the class).
        """
        request = {**(params or {}), **kwargs}
        _validate_account(account_id)
        if object_count is not None and object_count < 0:
            raise ValueError("object_count must be >= 0")
        call_region = region or self.region
        identity = (
            self._default_identity(account_id)
            if principal is None
            else _identity(principal, access_key_id=None, region=call_region)
        )
        call = _ApiCall(identity, source_ip_address, user_agent, request_id or uuid.uuid4().hex[:16].upper())
        with self._lock:
            try:
                if identity.get("accountId") != account_id:
                    raise S3ControlError("AccessDenied", "Access Denied", 403)
                _validate_create(request)
                job, created = self._create_locked(account_id, call_region, request, object_count, failed_tasks)
            except S3ControlError as error:
                self._record_create_call(account_id, call_region, request, call, None, error)
                raise
            job.created_by = job.created_by or copy.deepcopy(identity)
            self._record_create_call(account_id, call_region, request, call, job.job_id, None)
            if created:
                self._emit(job, "JobCreated")
            return job.job_id

    def _create_locked(
        self,
        account_id: str,
        region: str,
        request: dict[str, Any],
        object_count: int | None,
        failed_tasks: int,
    ) -> tuple[_Job, bool]:
        """The job for a valid request: the one its ClientRequestToken already made, or a new one."""
        token_key = (account_id, region, request["ClientRequestToken"])
        existing = self._tokens.get(token_key)
        if existing is not None:
            if _without_token(self._jobs[existing].params) != _without_token(request):
                raise S3ControlError(
                    "IdempotencyException",
                    "ClientRequestToken was already used with different request parameters",
                )
            return self._jobs[existing], False
        count = object_count if object_count is not None else self._count_for(request)
        chosen = self._next_ids.get(account_id) or []
        new_id = chosen.pop(0) if chosen else str(uuid.uuid4())
        if (account_id, region, new_id) in self._jobs:
            raise S3ControlError("InternalServiceException", f"The sandbox already holds job {new_id} here", 500)
        self._seq += 1
        job = _Job(
            job_id=new_id,
            account_id=account_id,
            region=region,
            params=copy.deepcopy(request),
            object_count=count,
            failed_tasks=min(max(failed_tasks, 0), count),
            creation_time=self.clock(),
            seq=self._seq,
            tags=[{"Key": tag["Key"], "Value": tag["Value"]} for tag in request.get("Tags") or []],
        )
        self._jobs[(account_id, region, job.job_id)] = job
        self._tokens[token_key] = (account_id, region, job.job_id)
        return job, True

    def _record_create_call(
        self,
        account_id: str,
        region: str,
        request: Mapping[str, Any],
        call: _ApiCall,
        job_id: str | None,
        error: S3ControlError | None,
    ) -> None:
        """The CloudTrail record of one CreateJob call: to the event history, and to the bus with a trail."""
        record = api_call_record(
            call.identity,
            event_time=self.clock(),
            account_id=account_id,
            region=region,
            request_parameters=_create_request_parameters(account_id, request),
            job_id=job_id,
            error_code=error.code if error is not None else None,
            error_message=error.message if error is not None else None,
            source_ip_address=call.source_ip_address or "198.51.100.1",
            user_agent=call.user_agent or "sandbox",
            request_id=call.request_id,
        )
        self.management_events.append(record)
        hook = self.on_management_event
        if hook is not None:
            try:
                hook(copy.deepcopy(record))
            except Exception:
                logger.exception("management event hook failed")
        if not self.trail_enabled:
            return
        self._publish(api_call_event(record), job_id=job_id, what="CreateJob")

    def describe_job(self, account_id: str, job_id: str, *, region: str | None = None) -> dict[str, Any]:
        """DescribeJob's ``Job`` (boto3 shape); with ``region``, only a job of that region (as over HTTP)."""
        with self._lock:
            return self._get(account_id, job_id, region).descriptor(self.clock())

    def job_status(self, job_id: str, *, account_id: str | None = None) -> str:
        with self._lock:
            return self._get(account_id, job_id).status

    def job_ids(self, account_id: str | None = None) -> list[str]:
        """Sandbox-only: every job's ID, oldest first (of ``account_id``, or of every account)."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.seq)
            return [job.job_id for job in jobs if account_id is None or job.account_id == account_id]

    def use_job_id(self, job_id: str, *, account_id: str) -> None:
        """Sandbox-only: the next job created in ``account_id`` gets ``job_id`` (S3 picks IDs itself; this lets a
        test hold one ID in two accounts, which are two jobs)."""
        _validate_account(account_id)
        if not JOB_ID.fullmatch(job_id):
            raise ValueError("a job ID is 5 to 36 characters of A-Z, a-z, 0-9, - and _")
        with self._lock:
            self._next_ids.setdefault(account_id, []).append(job_id)

    def job_account(self, job_id: str, account_id: str | None = None) -> tuple[str, str]:
        """Sandbox-only: the (account, region) of the job with this ID (``account_id`` says which, when the ID
        is in several accounts)."""
        with self._lock:
            job = self._get(account_id, job_id)
            return job.account_id, job.region

    def list_jobs(
        self,
        account_id: str,
        *,
        statuses: Iterable[str] | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
        region: str | None = None,
    ) -> dict[str, Any]:
        """ListJobs: newest first, filtered by status, ``MaxResults`` 1-1000, opaque ``NextToken``."""
        _validate_account(account_id, code="InvalidRequestException")
        wanted = list(statuses or [])
        unknown = [s for s in wanted if s not in STATUSES]
        if unknown:
            raise S3ControlError("InvalidRequestException", f"Invalid job status: {', '.join(unknown)}")
        limit = 1000 if max_results is None else max_results
        if not 1 <= limit <= 1000:
            raise S3ControlError("InvalidRequestException", "MaxResults must be between 1 and 1000")
        region = region or self.region
        fingerprint = ",".join(sorted(set(wanted)))
        after = _read_token(next_token, account_id, region, fingerprint) if next_token else None
        with self._lock:
            now = self.clock()
            jobs = [
                job
                for job in sorted(self._jobs.values(), key=lambda j: j.seq, reverse=True)
                if job.account_id == account_id
                and job.region == region
                and (not wanted or job.status in wanted)
                and (after is None or job.seq < after)
            ]
            page = jobs[:limit]
            result: dict[str, Any] = {"Jobs": [job.list_descriptor(now) for job in page]}
            if len(jobs) > limit:
                result["NextToken"] = _make_token(page[-1].seq, account_id, region, fingerprint)
            return result

    def update_job_status(
        self,
        account_id: str,
        job_id: str,
        requested_job_status: str,
        status_update_reason: str | None = None,
        *,
        region: str | None = None,
    ) -> dict[str, Any]:
        """UpdateJobStatus: Ready only from Suspended; Cancelled from any status that is not final."""
        _validate_account(account_id)
        if not JOB_ID.fullmatch(job_id or ""):
            raise _bad_request("JobId must be 5 to 36 characters of A-Z, a-z, 0-9, - and _")
        if requested_job_status not in ("Ready", "Cancelled"):
            raise _bad_request(
                f"Invalid RequestedJobStatus: {requested_job_status!r}; valid values are Ready, Cancelled"
            )
        if status_update_reason is not None and not 1 <= len(status_update_reason) <= 256:
            raise _bad_request("StatusUpdateReason must be between 1 and 256 characters")
        arrived = time.perf_counter()
        with self._lock:
            try:
                response = self._update_job_status(
                    account_id, job_id, requested_job_status, status_update_reason, region
                )
            except S3ControlError as exc:
                self._status_updates.append(StatusUpdate(job_id, requested_job_status, arrived, error=exc.code))
                raise
            self._status_updates.append(StatusUpdate(job_id, requested_job_status, arrived, response["Status"]))
            return response

    def status_updates(self, job_id: str | None = None) -> list[StatusUpdate]:
        """The UpdateJobStatus calls that passed validation, oldest first (of ``job_id``, or of every job)."""
        with self._lock:
            return [u for u in self._status_updates if job_id is None or u.job_id == job_id]

    def _update_job_status(
        self,
        account_id: str,
        job_id: str,
        requested_job_status: str,
        status_update_reason: str | None,
        region: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            job = self._get(account_id, job_id, region)
            if requested_job_status == "Ready":
                if job.status != "Suspended":
                    raise S3ControlError(
                        "JobStatusException",
                        f"Job {job_id} is in status {job.status}; only a Suspended job can be moved to Ready",
                    )
                self._set_status(job, "Ready")
            elif job.status in CANCEL_AT_ONCE:
                self._set_status(job, "Cancelled")
            elif job.status in CANCEL_VIA_CANCELLING:
                self._set_status(job, "Cancelling")
            else:
                raise S3ControlError(
                    "JobStatusException",
                    f"Job {job_id} is in status {job.status} and cannot be cancelled",
                )
            if status_update_reason is not None:
                job.status_update_reason = status_update_reason
            response = {"JobId": job.job_id, "Status": job.status}
            if job.status_update_reason is not None:
                response["StatusUpdateReason"] = job.status_update_reason
            return response

    # -- tags ------------------------------------------------------------------------------------

    def get_job_tagging(self, account_id: str, job_id: str, *, region: str | None = None) -> dict[str, Any]:
        """GetJobTagging: the job's tag set (the CreateJob ``Tags``, or what PutJobTagging set last), in order."""
        _validate_job(account_id, job_id)
        with self._lock:
            return {"Tags": copy.deepcopy(self._get(account_id, job_id, region).tags)}

    def put_job_tagging(self, account_id: str, job_id: str, tags: Any, *, region: str | None = None) -> dict[str, Any]:
        """PutJobTagging: replace the job's whole tag set; an empty list removes every tag.

        More than 50 tags is TooManyTagsException; a tag S3Tag's constraints refuse (key 1-128 and value
        at most 256 characters of letters, separators, numbers and ``_.:/=+-@``, no ``aws:`` key, no
        repeated key) is BadRequestException. Nothing changes when the call fails.
        """
        _validate_job(account_id, job_id)
        if not isinstance(tags, list):
            raise _bad_request("Missing required parameter: Tags")
        if len(tags) > MAX_JOB_TAGS:
            raise S3ControlError("TooManyTagsException", f"A job can have at most {MAX_JOB_TAGS} tags")
        _validate_tags(tags)
        with self._lock:
            job = self._get(account_id, job_id, region)
            job.tags = [{"Key": tag["Key"], "Value": tag["Value"]} for tag in tags]
            return {}

    def delete_job_tagging(self, account_id: str, job_id: str, *, region: str | None = None) -> dict[str, Any]:
        """DeleteJobTagging: remove the job's whole tag set (a job without tags is fine)."""
        _validate_job(account_id, job_id)
        with self._lock:
            self._get(account_id, job_id, region).tags = []
            return {}

    def advance(self, job_id: str, *, account_id: str | None = None) -> str:
        """Move one job one step along its lifecycle; returns its status afterwards.

        New → Preparing → Suspended (needs confirmation) or Ready; Ready → Active; Active processes
        a share of the objects per step, then → Completing → Complete. Pausing → Paused,
        Cancelling → Cancelled, Failing → Failed. Suspended, Paused and final statuses stay put.
        """
        with self._lock:
            job = self._get(account_id, job_id)
            self._step(job)
            return job.status

    def advance_until(self, job_id: str, status: str, *, max_steps: int = 100, account_id: str | None = None) -> str:
        """Advance until the job reaches ``status``; raise if it stops moving or ends elsewhere."""
        with self._lock:
            job = self._get(account_id, job_id)
            for _ in range(max_steps):
                current = job.status
                if current == status:
                    return current
                before = (job.status, job.processed)
                self._step(job)
                if (job.status, job.processed) == before:
                    raise RuntimeError(f"job {job_id} is stuck in {current}, never reaches {status}")
            raise RuntimeError(f"job {job_id} did not reach {status} in {max_steps} steps")

    def tick(self) -> None:
        """Advance every job one step (what the auto-advance thread does), and expire old suspensions."""
        with self._lock:
            now = self.clock()
            for job in sorted(self._jobs.values(), key=lambda j: j.seq):
                if job.status == "Suspended" and job.suspended_date is not None:
                    if now - job.suspended_date > SUSPENDED_JOB_LIFETIME:
                        self._expire(job)
                    continue
                self._step(job)

    def fail(
        self, job_id: str, reason: str, code: str = "SandboxInjectedFailure", *, account_id: str | None = None
    ) -> None:
        """Sandbox-only: the job fails (→ Failing now, → Failed on the next advance)."""
        with self._lock:
            job = self._get(account_id, job_id)
            if job.status in TERMINAL_STATUSES or job.status == "Failing":
                raise ValueError(f"job {job_id} is already {job.status}")
            job.failure_reasons.append({"FailureCode": code, "FailureReason": reason[:256]})
            self._set_status(job, "Failing")

    def expire(self, job_id: str, *, account_id: str | None = None) -> None:
        """Sandbox-only: a Suspended job waited more than 30 days for confirmation and fails."""
        with self._lock:
            job = self._get(account_id, job_id)
            if job.status != "Suspended":
                raise ValueError(f"job {job_id} is {job.status}, not Suspended")
            self._expire(job)

    def pause(self, job_id: str, *, account_id: str | None = None) -> None:
        """Sandbox-only: an Active job starts pausing (→ Pausing, then Paused on the next advance)."""
        with self._lock:
            job = self._get(account_id, job_id)
            if job.status != "Active":
                raise ValueError(f"job {job_id} is {job.status}, not Active")
            self._set_status(job, "Pausing")

    def resume(self, job_id: str, *, account_id: str | None = None) -> None:
        """Sandbox-only: a Paused job becomes Active again."""
        with self._lock:
            job = self._get(account_id, job_id)
            if job.status != "Paused":
                raise ValueError(f"job {job_id} is {job.status}, not Paused")
            self._set_status(job, "Active")

    # -- events ----------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every delivered event, in order, on the delivery thread."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def drop_next_events(self, count: int = 1) -> None:
        """Lose the next ``count`` events (EventBridge delivery is best effort)."""
        with self._lock:
            self._drop += count

    def duplicate_next_events(self, count: int = 1) -> None:
        """Deliver each of the next ``count`` events twice (same id and jobEventId)."""
        with self._lock:
            self._duplicate += count

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was handed to the listeners; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
            return True

    def close(self) -> None:
        """Stop the delivery thread (after the events already queued)."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put(None)
            worker.join(timeout=5)

    # -- fault hooks for the HTTP API -----------------------------------------------------------

    def throttle_next(self, operation: str, count: int = 1, *, status: int = 400) -> None:
        """The next ``count`` calls of ``operation`` answer TooManyRequestsException.

        HTTP 400 by default: botocore's standard retry mode retries it by error code; legacy mode
        retries only HTTP 429, so pass ``status=429`` to test that mode.
        """
        _check_operation(operation)
        with self._lock:
            self._throttle[operation] += count
            self._throttle_status[operation] = status

    def fail_next(self, operation: str, count: int = 1) -> None:
        """The next ``count`` calls of ``operation`` answer InternalServiceException (HTTP 500)."""
        _check_operation(operation)
        with self._lock:
            self._internal_errors[operation] += count

    def injected_fault(self, operation: str) -> S3ControlError | None:
        """Count the call, and use up one injected throttle or internal error if one is armed."""
        with self._lock:
            self.calls[operation] += 1
            if self._throttle[operation] > 0:
                self._throttle[operation] -= 1
                return S3ControlError(
                    "TooManyRequestsException",
                    "Please reduce your request rate",
                    self._throttle_status.get(operation, 400),
                )
            if self._internal_errors[operation] > 0:
                self._internal_errors[operation] -= 1
                return S3ControlError("InternalServiceException", "We encountered an internal error", 500)
            return None

    # -- internals -------------------------------------------------------------------------------

    def _get(self, account_id: str | None, job_id: str, region: str | None = None) -> _Job:
        """The job with this ID in ``account_id`` (and ``region``, when given). Sandbox-only callers may leave
        the account out while the ID is in one account only."""
        found = [
            job
            for (account, job_region, known_id), job in self._jobs.items()
            if known_id == job_id
            and (account_id is None or account == account_id)
            and (region is None or job_region == region)
        ]
        if not found:
            raise S3ControlError("NotFoundException", f"The specified job {job_id} does not exist", 404)
        if len(found) > 1:
            where = ", ".join(sorted(f"{job.account_id}/{job.region}" for job in found))
            raise ValueError(f"job {job_id} exists in several accounts or regions ({where}): say which")
        return found[0]

    def _count_for(self, request: Mapping[str, Any]) -> int:
        manifest = request.get("Manifest") or {}
        arn = (manifest.get("Location") or {}).get("ObjectArn")
        if arn is None:
            generator = (request.get("ManifestGenerator") or {}).get("S3JobManifestGenerator") or {}
            arn = generator.get("SourceBucket")
        return self._manifest_counts.get(arn or "", self.default_object_count)

    def _step(self, job: _Job) -> None:
        status = job.status
        if status == "New":
            self._set_status(job, "Preparing")
        elif status == "Preparing":
            job.counted = True
            if job.params.get("ConfirmationRequired"):
                job.suspended_date = self.clock()
                job.suspended_cause = SUSPENDED_CAUSE
                self._set_status(job, "Suspended")
            else:
                self._set_status(job, "Ready")
        elif status == "Ready":
            self._set_status(job, "Active")
        elif status == "Active":
            chunk = max(1, math.ceil(job.object_count / self.active_steps))
            job.processed = min(job.object_count, job.processed + chunk)
            if job.processed >= job.object_count:
                self._set_status(job, "Completing")
        elif status in ("Completing", "Pausing", "Cancelling", "Failing"):
            final = {"Completing": "Complete", "Pausing": "Paused", "Cancelling": "Cancelled", "Failing": "Failed"}
            self._set_status(job, final[status])

    def _expire(self, job: _Job) -> None:
        job.failure_reasons.append(
            {
                "FailureCode": "SuspendedJobExpired",
                "FailureReason": "The job was not confirmed within 30 days of being suspended",
            }
        )
        self._set_status(job, "Failing")

    def _set_status(self, job: _Job, status: str) -> None:
        now = self.clock()
        if job.status == "Active" and job.active_since is not None:
            job.active_seconds += max((now - job.active_since).total_seconds(), 0.0)
            job.active_since = None
        if status == "Active":
            job.active_since = now
        job.status = status
        if status in TERMINAL_STATUSES:
            job.termination_date = now
        self._emit(job, "JobStatusChanged")

    def _emit(self, job: _Job, event_name: str) -> None:
        """Build the event under the lock (so order is kept) and queue it for the delivery thread."""
        now = self.clock()
        failure_codes = [r["FailureCode"] for r in job.failure_reasons] if job.status in ("Failing", "Failed") else []
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "AWS Service Event via CloudTrail",
            "source": "aws.s3",
            "account": job.account_id,
            "time": _iso_z(now),
            "region": job.region,
            "resources": [],
            "detail": {
                "eventVersion": "1.08",
                "userIdentity": {"accountId": job.account_id, "invokedBy": "s3.amazonaws.com"},
                "eventTime": _iso_z(now),
                "eventSource": "s3.amazonaws.com",
                "eventName": event_name,
                "awsRegion": job.region,
                "sourceIPAddress": "s3.amazonaws.com",
                "userAgent": "s3.amazonaws.com",
                "eventID": str(uuid.uuid4()),
                "readOnly": False,
                "eventType": "AwsServiceEvent",
                "managementEvent": False,
                "recipientAccountId": job.account_id,
                "serviceEventDetails": {
                    "jobId": job.job_id,
                    "jobArn": job.arn,
                    "status": job.status,
                    "jobEventId": uuid.uuid4().hex,
                    "failureCodes": failure_codes,
                    "statusChangeReason": [],
                },
                "eventCategory": "Management",
            },
        }
        self._publish(event, job_id=job.job_id, what=job.status)

    def _publish(self, event: dict[str, Any], *, job_id: str | None, what: str) -> None:
        """Queue one event for the delivery thread, unless a fault hook drops or doubles it."""
        self.emitted.append(event)
        if self._drop > 0:
            self._drop -= 1
            logger.info("event dropped", extra={"job_id": job_id, "event": what})
            return
        copies = 1
        if self._duplicate > 0:
            self._duplicate -= 1
            copies = 2
        for _ in range(copies):
            self._pending += 1
            self._queue.put(event)
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._deliver, name="s3batch-events", daemon=True)
            self._worker.start()

    def _deliver(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            with self._lock:
                listeners = list(self._listeners)
            try:
                for listener in listeners:
                    try:
                        listener(copy.deepcopy(event))
                    except Exception:
                        logger.exception("event listener failed")
            finally:
                with self._idle:
                    self.delivered.append(event)
                    self._pending -= 1
                    self._idle.notify_all()


@dataclass(frozen=True)
class _ApiCall:
    """Who made an API call and from where, as CloudTrail records it."""

    identity: dict[str, Any]
    source_ip_address: str | None
    user_agent: str | None
    request_id: str


def _create_request_parameters(account_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a CreateJob request CloudTrail shows, under the API's own member names: what kind of
    job over which objects, without the operation's arguments or the tags.

    Built from whatever was sent, because failed calls are recorded too.
    """
    shown: dict[str, Any] = {"accountId": account_id}
    operation = request.get("Operation")
    if isinstance(operation, Mapping):
        kinds = [name for name, value in operation.items() if value is not None]
        if kinds:
            shown["Operation"] = {kinds[0]: {}}
    for name in ("ConfirmationRequired", "Priority", "RoleArn", "ClientRequestToken"):
        if isinstance(request.get(name), (bool, int, str)):
            shown[name] = request[name]
    manifest = request.get("Manifest")
    if isinstance(manifest, Mapping):
        location = _mapping(manifest.get("Location"))
        spec = _mapping(manifest.get("Spec"))
        shown["Manifest"] = {
            "Spec": {"Format": spec.get("Format")},
            "Location": {"ObjectArn": location.get("ObjectArn"), "ETag": location.get("ETag")},
        }
    generator = _mapping(_mapping(request.get("ManifestGenerator")).get("S3JobManifestGenerator"))
    if generator:
        shown["ManifestGenerator"] = {"S3JobManifestGenerator": {"SourceBucket": generator.get("SourceBucket")}}
    return shown


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _check_operation(operation: str) -> None:
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; expected one of {', '.join(OPERATIONS)}")


def _validate_account(account_id: str | None, *, code: str | None = "BadRequestException") -> None:
    code = code or "BadRequestException"
    if not account_id or not ACCOUNT_ID.fullmatch(account_id):
        raise S3ControlError(code, "AccountId (header x-amz-account-id) must be 12 digits")


def _validate_job(account_id: str | None, job_id: str | None) -> None:
    _validate_account(account_id)
    if not JOB_ID.fullmatch(job_id or ""):
        raise _bad_request("JobId must be 5 to 36 characters of A-Z, a-z, 0-9, - and _")


def _tag_text_ok(text: str) -> bool:
    """S3Tag's pattern: every character a letter, a separator, a number or one of ``_.:/=+-@``."""
    return all(char in TAG_PUNCTUATION or unicodedata.category(char)[0] in "LZN" for char in text)


def _validate_tags(tags: Iterable[Any]) -> None:
    """A tag set as S3 Control takes it: S3Tag's lengths and pattern, no ``aws:`` keys, keys unique."""
    seen: set[str] = set()
    for tag in tags:
        key = tag.get("Key") if isinstance(tag, Mapping) else None
        value = tag.get("Value") if isinstance(tag, Mapping) else None
        if not isinstance(key, str) or not isinstance(value, str):
            raise _bad_request("Every tag needs a Key and a Value")
        if not 1 <= len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise _bad_request(f"Tag keys must be 1 to {MAX_TAG_KEY} characters and values at most {MAX_TAG_VALUE}")
        if not _tag_text_ok(key) or not _tag_text_ok(value):
            raise _bad_request("Tag keys and values may hold letters, numbers, spaces and _ . : / = + - @ only")
        if key.lower().startswith("aws:"):
            raise _bad_request("Tag keys starting with aws: are reserved for AWS")
        if key in seen:
            raise _bad_request(f"Tag keys must be unique; {key!r} is repeated")
        seen.add(key)


def _without_token(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key != "ClientRequestToken"}


def _validate_create(params: Mapping[str, Any]) -> None:
    model = service_model().operation_model("CreateJob").input_shape
    known = set(model.members) - {"AccountId"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise _bad_request(f"Unknown CreateJob parameters: {', '.join(unknown)}")
    for name in ("Operation", "Report", "ClientRequestToken", "Priority", "RoleArn"):
        if params.get(name) is None:
            raise _bad_request(f"Missing required parameter: {name}")
    token = params["ClientRequestToken"]
    if not isinstance(token, str) or not 1 <= len(token) <= 64:
        raise _bad_request("ClientRequestToken must be 1 to 64 characters")
    operation = params["Operation"]
    chosen = [name for name, value in (operation or {}).items() if value is not None]
    if len(chosen) != 1:
        raise _bad_request("Operation must specify exactly one operation")
    valid_operations = model.members["Operation"].members
    if chosen[0] not in valid_operations:
        raise _bad_request(f"Unknown operation {chosen[0]!r}")
    priority = params["Priority"]
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise _bad_request("Priority must be an integer from 0 to 2147483647")
    if not isinstance(params["RoleArn"], str) or not ROLE_ARN.match(params["RoleArn"]):
        raise _bad_request("RoleArn must be an IAM role ARN")
    _validate_report(params["Report"])
    manifest, generator = params.get("Manifest"), params.get("ManifestGenerator")
    if (manifest is None) == (generator is None):
        raise _bad_request("Specify exactly one of Manifest and ManifestGenerator")
    if manifest is not None:
        spec, location = manifest.get("Spec") or {}, manifest.get("Location") or {}
        if not spec.get("Format") or not location.get("ObjectArn") or not location.get("ETag"):
            raise _bad_request("Manifest needs Spec.Format, Location.ObjectArn and Location.ETag")
        if not S3_ARN.match(location["ObjectArn"]):
            raise _bad_request("Manifest Location.ObjectArn must be an S3 object ARN")
    else:
        s3_generator = (generator or {}).get("S3JobManifestGenerator") or {}
        if not s3_generator.get("SourceBucket") or s3_generator.get("EnableManifestOutput") is None:
            raise _bad_request("ManifestGenerator needs S3JobManifestGenerator.SourceBucket and EnableManifestOutput")
    description = params.get("Description")
    if description is not None and not 1 <= len(description) <= 256:
        raise _bad_request("Description must be 1 to 256 characters")
    tags = params.get("Tags") or []
    if len(tags) > MAX_JOB_TAGS:
        raise _bad_request(f"A job can have at most {MAX_JOB_TAGS} tags")
    _validate_tags(tags)


def _validate_report(report: Mapping[str, Any]) -> None:
    if not isinstance(report, Mapping) or report.get("Enabled") is None:
        raise _bad_request("Report.Enabled is required")
    if report["Enabled"]:
        if not report.get("Bucket") or not S3_ARN.match(report["Bucket"]):
            raise _bad_request("An enabled Report needs Bucket as an S3 bucket ARN")
        if report.get("Format") != "Report_CSV_20180820":
            raise _bad_request("An enabled Report needs Format Report_CSV_20180820")


def _make_token(after_seq: int, account_id: str, region: str, fingerprint: str) -> str:
    raw = json.dumps({"a": account_id, "r": region, "f": fingerprint, "s": after_seq}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _read_token(token: str, account_id: str, region: str, fingerprint: str) -> int:
    try:
        data = json.loads(base64.b64decode(token, validate=True))
        if (data["a"], data["r"], data["f"]) != (account_id, region, fingerprint):
            raise ValueError("token was issued for another query")
        return int(data["s"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise S3ControlError("InvalidNextTokenException", "The NextToken is not valid") from exc


# --------------------------------------------------------------------------------------------------
# The HTTP server


_JOB_PATH = re.compile(r"^/v20180820/jobs/(?P<id>[^/]+)$")
_STATUS_PATH = re.compile(r"^/v20180820/jobs/(?P<id>[^/]+)/status$")
_TAGGING_PATH = re.compile(r"^/v20180820/jobs/(?P<id>[^/]+)/tagging$")


class S3ControlEmulator:
    """S3 Control's job API over HTTP (REST-XML), backed by a ``JobStore``. Loopback only.

    Use as a context manager or call ``start()``/``stop()``. With ``auto_advance=True`` a thread
    calls ``store.tick()`` every ``interval`` seconds; leave it off to step jobs explicitly.
    Signatures are not checked, but an Authorization header must be present; its access key says who the
    caller is, and ``JobStore.authorize`` whether the caller may make the call.
    """

    def __init__(
        self,
        store: JobStore | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        auto_advance: bool = False,
        interval: float = 0.2,
    ) -> None:
        if not is_loopback(host):
            raise ValueError("the emulator listens on loopback addresses only")
        self.store = store or JobStore()
        self.auto_advance = auto_advance
        self.interval = interval
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self._address[0]}:{self._server.server_port}"

    def start(self) -> S3ControlEmulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = ThreadingHTTPServer(self._address, _make_handler(self.store))
        self._server.daemon_threads = True
        serve = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="s3control-http", daemon=True)
        serve.start()
        self._threads = [serve]
        if self.auto_advance:
            ticker = threading.Thread(target=self._tick_forever, name="s3control-ticker", daemon=True)
            ticker.start()
            self._threads.append(ticker)
        return self

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> S3ControlEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _tick_forever(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.store.tick()
            except Exception:
                logger.exception("auto-advance tick failed")


def _make_handler(store: JobStore) -> type[BaseHTTPRequestHandler]:
    class Handler(_S3ControlHandler):
        pass

    Handler.store = store
    return Handler


class _S3ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonS3"
    disable_nagle_algorithm = True  # one small write each for headers and body: no 40 ms delayed-ACK stall
    sys_version = ""
    store: JobStore

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("s3control %s", format % args)

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        request_id = uuid.uuid4().hex[:16].upper()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        operation, job_id = _route(self.command, path)
        try:
            if operation is None:
                raise S3ControlError("NotImplemented", f"The sandbox does not implement {self.command} {path}", 501)
            if not self.headers.get("Authorization"):
                raise S3ControlError("AccessDenied", "Missing Authorization header", 403)
            fault = self.store.injected_fault(operation)
            pause = self.store.delay.get(operation, 0.0)
            if pause > 0:
                time.sleep(pause)
            if fault is not None:
                raise fault
            account_id = self.headers.get("x-amz-account-id", "")
            region = self._region()
            _validate_account(account_id, code="InvalidRequestException" if operation == "ListJobs" else None)
            caller = self.store.authorize(self._access_key_id(), operation, account_id, region, job_id)
            result = self._dispatch(operation, account_id, region, job_id, query, body, request_id, caller)
        except S3ControlError as error:
            self._send(error.status, error_xml(error, request_id), request_id)
            return
        except Exception:
            logger.exception("s3control emulator failed")
            failure = S3ControlError("InternalServiceException", "The sandbox failed; see its log", 500)
            self._send(500, error_xml(failure, request_id), request_id)
            return
        self._send(200, b"" if operation in EMPTY_RESPONSES else response_xml(operation, result), request_id)

    def _region(self) -> str:
        match = CREDENTIAL_REGION.search(self.headers.get("Authorization", ""))
        return match.group(1) if match else self.store.region

    def _access_key_id(self) -> str | None:
        """The access key ID that signed the request (SigV4 ``Credential=KEY/date/region/service/…``)."""
        match = CREDENTIAL_KEY.search(self.headers.get("Authorization", ""))
        return match.group(1) if match else None

    def _dispatch(
        self,
        operation: str,
        account_id: str,
        region: str,
        job_id: str | None,
        query: dict[str, list[str]],
        body: bytes,
        request_id: str,
        caller: dict[str, Any],
    ) -> dict[str, Any]:
        store = self.store
        if operation == "CreateJob":
            params = parse_create_job_body(body)
            job_id = store.create_job(
                account_id,
                params,
                region=region,
                principal=caller,
                source_ip_address=self.client_address[0],
                user_agent=self.headers.get("User-Agent"),
                request_id=request_id,
            )
            return {"JobId": job_id}
        if operation == "ListJobs":
            max_results = _first(query, "maxResults")
            if max_results is not None and not max_results.isdigit():
                raise S3ControlError("InvalidRequestException", "MaxResults must be a number")
            return store.list_jobs(
                account_id,
                statuses=query.get("jobStatuses"),
                max_results=None if max_results is None else int(max_results),
                next_token=_first(query, "nextToken"),
                region=region,
            )
        _validate_account(account_id)
        assert job_id is not None
        if not JOB_ID.fullmatch(job_id):
            raise _bad_request("JobId must be 5 to 36 characters of A-Z, a-z, 0-9, - and _")
        if operation == "DescribeJob":
            return {"Job": store.describe_job(account_id, job_id, region=region)}
        if operation == "GetJobTagging":
            return store.get_job_tagging(account_id, job_id, region=region)
        if operation == "PutJobTagging":
            tags = parse_put_job_tagging_body(body).get("Tags")
            return store.put_job_tagging(account_id, job_id, tags, region=region)
        if operation == "DeleteJobTagging":
            return store.delete_job_tagging(account_id, job_id, region=region)
        requested = _first(query, "requestedJobStatus")
        if requested is None:
            raise _bad_request("Missing required parameter: requestedJobStatus")
        return store.update_job_status(
            account_id, job_id, requested, _first(query, "statusUpdateReason"), region=region
        )

    def _send(self, status: int, body: bytes, request_id: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", request_id)
        self.send_header("x-amz-id-2", base64.b64encode(request_id.encode()).decode())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _route(method: str, path: str) -> tuple[str | None, str | None]:
    if path == "/v20180820/jobs":
        return {"POST": "CreateJob", "GET": "ListJobs"}.get(method), None
    if method == "GET" and (match := _JOB_PATH.match(path)):
        return "DescribeJob", match["id"]
    if method == "POST" and (match := _STATUS_PATH.match(path)):
        return "UpdateJobStatus", match["id"]
    if match := _TAGGING_PATH.match(path):
        return {"GET": "GetJobTagging", "PUT": "PutJobTagging", "DELETE": "DeleteJobTagging"}.get(method), match["id"]
    return None, None


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


__all__ = [
    "API_CALL_DETAIL_TYPE",
    "OPERATIONS",
    "STATUSES",
    "TERMINAL_STATUSES",
    "JobStore",
    "S3ControlEmulator",
    "S3ControlError",
    "example_create_job_params",
    "identity_from_arn",
    "job_arn",
]
