"""The API Gateway REST API front, driven over real HTTP with http.client and urllib."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel
from slack_sdk.signature import Clock, SignatureVerifier

from sandbox.apigw import MAX_REQUEST_BYTES, ApiGatewayFront, LambdaContext, LambdaFunction

FORM = "application/x-www-form-urlencoded"
SIGNING_SECRET = "test-signing-secret"
PAYLOAD_BODY = urlencode({"payload": json.dumps({"type": "block_actions", "actions": [{"value": "a&b=c"}]})})


class Seen:
    """A Lambda handler that records each (event, context) and answers 200 with a small JSON body."""

    def __init__(self) -> None:
        self.invocations: list[tuple[dict[str, Any], Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.invocations.append((event, context))
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}

    @property
    def event(self) -> dict[str, Any]:
        return self.invocations[-1][0]


def post(
    url: str, body: bytes, headers: list[tuple[str, str]] | None = None, method: str = "POST"
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send with http.client, which keeps header names exactly as given."""
    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
    try:
        connection.putrequest(method, split.path + (f"?{split.query}" if split.query else ""))
        for name, value in headers or []:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def front(seen: Seen) -> Iterator[ApiGatewayFront]:
    with ApiGatewayFront({("POST", "/slack/interactions"): seen}, function_name="callback") as running:
        yield running


# ----------------------------------------------------------------------------- the event


def test_a_form_post_reaches_the_handler_as_a_rest_api_proxy_event(front: ApiGatewayFront, seen: Seen) -> None:
    # given
    request = urllib.request.Request(
        front.url_for("slack/interactions"),
        data=PAYLOAD_BODY.encode(),
        headers={"Content-Type": FORM, "User-Agent": "Slackbot 1.0"},
        method="POST",
    )

    # when
    with urllib.request.urlopen(request, timeout=10) as response:
        status, body = response.status, response.read()

    # then
    assert (status, json.loads(body)) == (200, {"ok": True})
    event = seen.event
    assert event["resource"] == "/slack/interactions"
    assert event["path"] == "/slack/interactions"
    assert event["httpMethod"] == "POST"
    assert event["body"] == PAYLOAD_BODY
    assert event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["stageVariables"] is None
    context = event["requestContext"]
    assert context["path"] == "/prod/slack/interactions"
    assert context["stage"] == "prod"
    assert context["resourcePath"] == "/slack/interactions"
    assert context["httpMethod"] == "POST"
    assert context["protocol"] == "HTTP/1.1"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "Slackbot 1.0"
    assert context["accountId"] == "123456789012"
    assert context["domainName"] == f"{context['apiId']}.execute-api.us-east-1.amazonaws.com"
    assert uuid.UUID(context["requestId"])
    assert abs(context["requestTimeEpoch"] - time.time() * 1000) < 60_000
    assert context["requestTime"].endswith("+0000")
    assert APIGatewayProxyEventModel.model_validate(event).requestContext.stage == "prod"


def test_header_names_keep_the_case_the_client_sent(front: ApiGatewayFront, seen: Seen) -> None:
    # given
    headers = [
        ("Content-Type", FORM),
        ("X-Slack-Signature", "v0=abc"),
        ("x-slack-request-timestamp", "1531420618"),
    ]

    # when
    post(front.url_for("slack/interactions"), PAYLOAD_BODY.encode(), headers)

    # then
    assert seen.event["headers"]["X-Slack-Signature"] == "v0=abc"
    assert seen.event["headers"]["x-slack-request-timestamp"] == "1531420618"
    assert "x-slack-signature" not in seen.event["headers"]
    assert seen.event["multiValueHeaders"]["X-Slack-Signature"] == ["v0=abc"]
    assert "X-Forwarded-For" in seen.event["headers"]


def test_repeated_headers_and_query_parameters_fill_the_multi_value_maps(front: ApiGatewayFront, seen: Seen) -> None:
    # given
    url = front.url_for("slack/interactions") + "?tag=a&tag=b&empty="
    headers = [("Content-Type", FORM), ("X-Tag", "one"), ("X-Tag", "two")]

    # when
    post(url, b"x=1", headers)

    # then
    event = seen.event
    assert event["headers"]["X-Tag"] == "two"
    assert event["multiValueHeaders"]["X-Tag"] == ["one", "two"]
    assert event["queryStringParameters"] == {"tag": "b", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "empty": [""]}


def test_a_request_without_a_body_has_a_null_body(front: ApiGatewayFront, seen: Seen) -> None:
    # when
    post(front.url_for("slack/interactions"), b"")

    # then
    assert seen.event["body"] is None
    assert seen.event["isBase64Encoded"] is False


