"""A local STS front: AssumeRole as strict as STS, in front of moto's STS.

moto's STS (5.2) checks nothing on AssumeRole: "the role does not need to exist" (its own docstring), it
reads no trust policy, and it hands out credentials for any role ARN in any account. So the sandbox puts this
front before it (``AWS_ENDPOINT_URL_STS``), which for AssumeRole:

1. resolves the caller from the SigV4 access key: a key in ``known_callers`` (the sandbox's own default key
   is the hub notifier's role session, as the functions' role in Lambda would be), or else whoever moto's
   GetCallerIdentity says holds the key (a session moto's STS issued, for example);
2. validates the request as STS does (RoleSessionName ``[A-Za-z0-9_+=,.@-]{2,64}``; ``DurationSeconds`` 900 to
   43200), reads the role from moto's IAM in the role's account (a role that is not there is AccessDenied), and
   refuses a ``DurationSeconds`` above the role's MaxSessionDuration (default 3600), or above one hour when the
   caller is itself a role session (role chaining), with STS's ValidationError;
3. evaluates the role's trust policy (``sandbox.iam``: ``Principal`` AWS account root or ARN, ArnEquals/ArnLike
   on ``aws:PrincipalArn``, StringEquals on ``aws:PrincipalOrgID`` from ``organizations``); not admitted is
   AccessDenied (STS's XML error, HTTP 403), with STS's message;
4. only then forwards the request, unchanged, to moto, whose answer (the role session's credentials) goes back.

Not modelled: the caller's own identity policy (in AWS the hub role must also be allowed ``sts:AssumeRole`` on
the spoke role; the stack grants it), session policies, tags, external IDs and MFA conditions (a trust policy
that names them fails its conditions, so it refuses). GetCallerIdentity of a ``known_callers`` key is answered
here (the session it stands for); any other action goes to moto as it is.

Fault hooks: ``throttle_next(n)``: the next n AssumeRole calls answer Throttling (HTTP 400, which botocore
retries); ``fail_next(n)``: InternalFailure (HTTP 500). ``calls`` records every AssumeRole and its outcome.
"""

from __future__ import annotations

import http.client
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import boto3

from sandbox._http import LoopbackService
from sandbox.iam import Principal, trust_admits

__all__ = ["AssumeRoleCall", "StsFront", "moto_client"]

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/\d{8}/([a-z0-9-]+)/")
ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):role/(?:[^/]+/)*(?P<name>[\w+=,.@-]+)$"
)
SESSION_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{2,64}$")  # STS's [\w+=,.@-], whose \w is ASCII only
MIN_SESSION_SECONDS = 900
MAX_DURATION_SECONDS = 43200  # the parameter's own bound (a role's MaxSessionDuration is at most 12 hours)
DEFAULT_MAX_SESSION_SECONDS = 3600  # a role's MaxSessionDuration when it sets none
CHAINED_MAX_SESSION_SECONDS = 3600  # a role session assuming a role (role chaining): one hour at most
MOTO_SECRET = "sandbox-secret"  # moto checks no signatures: any secret signs for a key


