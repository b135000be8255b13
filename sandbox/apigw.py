"""API Gateway REST API (v1) stand-in: HTTP in, Lambda proxy event to an in-process handler, HTTP out.

Each request to `/<stage>/<resource>` becomes the event a REST API Lambda proxy integration sends,
and the handler's `{statusCode, headers, multiValueHeaders, body, isBase64Encoded}` becomes the
HTTP response. What API Gateway does, this does:

- unknown resource or method: 403 `{"message":"Missing Authentication Token"}`;
- request body over 10 MB: 413;
- handler raises, or returns a malformed proxy response: 502 `{"message": "Internal server error"}`;
- handler slower than the Lambda timeout: 502; slower than the integration timeout (29 s): 504;
- `binary_media_types` matching the request's Content-Type: body base64-encoded, `isBase64Encoded` true;
- header names as the client sent them; single-value maps keep the last value of a repeated name.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox._http import LoopbackService

__all__ = [
    "MAX_REQUEST_BYTES",
    "ApiGatewayFront",
    "ApiRequest",
    "LambdaContext",
    "LambdaFunction",
]

Handler = Callable[[dict[str, Any], Any], Any]

MAX_REQUEST_BYTES = 10 * 1024 * 1024
_INTERNAL_ERROR = {"message": "Internal server error"}
_MISSING_TOKEN = {"message": "Missing Authentication Token"}


class LambdaContext:
    """The `context` object Lambda passes a Python handler, with a remaining time that counts down.

    Carries what Powertools reads (`function_name`, `memory_limit_in_mb`, `invoked_function_arn`,
    `aws_request_id`) and the rest of the Python runtime's attributes.
    """

    def __init__(
        self,
        function_name: str = "function",
        *,
        timeout_seconds: float = 30.0,
        memory_limit_in_mb: int = 256,
        function_version: str = "$LATEST",
        region: str = "us-east-1",
        account_id: str = "123456789012",
        aws_request_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        today = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
        self.log_stream_name = f"{today}/[{function_version}]{secrets.token_hex(16)}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        self._deadline = clock() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext({self.function_name!r}, aws_request_id={self.aws_request_id!r})"


@dataclass(frozen=True)
class LambdaFunction:
    """A handler with the settings its Lambda function would have (used to build each invocation's context)."""

    handler: Handler
    name: str = "function"
    timeout_seconds: float = 30.0
    memory_limit_in_mb: int = 256


@dataclass
class ApiRequest:
    """One request through the front: what came in, the event built, and what went back."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    route: tuple[str, str] | None = None
    event: dict[str, Any] | None = None
    context: LambdaContext | None = None
    result: Any = None
    status: int = 0
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    error: BaseException | str | None = None
    duration: float = 0.0

    @property
    def json(self) -> Any:
        return json.loads(self.response_body)


@dataclass(frozen=True)
class _Route:
    method: str
    resource: str
    function: LambdaFunction

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        return _match_resource(self.resource, path)


def _match_resource(resource: str, path: str) -> dict[str, str] | None:
    wanted = [part for part in resource.split("/") if part]
    actual = [part for part in path.split("/") if part]
    parameters: dict[str, str] = {}
    for index, part in enumerate(wanted):
        if part.startswith("{") and part.endswith("+}"):
            rest = actual[index:]
            if not rest:
                return None
            parameters[part[1:-2]] = "/".join(rest)
            return parameters
        if index >= len(actual):
            return None
        if part.startswith("{") and part.endswith("}"):
            parameters[part[1:-1]] = actual[index]
        elif part != actual[index]:
            return None
    return parameters if len(actual) == len(wanted) else None


def _media_type_matches(content_type: str, patterns: Iterable[str]) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return False
    kind, _, subtype = media.partition("/")
    for pattern in patterns:
        want_kind, _, want_sub = pattern.strip().lower().partition("/")
        if want_kind in ("*", kind) and want_sub in ("*", subtype):
            return True
    return False


class ApiGatewayFront(LoopbackService):
    """A REST API stage in front of in-process Lambda handlers.

    `routes` maps `(method, resource)` to a handler `(event, context) -> dict` or a `LambdaFunction`.
    Resources may hold `{name}` and a trailing `{name+}`; the method may be "ANY". The API is served
    at `url_for(resource)` = `http://127.0.0.1:PORT/<stage>/<resource>`.
    """

    def __init__(
        self,
        routes: Mapping[tuple[str, str], Handler | LambdaFunction],
        *,
        stage: str = "prod",
        binary_media_types: Iterable[str] = (),
        function_name: str = "function",
        timeout_seconds: float = 30.0,
        memory_limit_in_mb: int = 256,
        integration_timeout_seconds: float = 29.0,
        account_id: str = "123456789012",
        region: str = "us-east-1",
        api_id: str | None = None,
        forwarding_headers: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.stage = stage.strip("/")
        self.binary_media_types = list(binary_media_types)
        self.integration_timeout_seconds = integration_timeout_seconds
        self.account_id = account_id
        self.region = region
        self.api_id = api_id or secrets.token_hex(5)
        self.forwarding_headers = forwarding_headers
        self._routes = [
            _Route(
                method.upper(),
                "/" + resource.strip("/"),
                target
                if isinstance(target, LambdaFunction)
                else LambdaFunction(target, function_name, timeout_seconds, memory_limit_in_mb),
            )
            for (method, resource), target in routes.items()
        ]
        self._requests: list[ApiRequest] = []
        self._lock = threading.Lock()
        super().__init__(host, port, _make_handler(self))

    @property
    def invoke_url(self) -> str:
        """The stage's invoke URL, ending in a slash like API Gateway's: `http://127.0.0.1:PORT/prod/`."""
        return f"{self.url}/{self.stage}/" if self.stage else f"{self.url}/"

    @property
    def domain_name(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"

    def url_for(self, resource: str) -> str:
        return self.invoke_url + resource.lstrip("/")

    # ------------------------------------------------------------------ records

    @property
    def requests(self) -> list[ApiRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[ApiRequest]:
        return [request for request in self.requests if request.error is not None]

    def requests_to(self, resource: str) -> list[ApiRequest]:
        resource = "/" + resource.strip("/")
        return [request for request in self.requests if request.route and request.route[1] == resource]

    def __len__(self) -> int:
        return len(self.requests)

    # ------------------------------------------------------------------ the proxy

    def _serve(self, record: ApiRequest, client: tuple[str, int], raw_query: str, too_large: bool) -> None:
        started = time.monotonic()
        try:
            self._dispatch(record, client, raw_query, too_large)
        finally:
            record.duration = time.monotonic() - started
            with self._lock:
                self._requests.append(record)

    def _dispatch(self, record: ApiRequest, client: tuple[str, int], raw_query: str, too_large: bool) -> None:
        request_id = str(uuid.uuid4())
        if too_large:
            record.error = f"request body over {MAX_REQUEST_BYTES} bytes"
            self._respond_json(record, 413, {"message": "Request Too Long"}, request_id)
            return
        resource_path = self._strip_stage(record.path)
        found = self._find_route(record.method, resource_path) if resource_path is not None else None
        if found is None:
            self._respond_json(
                record,
                403,
                _MISSING_TOKEN,
                request_id,
                [("x-amzn-ErrorType", "MissingAuthenticationTokenException")],
            )
            return
        route, path_parameters = found
        record.route = (route.method, route.resource)
        context = LambdaContext(
            route.function.name,
            timeout_seconds=route.function.timeout_seconds,
            memory_limit_in_mb=route.function.memory_limit_in_mb,
            region=self.region,
            account_id=self.account_id,
        )
        event = self._event(record, route, resource_path or "/", path_parameters, client, raw_query, request_id)
        record.event, record.context = event, context
        outcome = self._invoke(route.function, event, context)
        if isinstance(outcome, BaseException) or outcome is _TIMED_OUT or outcome is _INTEGRATION_TIMED_OUT:
            self._fail(record, outcome, request_id)
            return
        record.result = outcome
        try:
            status, headers, body = _proxy_response(outcome)
        except _MalformedResponse as malformed:
            self._fail(record, f"Malformed Lambda proxy response: {malformed}", request_id)
            return
        headers += self._service_headers(request_id)
        self._set(record, status, headers, body)

    def _strip_stage(self, path: str) -> str | None:
        if not self.stage:
            return path or "/"
        prefix = f"/{self.stage}"
        if path == prefix:
            return "/"
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
        return None

    def _find_route(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        for route in self._routes:
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None

    def _event(
        self,
        record: ApiRequest,
        route: _Route,
        path: str,
        path_parameters: dict[str, str],
        client: tuple[str, int],
        raw_query: str,
        request_id: str,
    ) -> dict[str, Any]:
        headers = list(record.headers)
        if self.forwarding_headers:
            present = {name.lower() for name, _ in headers}
            trace = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"
            for name, value in (
                ("X-Amzn-Trace-Id", trace),
                ("X-Forwarded-For", client[0]),
                ("X-Forwarded-Port", str(self._server.server_address[1])),
                ("X-Forwarded-Proto", "http"),
            ):
                if name.lower() not in present:
                    headers.append((name, value))
        single_headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            single_headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query = parse_qsl(raw_query, keep_blank_values=True)
        single_query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in query:
            single_query[name] = value
            multi_query.setdefault(name, []).append(value)
        content_type = next((value for name, value in headers if name.lower() == "content-type"), "")
        if not record.body:
            body, encoded = None, False
        elif _media_type_matches(content_type, self.binary_media_types):
            body, encoded = base64.b64encode(record.body).decode("ascii"), True
        else:
            body, encoded = record.body.decode("utf-8", errors="replace"), False
        now = dt.datetime.now(dt.UTC)
        user_agent = next((value for name, value in headers if name.lower() == "user-agent"), None)
        stage_path = f"/{self.stage}{path}" if self.stage else path
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": record.method,
            "headers": single_headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": single_query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": secrets.token_hex(3),
                "resourcePath": route.resource,
                "httpMethod": record.method,
                "extendedRequestId": base64.b64encode(secrets.token_bytes(6)).decode("ascii").rstrip("=") + "=",
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": stage_path,
                "accountId": self.account_id,
                "protocol": "HTTP/1.1",
                "stage": self.stage,
                "domainPrefix": self.api_id,
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": client[0],
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": user_agent,
                    "user": None,
                },
                "domainName": self.domain_name,
                "deploymentId": self.api_id[:6],
                "apiId": self.api_id,
            },
            "body": body,
            "isBase64Encoded": encoded,
        }

    def _invoke(self, function: LambdaFunction, event: dict[str, Any], context: LambdaContext) -> Any:
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = function.handler(event, context)
            except BaseException as error:  # a Lambda crash of any kind is a 502
                box["error"] = error

        worker = threading.Thread(target=run, name=f"lambda-{function.name}", daemon=True)
        worker.start()
        limit = min(function.timeout_seconds, self.integration_timeout_seconds)
        worker.join(limit)
        if worker.is_alive():  # the handler keeps running in the background, as it would in Lambda
            return (
                _TIMED_OUT if function.timeout_seconds <= self.integration_timeout_seconds else _INTEGRATION_TIMED_OUT
            )
        if "error" in box:
            return box["error"]
        return box.get("result")

    def _fail(self, record: ApiRequest, outcome: Any, request_id: str) -> None:
        if outcome is _INTEGRATION_TIMED_OUT:
            record.error = "Endpoint request timed out"
            self._respond_json(
                record,
                504,
                {"message": "Endpoint request timed out"},
                request_id,
                [("x-amzn-ErrorType", "InternalServerErrorException")],
            )
            return
        record.error = "Task timed out" if outcome is _TIMED_OUT else outcome
        self._respond_json(
            record, 502, _INTERNAL_ERROR, request_id, [("x-amzn-ErrorType", "InternalServerErrorException")]
        )

    def _service_headers(self, request_id: str) -> list[tuple[str, str]]:
        return [
            ("x-amzn-RequestId", request_id),
            ("x-amz-apigw-id", base64.b64encode(secrets.token_bytes(6)).decode("ascii").rstrip("=") + "="),
            ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0"),
        ]

    def _respond_json(
        self,
        record: ApiRequest,
        status: int,
        payload: dict[str, Any],
        request_id: str,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        headers = [("Content-Type", "application/json"), *(extra or []), *self._service_headers(request_id)]
        self._set(record, status, headers, json.dumps(payload).encode())

    @staticmethod
    def _set(record: ApiRequest, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        record.status, record.response_headers, record.response_body = status, headers, body


_TIMED_OUT: Any = object()
_INTEGRATION_TIMED_OUT: Any = object()


class _MalformedResponse(Exception):
    pass


def _proxy_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    if not isinstance(result, Mapping):
        raise _MalformedResponse(f"expected an object, got {type(result).__name__}")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise _MalformedResponse(f"statusCode must be an integer HTTP status, got {status!r}")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise _MalformedResponse(f"body must be a string, got {type(body).__name__}")
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, Mapping) or not isinstance(multi, Mapping):
        raise _MalformedResponse("headers and multiValueHeaders must be objects")
    headers: list[tuple[str, str]] = []
    multi_names = {name.lower() for name in multi}
    for name, value in single.items():
        if name.lower() not in multi_names:
            headers.append((name, _header_value(value)))
    for name, values in multi.items():
        if not isinstance(values, list):
            raise _MalformedResponse(f"multiValueHeaders[{name!r}] must be a list")
        headers.extend((name, _header_value(value)) for value in values)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.insert(0, ("Content-Type", "application/json"))
    raw = (body or "").encode("utf-8")
    if result.get("isBase64Encoded") and body:
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError as error:
            raise _MalformedResponse("isBase64Encoded is true but body is not base64") from error
    return status, headers, raw


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _make_handler(front: ApiGatewayFront) -> type[BaseHTTPRequestHandler]:
    class _ProxyHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ApiGatewayStandIn"
        sys_version = ""

        def _handle(self) -> None:
            split = urlsplit(self.path)
            body, too_large = self._read_body()
            record = ApiRequest(
                method=self.command,
                path=split.path,
                headers=list(self.headers.items()),
                body=body,
            )
            front._serve(record, self.client_address, split.query, too_large)
            self.send_response(record.status)
            for name, value in record.response_headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(record.response_body)))
            if record.status == 413:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(record.response_body)

        def _read_body(self) -> tuple[bytes, bool]:
            """The request body, or b"" and True when it is over API Gateway's 10 MB (read and dropped)."""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._read_chunked()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self._drain(length)
                return b"", True
            return (self.rfile.read(length) if length else b""), False

        def _drain(self, length: int) -> None:
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)

        def _read_chunked(self) -> tuple[bytes, bool]:
            parts: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunk = self.rfile.read(size)
                self.rfile.readline()
                total += len(chunk)
                if total <= MAX_REQUEST_BYTES:
                    parts.append(chunk)
            if total > MAX_REQUEST_BYTES:
                return b"", True
            return b"".join(parts), False

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _ProxyHandler