@pytest.mark.parametrize("binary_media_types", [["*/*"], [FORM], ["application/*"]])
def test_binary_media_types_base64_encode_the_body(seen: Seen, binary_media_types: list[str]) -> None:
    # given
    routes = {("POST", "/slack/interactions"): seen}
    with ApiGatewayFront(routes, binary_media_types=binary_media_types) as front:
        # when
        post(front.url_for("slack/interactions"), PAYLOAD_BODY.encode(), [("Content-Type", f"{FORM}; charset=utf-8")])

    # then
    assert seen.event["isBase64Encoded"] is True
    assert base64.b64decode(seen.event["body"]) == PAYLOAD_BODY.encode()


def test_a_content_type_outside_binary_media_types_stays_text(seen: Seen) -> None:
    # given
    routes = {("POST", "/slack/interactions"): seen}
    with ApiGatewayFront(routes, binary_media_types=["image/png"]) as front:
        # when
        post(front.url_for("slack/interactions"), PAYLOAD_BODY.encode(), [("Content-Type", FORM)])

    # then
    assert seen.event["isBase64Encoded"] is False
    assert seen.event["body"] == PAYLOAD_BODY


@pytest.mark.parametrize("binary_media_types", [[], ["*/*"]])
def test_powertools_and_slack_signature_checks_read_the_event_in_both_modes(
    seen: Seen, binary_media_types: list[str]
) -> None:
    # given
    class FixedClock(Clock):
        def now(self) -> float:
            return 1_700_000_000.0

    verifier = SignatureVerifier(SIGNING_SECRET, clock=FixedClock())
    timestamp = "1700000000"
    signature = verifier.generate_signature(timestamp=timestamp, body=PAYLOAD_BODY)
    headers = [("Content-Type", FORM), ("X-Slack-Request-Timestamp", timestamp), ("X-Slack-Signature", signature)]
    with ApiGatewayFront({("POST", "/slack/interactions"): seen}, binary_media_types=binary_media_types) as front:
        # when
        post(front.url_for("slack/interactions"), PAYLOAD_BODY.encode(), headers)

    # then
    event = APIGatewayProxyEvent(seen.event)
    assert event.decoded_body == PAYLOAD_BODY
    assert event.headers["x-slack-signature"] == signature
    assert verifier.is_valid_request(event.decoded_body, dict(event.headers))


def test_a_templated_resource_fills_path_parameters() -> None:
    # given
    seen = Seen()
    with ApiGatewayFront({("GET", "/jobs/{job_id}"): seen, ("ANY", "/files/{path+}"): seen}) as front:
        # when
        post(front.url_for("jobs/abc-123"), b"", method="GET")
        post(front.url_for("files/a/b/c.csv"), b"", method="DELETE")

    # then
    first, second = (event for event, _ in seen.invocations)
    assert (first["resource"], first["pathParameters"]) == ("/jobs/{job_id}", {"job_id": "abc-123"})
    assert (second["resource"], second["pathParameters"]) == ("/files/{path+}", {"path": "a/b/c.csv"})
    assert second["httpMethod"] == "DELETE"


# ----------------------------------------------------------------------------- the context


def test_the_handler_gets_a_lambda_context_whose_time_counts_down() -> None:
    # given
    contexts: list[tuple[Any, int]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        before = context.get_remaining_time_in_millis()
        time.sleep(0.05)
        contexts.append((context, before - context.get_remaining_time_in_millis()))
        return {"statusCode": 204}

    function = LambdaFunction(handler, name="callback", timeout_seconds=10, memory_limit_in_mb=512)
    with ApiGatewayFront({("POST", "/slack/interactions"): function}) as front:
        # when
        post(front.url_for("slack/interactions"), b"x=1")

    # then
    context, spent = contexts[0]
    assert isinstance(context, LambdaContext)
    assert context.function_name == "callback"
    assert context.memory_limit_in_mb == 512
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:callback"
    assert uuid.UUID(context.aws_request_id)
    assert 40 <= spent <= 1000
    assert 0 < context.get_remaining_time_in_millis() <= 10_000


def test_a_lambda_context_on_its_own_reports_its_timeout() -> None:
    # given
    now = [100.0]
    context = LambdaContext("notifier", timeout_seconds=3, clock=lambda: now[0])

    # when
    now[0] += 1.25

    # then
    assert context.get_remaining_time_in_millis() == 1750
    now[0] += 10
    assert context.get_remaining_time_in_millis() == 0


# ----------------------------------------------------------------------------- the response


def test_the_proxy_response_maps_back_to_http() -> None:
    # given
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png", "X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x89PNG\x00").decode(),
            "isBase64Encoded": True,
        }

    with ApiGatewayFront({("POST", "/slack/interactions"): handler}) as front:
        # when
        status, headers, body = post(front.url_for("slack/interactions"), b"x=1")

    # then
    assert status == 201
    assert body == b"\x89PNG\x00"
    assert ("Content-Type", "image/png") in headers
    assert ("X-One", "1") in headers
    assert [value for name, value in headers if name == "Set-Cookie"] == ["a=1", "b=2"]
    assert any(name == "x-amzn-RequestId" for name, _ in headers)