def moto_client(moto_url: str, service: str, *, account_id: str | None = None, region: str = "us-east-1") -> Any:
    """A boto3 client of moto's server acting in ``account_id`` (moto's ``x-moto-account-id`` header), for the
    sandbox's own set-up: IAM roles in a member account, for example."""
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    ).client(service, endpoint_url=moto_url)
    if account_id is not None:

        def add_account(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account_id

        client.meta.events.register("before-sign", add_account)
    return client


def moto_caller_arn(moto_url: str, access_key_id: str) -> str:
    """Who moto's STS says holds ``access_key_id`` (its GetCallerIdentity, signed with that key)."""
    client = boto3.session.Session(
        aws_access_key_id=access_key_id, aws_secret_access_key=MOTO_SECRET, region_name="us-east-1"
    ).client("sts", endpoint_url=moto_url)
    return str(client.get_caller_identity()["Arn"])


@dataclass(frozen=True)
class AssumeRoleCall:
    """One AssumeRole the front answered: who asked, for which role, and the error code when it refused."""

    caller: str
    role_arn: str
    session_name: str
    error: str | None = None


class _StsError(Exception):
    def __init__(self, code: str, message: str, status: int, kind: str = "Sender") -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.kind = code, message, status, kind


class StsFront(LoopbackService):
    """STS on a loopback port; point ``AWS_ENDPOINT_URL_STS`` at ``url``.

    ``known_callers``: access key ID -> the caller's ARN (a role session ARN, ``arn:aws:sts::…:assumed-role/…``).
    ``organizations``: account -> organisation ID, for ``aws:PrincipalOrgID`` (an account not listed is in no
    organisation, so a trust that requires one refuses it).
    """

    thread_name = "sts-front"

    def __init__(
        self,
        moto_url: str,
        *,
        known_callers: Mapping[str, str] | None = None,
        organizations: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.moto_url = moto_url
        self.known_callers = dict(known_callers or {})
        self.organizations = dict(organizations or {})
        self.calls: list[AssumeRoleCall] = []
        self._lock = threading.Lock()
        self._callers: dict[str, str] = {}
        self._iam_clients: dict[str, Any] = {}
        self._throttle = 0
        self._failures = 0
        super().__init__(host, port, _make_handler(self))

    # -- fault hooks -------------------------------------------------------------------------------

    def throttle_next(self, count: int = 1) -> None:
        """The next ``count`` AssumeRole calls answer Throttling ("Rate exceeded", HTTP 400)."""
        with self._lock:
            self._throttle += count

    def fail_next(self, count: int = 1) -> None:
        """The next ``count`` AssumeRole calls answer InternalFailure (HTTP 500)."""
        with self._lock:
            self._failures += count

    def clear_faults(self) -> None:
        with self._lock:
            self._throttle = self._failures = 0

    def refused(self) -> list[AssumeRoleCall]:
        with self._lock:
            return [call for call in self.calls if call.error]

    # -- the checks --------------------------------------------------------------------------------

    def _iam(self, account_id: str) -> Any:
        with self._lock:
            client = self._iam_clients.get(account_id)
            if client is None:
                client = self._iam_clients[account_id] = moto_client(self.moto_url, "iam", account_id=account_id)
            return client

    def caller_arn(self, access_key_id: str) -> str:
        """The caller's ARN for a key: ``known_callers``, or moto's GetCallerIdentity (once per key)."""
        if access_key_id in self.known_callers:
            return self.known_callers[access_key_id]
        with self._lock:
            if access_key_id in self._callers:
                return self._callers[access_key_id]
        arn = moto_caller_arn(self.moto_url, access_key_id)
        with self._lock:
            self._callers[access_key_id] = arn
        return arn

    def check_assume_role(
        self, access_key_id: str, role_arn: str, session_name: str, duration_seconds: str | None = None
    ) -> None:
        """Raise _StsError unless the caller may assume the role now (faults first, then validation, role, trust,
        then the duration against the role's MaxSessionDuration)."""
        with self._lock:
            if self._throttle > 0:
                self._throttle -= 1
                raise _StsError("Throttling", "Rate exceeded", 400)
            if self._failures > 0:
                self._failures -= 1
                raise _StsError("InternalFailure", "An internal error occurred", 500, "Receiver")
        if not SESSION_NAME.fullmatch(session_name or ""):
            raise _StsError(
                "ValidationError",
                "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length 2 to 64",
                400,
            )
        duration = _duration(duration_seconds)
        caller = self.caller_arn(access_key_id)
        denied = _StsError(
            "AccessDenied",
            f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            403,
        )
        role = ROLE_ARN.match(role_arn or "")
        if role is None:
            raise _StsError("ValidationError", f"{role_arn!r} is not a valid role ARN", 400)
        iam = self._iam(role["account"])
        try:
            found = iam.get_role(RoleName=role["name"])["Role"]
        except iam.exceptions.NoSuchEntityException:
            raise denied from None
        if found["Arn"] != role_arn:
            raise denied
        trust = found.get("AssumeRolePolicyDocument") or {}
        if isinstance(trust, str):
            import json
            from urllib.parse import unquote

            trust = json.loads(unquote(trust))
        account = caller.split(":")[4]
        principal = Principal(caller, account, self.organizations.get(account))
        if not trust_admits(trust, principal):
            raise denied
        if duration is not None:
            if _SESSION_CALLER.match(caller) and duration > CHAINED_MAX_SESSION_SECONDS:
                raise _StsError(
                    "ValidationError",
                    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role "
                    "chaining.",
                    400,
                )
            if duration > int(found.get("MaxSessionDuration") or DEFAULT_MAX_SESSION_SECONDS):
                raise _StsError(
                    "ValidationError",
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                    400,
                )


_SESSION_CALLER = re.compile(r"^arn:[a-z-]+:sts::[0-9]{12}:assumed-role/")


def _duration(value: str | None) -> int | None:
    """``DurationSeconds`` as STS validates it before anything else: an integer from 900 to 43200."""
    if value is None or value == "":
        return None
    try:
        seconds = int(value)
    except ValueError:
        raise _StsError("ValidationError", f"Value '{value}' at 'durationSeconds' is not an integer", 400) from None
    if seconds < MIN_SESSION_SECONDS:
        bound = f"greater than or equal to {MIN_SESSION_SECONDS}"
    elif seconds > MAX_DURATION_SECONDS:
        bound = f"less than or equal to {MAX_DURATION_SECONDS}"
    else:
        return seconds
    raise _StsError(
        "ValidationError",
        f"1 validation error detected: Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: "
        f"Member must have value {bound}",
        400,
    )


def _make_handler(front: StsFront) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "StsFront"
        sys_version = ""
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._handle(self.rfile.read(length) if length else b"")

        def _handle(self, body: bytes) -> None:
            request_id = str(uuid.uuid4())
            params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            params.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
            credential = CREDENTIAL.search(self.headers.get("Authorization", ""))
            action = params.get("Action", "")
            try:
                if credential is None:
                    raise _StsError("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
                key = credential.group(1)
                if action == "GetCallerIdentity" and key in front.known_callers:
                    self._send(200, _caller_identity_xml(front.known_callers[key], request_id))
                    return
                if action == "AssumeRole":
                    role_arn, session = params.get("RoleArn", ""), params.get("RoleSessionName", "")
                    caller = "?"
                    try:
                        caller = front.caller_arn(key)
                        front.check_assume_role(key, role_arn, session, params.get("DurationSeconds"))
                    except _StsError as error:
                        with front._lock:
                            front.calls.append(AssumeRoleCall(caller, role_arn, session, error.code))
                        raise
                    with front._lock:
                        front.calls.append(AssumeRoleCall(caller, role_arn, session))
            except _StsError as error:
                self._send(error.status, _error_xml(error, request_id))
                return
            self._forward(body)

        def _forward(self, body: bytes) -> None:
            upstream = urlsplit(front.moto_url)
            connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                payload, status = response.read(), response.status
                content_type = response.getheader("Content-Type", "text/xml")
            finally:
                connection.close()
            self._send(status, payload, content_type)

        def _send(self, status: int, payload: bytes, content_type: str = "text/xml") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return _Handler


def _error_xml(error: _StsError, request_id: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>{error.kind}</Type><Code>{escape(error.code)}</Code>'
        f"<Message>{escape(error.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


def _caller_identity_xml(arn: str, request_id: str) -> bytes:
    account = arn.split(":")[4]
    user_id = "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, arn.rsplit("/", 1)[0]).hex[:17].upper()
    if "/" in arn:
        user_id += ":" + arn.rsplit("/", 1)[-1]
    return (
        f'<GetCallerIdentityResponse xmlns="{STS_NAMESPACE}"><GetCallerIdentityResult>'
        f"<Arn>{escape(arn)}</Arn><UserId>{escape(user_id)}</UserId><Account>{account}</Account>"
        f"</GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()