def test_an_empty_200_defaults_to_json_content_type() -> None:
    # given
    with ApiGatewayFront({("POST", "/slack/interactions"): lambda event, context: {"statusCode": 200}}) as front:
        # when
        status, headers, body = post(front.url_for("slack/interactions"), b"x=1")

    # then
    assert (status, body) == (200, b"")
    assert ("Content-Type", "application/json") in headers


@pytest.mark.parametrize(
    ("url_suffix", "method"),
    [("prod/unknown", "POST"), ("prod/slack/interactions", "GET"), ("slack/interactions", "POST"), ("", "GET")],
)
def test_an_unknown_route_is_403_missing_authentication_token(
    front: ApiGatewayFront, seen: Seen, url_suffix: str, method: str
) -> None:
    # when
    status, headers, body = post(f"{front.url}/{url_suffix}", b"x=1", method=method)

    # then
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    assert ("x-amzn-ErrorType", "MissingAuthenticationTokenException") in headers
    assert seen.invocations == []
    assert front.requests[-1].status == 403


def test_a_handler_that_raises_is_a_502_and_is_recorded() -> None:
    # given
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise KeyError("payload")

    with ApiGatewayFront({("POST", "/slack/interactions"): handler}) as front:
        # when
        status, _, body = post(front.url_for("slack/interactions"), b"x=1")

    # then
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert isinstance(front.errors[0].error, KeyError)
    assert front.requests[0].event is not None


@pytest.mark.parametrize(
    "result",
    [None, "ok", {"body": "no status"}, {"statusCode": 200, "body": {"not": "a string"}}, {"statusCode": "abc"}],
    ids=repr,
)
def test_a_malformed_proxy_response_is_a_502(result: Any) -> None:
    # given
    with ApiGatewayFront({("POST", "/slack/interactions"): lambda event, context: result}) as front:
        # when
        status, _, body = post(front.url_for("slack/interactions"), b"x=1")

    # then
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert "Malformed Lambda proxy response" in str(front.errors[0].error)


def test_a_handler_slower_than_its_lambda_timeout_is_a_502() -> None:
    # given
    release = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        release.wait(2)
        return {"statusCode": 200}

    function = LambdaFunction(handler, timeout_seconds=0.1)
    with ApiGatewayFront({("POST", "/slack/interactions"): function}) as front:
        # when
        status, _, _ = post(front.url_for("slack/interactions"), b"x=1")
        release.set()

    # then
    assert status == 502
    assert front.errors[0].error == "Task timed out"


def test_a_handler_slower_than_the_integration_timeout_is_a_504() -> None:
    # given
    release = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        release.wait(2)
        return {"statusCode": 200}

    routes = {("POST", "/slack/interactions"): handler}
    with ApiGatewayFront(routes, timeout_seconds=30, integration_timeout_seconds=0.1) as front:
        # when
        status, _, body = post(front.url_for("slack/interactions"), b"x=1")
        release.set()

    # then
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}


def test_a_body_over_10_mb_is_413_and_never_reaches_the_handler(front: ApiGatewayFront, seen: Seen) -> None:
    # given
    body = b"x" * (MAX_REQUEST_BYTES + 1)
    request = urllib.request.Request(front.url_for("slack/interactions"), data=body, method="POST")

    # when
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)

    # then
    assert raised.value.code == 413
    assert seen.invocations == []


def test_each_request_is_recorded_with_its_event_and_response(front: ApiGatewayFront) -> None:
    # when
    post(front.url_for("slack/interactions"), b"a=1", [("Content-Type", FORM)])
    post(front.url_for("nowhere"), b"")

    # then
    assert len(front) == 2
    first, second = front.requests
    assert (first.status, first.json, first.body) == (200, {"ok": True}, b"a=1")
    assert first.route == ("POST", "/slack/interactions")
    assert first.event is not None
    assert first.context is not None
    assert (second.status, second.route, second.event) == (403, None, None)
    assert front.requests_to("slack/interactions") == [first]


def test_the_invoke_url_looks_like_a_stage_url(front: ApiGatewayFront) -> None:
    # then
    assert front.invoke_url == f"{front.url}/prod/"
    assert front.url_for("/slack/interactions") == f"{front.url}/prod/slack/interactions"


def test_the_front_refuses_to_listen_beyond_loopback(seen: Seen) -> None:
    # when / then
    with pytest.raises(ValueError, match="loopback"):
        ApiGatewayFront({("POST", "/x"): seen}, host="0.0.0.0")
