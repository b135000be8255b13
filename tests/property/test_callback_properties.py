"""Properties of the Slack callback: whatever API Gateway hands it, it answers with a known status, never
raises, queues nothing it cannot prove Slack signed, and queues a decision only for a valid one.

``callback.handle`` is driven in-process (no API Gateway front: fast), with its settings read from the
environment after ``wiring.reset_cold_start()``, against one moto server (the queue, the secret) and a
Slack stand-in (views.open for Cancel clicks), shared by the module. After each example the queue is read
and emptied, so each example sees only what it queued itself.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import Phase, event, given, note, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from approvals import wiring
from infra import constants as c
from sandbox.aws_local import LocalAws
from sandbox.slack import SlackStandIn
from tests.property.slack_payloads import (
    ACCOUNT_ID,
    ALICE,
    BOT_TOKEN,
    CHANNEL,
    FORM_EXTRAS,
    GINA,
    GROUP,
    MALLORY,
    MAX_BODY_BYTES,
    REGION,
    SERVED_TEAM,
    SIGNING_SECRET,
    Kind,
    approve_click,
    cancel_submission,
    form,
    other_payloads,
    payload_docs,
    payload_text,
    read_body,
    slack_signature,
    unicode,
)
from tests.property.strategies import (
    Encoded,
    awkward_text,
    deep_values,
    examples,
    json_values,
    mutated,
    near_misses,
    render,
)

ROUTE = "/" + c.SLACK_INTERACTIONS_PATH
KNOWN_STATUSES = {200, 400, 401, 403, 404, 413}  # 503 only when the queue is down, which it never is here
POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


class Context:
    """The one part of LambdaContext the callback reads."""

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass
class Callback:
    handle: Callable[[Any, Any], dict[str, Any]]
    sqs: Any
    queue_url: str

    def answer(self, event: Any) -> dict[str, Any]:
        return self.handle(event, Context())

    def queued(self) -> list[dict[str, Any]]:
        """Every message on the queue, read and deleted (so the queue stays empty and quick to read)."""
        messages: list[dict[str, Any]] = []
        while True:
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=600
            ).get("Messages", [])
            if not received:
                return messages
            messages.extend(json.loads(m["Body"]) for m in received)
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
            )


@pytest.fixture(scope="module")
def callback(moto_server: LocalAws) -> Iterator[Callback]:
    # slack_sdk's WebClient uses urllib's process-wide opener: start from a fresh one, as Lambda would.
    urllib.request.install_opener(None)
    aws = LocalAws(server=moto_server.server, url=moto_server.url).provision(BOT_TOKEN, SIGNING_SECRET)
    slack = SlackStandIn(
        BOT_TOKEN,
        users=[{"id": ALICE, "name": "alice"}, {"id": GINA, "name": "gina"}, {"id": MALLORY, "name": "mallory"}],
        groups={GROUP: [GINA]},
        channels=[{"id": CHANNEL, "name": "s3-approvals"}],
    ).start()
    env = {
        **aws.env(),
        **POWERTOOLS_ENV,
        c.ENV_DECISIONS_QUEUE_URL: aws.queue_url,
        c.ENV_SLACK_TEAM_ID: SERVED_TEAM,
        c.ENV_SLACK_CHANNEL_ID: CHANNEL,
        c.ENV_APPROVER_USER_IDS: ALICE,
        c.ENV_APPROVER_GROUP_IDS: GROUP,
        "SLACK_API_URL": slack.api_url,
    }
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"):
            monkeypatch.delenv(name, raising=False)
        from approvals.handlers import callback as handler_module

        wiring.reset_cold_start()
        deployed = Callback(handler_module.handle, aws.client("sqs"), aws.queue_url)
        deployed.queued()
        yield deployed
        wiring.reset_cold_start()
    slack.stop()


# -- events ----------------------------------------------------------------------------------------


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers as Slack sends them, signed with slack_sdk's SignatureVerifier at the current time."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    if unicode(body):
        signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    else:  # no UTF-8 bytes to sign: whatever Slack's recipe gives over the surrogate-passed bytes
        signature = slack_signature(secret, ts, body)
    assert signature is not None
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def api_event(
    body: str, headers: dict[str, str], *, binary: bool = False, request_id: str = "req-0001"
) -> dict[str, Any]:
    """API Gateway's REST proxy event for POST /slack/interactions."""
    raw = body.encode("utf-8", "surrogatepass")
    return {
        "resource": ROUTE,
        "path": ROUTE,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "requestContext": {
            "requestId": request_id,
            "resourcePath": ROUTE,
            "httpMethod": "POST",
            "identity": {"sourceIp": "192.0.2.10", "userAgent": headers.get("User-Agent")},
        },
        "body": base64.b64encode(raw).decode() if binary else body,
        "isBase64Encoded": binary,
    }


form_extras = st.just("") | st.sampled_from(FORM_EXTRAS)
sample_bodies = st.builds(lambda doc, extra: form(payload_text(doc), extra), payload_docs(), form_extras)


def padded(doc: Any, size: int) -> str:
    """A sample's form with a padding field that brings it to ``size`` bytes (when it is shorter)."""
    body = form(payload_text(doc))
    return body + "&pad=" + "a" * max(0, size - len(body) - len("&pad="))


padded_bodies = st.builds(padded, payload_docs(), st.integers(MAX_BODY_BYTES - 2, MAX_BODY_BYTES + 2))
bodies = st.one_of(
    sample_bodies,
    sample_bodies,
    st.builds(form, other_payloads, form_extras),
    awkward_text,
    padded_bodies,
)
FULLWIDTH_DIGITS = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
header_case = st.sampled_from([str, str.lower, str.upper])
request_ids = st.sampled_from(["req-0001", "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "a" * 128])


@st.composite
def signed_events(draw: st.DrawFn, body_strategy: st.SearchStrategy[str] = bodies) -> tuple[dict[str, Any], str]:
    """A correctly signed request on the right route (text or base64 body); also returns the body."""
    body = draw(body_strategy)
    case = draw(header_case)
    headers = {case(k): v for k, v in signed_headers(body).items()}
    return api_event(body, headers, binary=draw(st.booleans()), request_id=draw(request_ids)), body


@st.composite
def badly_signed_events(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """The right route and a body, with no signature, a wrong one, or a right one for something else."""
    body = draw(bodies)
    now = int(time.time())
    flaw = draw(
        st.sampled_from(
            ["unsigned", "no timestamp", "no signature", "other secret", "stale", "future", "body altered",
             "timestamp altered", "upper hex", "v1 scheme", "random hex", "odd timestamp", "empty values"]
        )
    )  # fmt: skip
    headers = signed_headers(body)
    if flaw == "unsigned":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    elif flaw == "no timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif flaw == "no signature":
        del headers["X-Slack-Signature"]
    elif flaw == "other secret":
        headers = signed_headers(body, secret=draw(st.sampled_from(["another-secret", "T", SIGNING_SECRET + "x"])))
    elif flaw == "stale":
        headers = signed_headers(body, timestamp=now - draw(st.integers(301, 10**9)))
    elif flaw == "future":
        headers = signed_headers(body, timestamp=now + draw(st.integers(301, 10**9)))
    elif flaw == "body altered":
        body = draw(st.sampled_from([body + " ", body[:-1], body + "&payload=x", " " + body]).filter(bool))
    elif flaw == "timestamp altered":
        headers["X-Slack-Request-Timestamp"] = str(now + draw(st.sampled_from([-2, -1, 1, 2])))
    elif flaw == "upper hex":
        headers["X-Slack-Signature"] = "v0=" + headers["X-Slack-Signature"][3:].upper()
    elif flaw == "v1 scheme":
        headers["X-Slack-Signature"] = "v1=" + headers["X-Slack-Signature"][3:]
    elif flaw == "random hex":
        headers["X-Slack-Signature"] = "v0=" + draw(st.text("0123456789abcdef", min_size=64, max_size=64))
    elif flaw == "odd timestamp":
        ts = headers["X-Slack-Request-Timestamp"]
        headers["X-Slack-Request-Timestamp"] = draw(
            st.sampled_from(
                [
                    " " + ts,
                    ts + "\n",
                    "+" + ts,
                    ts + ".0",
                    ts.translate(FULLWIDTH_DIGITS),
                ]
            )
        )
    else:
        headers["X-Slack-Request-Timestamp"] = headers["X-Slack-Signature"] = ""
    if headers.get("X-Slack-Signature", "").startswith("v0=") and draw(st.booleans()):
        headers = {k.lower(): v for k, v in headers.items()}
    note(f"flaw: {flaw}")
    return api_event(body, headers, binary=draw(st.booleans())), body


def _route_values() -> st.SearchStrategy[Any]:
    return st.sampled_from([ROUTE, ROUTE + "/", "/slack/Interactions", "/", "", "/slack/commands"]) | json_values()


api_fields = {
    "resource": _route_values(),
    "path": _route_values(),
    "httpMethod": st.sampled_from(["POST", "GET", "post", ""]) | json_values(),
    "body": st.one_of(bodies, awkward_text, json_values(), deep_values()),
    "isBase64Encoded": json_values(),
    "headers": st.one_of(
        json_values(),
        st.dictionaries(
            st.sampled_from(["X-Slack-Signature", "X-Slack-Request-Timestamp", "x-slack-signature", "Content-Type"])
            | awkward_text,
            awkward_text | json_values(),
            max_size=4,
        ),
    ),
    "requestContext": st.one_of(
        json_values(),
        st.fixed_dictionaries(
            {},
            optional={
                "requestId": request_ids | near_misses("req-0001") | awkward_text | json_values(),
                "identity": json_values() | st.fixed_dictionaries({}, optional={"sourceIp": json_values()}),
            },
        ),
    ),
}

any_events = st.one_of(
    json_values(),
    deep_values(),
    st.fixed_dictionaries({}, optional=api_fields),
    signed_events().map(lambda pair: pair[0]).flatmap(lambda e: mutated(e, st.one_of(*api_fields.values()))),
)


def correctly_signed(event: Any) -> bool:
    """Whether the event carries Slack's signature over its body, fresh, on the callback's route (the
    one kind of request that may queue anything)."""
    if not isinstance(event, dict) or (event.get("httpMethod"), event.get("resource") or event.get("path")) != (
        "POST",
        ROUTE,
    ):
        return False
    body = event.get("body") or ""
    headers = event.get("headers")
    if not isinstance(body, str) or not isinstance(headers, dict):
        return False
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except ValueError:
            return False
    lowered = {k.lower(): v for k, v in headers.items() if isinstance(k, str) and isinstance(v, str)}
    ts, signature = lowered.get("x-slack-request-timestamp", ""), lowered.get("x-slack-signature", "")
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 15 and abs(time.time() - int(ts)) <= 300):
        return False
    return unicode(body) and signature == slack_signature(SIGNING_SECRET, ts, body)


# -- properties ------------------------------------------------------------------------------------


@examples(1.0)
@given(raw=any_events)
def test_any_event_gets_a_known_status_and_only_a_signed_one_queues_anything(callback: Callback, raw: Any) -> None:
    # given
    signed = correctly_signed(raw)
    event("signed" if signed else "not signed")
    # when
    response = callback.answer(raw)
    queued = callback.queued()
    # then
    assert isinstance(response["statusCode"], int)
    assert response["statusCode"] in KNOWN_STATUSES
    assert isinstance(response["body"], str)
    event(f"status {response['statusCode']}")
    if not signed:
        assert queued == []
        assert response["statusCode"] != 200
    assert len(queued) <= 1


@examples(0.75)
@given(case=badly_signed_events())
def test_an_unsigned_or_badly_signed_request_is_refused_401_and_queues_nothing(
    callback: Callback, case: tuple[dict[str, Any], str]
) -> None:
    # given
    raw, body = case
    expected = 400 if not unicode(body) else 413 if len(body.encode()) > MAX_BODY_BYTES else 401
    # when
    response = callback.answer(raw)
    # then
    assert response["statusCode"] == expected
    assert callback.queued() == []


@examples(1.5)
@given(case=signed_events())
def test_a_signed_request_is_answered_and_queued_as_its_payload_asks(
    callback: Callback, case: tuple[dict[str, Any], str]
) -> None:
    # given
    raw, body = case
    reading = read_body(body) if unicode(body) and len(body.encode()) <= MAX_BODY_BYTES else None
    event(reading.kind.value if reading else "unreadable body")
    # when
    response = callback.answer(raw)
    queued = callback.queued()
    # then
    status, intents = response["statusCode"], [m["intent"] for m in queued]
    assert status in KNOWN_STATUSES
    if "decide" in intents:
        assert reading is not None
        assert reading.kind is Kind.DECIDE
    for message in queued:  # the request exactly as Slack signed it
        headers = {k.lower(): v for k, v in raw["headers"].items()}
        assert message == {
            "kind": "slack_request",
            "intent": message["intent"],
            "body": body,
            "timestamp": headers["x-slack-request-timestamp"],
            "signature": headers["x-slack-signature"],
            "correlation_id": raw["requestContext"]["requestId"],
        }
    if reading is None:
        assert (status, intents) == ((400 if not unicode(body) else 413), [])
        return
    if not reading.certain:
        event("not judged: the product is looser than S3 here")
        return
    if reading.kind is Kind.DECIDE:
        assert (status, response["body"], intents) == (200, "", ["decide"])
    elif reading.kind is Kind.CANCEL_CLICK:
        assert status == 200
        assert intents in ([], ["refuse_cancel"], ["modal_failed"] if reading.channel else [])
    elif reading.kind is Kind.FORM_ERRORS:
        assert (status, intents) == (200, [])
        assert json.loads(response["body"])["response_action"] == "errors"
    elif reading.kind is Kind.NOTHING:
        assert (status, intents) == (200, [])
    elif reading.kind is Kind.FOREIGN:
        assert (status, intents) == (403, ["invalid"])
    else:
        assert (status, intents) == (400, ["invalid"])


@given(body=st.sampled_from(["", None, "base64"]))
def test_a_correctly_signed_empty_or_missing_body_is_refused_400_and_recorded(
    callback: Callback, body: str | None
) -> None:
    # given
    raw = api_event("", signed_headers(""), binary=body == "base64")
    raw["body"] = None if body is None else raw["body"]
    # when
    response = callback.answer(raw)
    # then
    assert response["statusCode"] == 400
    assert [m["intent"] for m in callback.queued()] == ["invalid"]


# -- found by the properties above: pinned until fixed ---------------------------------------------

PINNED = settings(
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
)  # no explain phase: known failures


# Job references JobRef lets through although S3 Control's syntax does not allow them.
loose_refs = st.tuples(
    st.sampled_from(
        [ACCOUNT_ID, ACCOUNT_ID + "\n", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662"]
    ),
    st.sampled_from([REGION, REGION + "\n", "us-east-\u0661"]),
    st.sampled_from(["job-0001-abcdef", "job-0001-abcdef\n"]),
).filter(lambda ref: ref != (ACCOUNT_ID, REGION, "job-0001-abcdef"))


@PINNED
@given(ref=loose_refs)
def test_an_approve_click_naming_a_job_s3_could_not_accept_is_refused(
    callback: Callback, ref: tuple[str, str, str]
) -> None:
    # given
    payload = approve_click()
    payload["actions"][0]["value"] = Encoded(dict(zip(("account_id", "region", "job_id"), ref, strict=True)))
    body = form(json.dumps(render(payload)))
    # when
    response = callback.answer(api_event(body, signed_headers(body)))
    # then
    assert response["statusCode"] == 400
    assert [m["intent"] for m in callback.queued()] == ["invalid"]


@PINNED
@given(
    reason=st.builds(
        lambda before, surrogate, after: before + surrogate + after,
        st.text(max_size=5),
        st.characters(categories=["Cs"]),
        st.text(max_size=5),
    )
)
def test_a_cancel_reason_that_is_not_unicode_is_not_queued_as_a_decision(callback: Callback, reason: str) -> None:
    # given
    payload = cancel_submission()
    payload["view"]["state"]["values"]["reason"]["reason_input"]["value"] = reason
    body = form(json.dumps(render(payload)))
    # when
    response = callback.answer(api_event(body, signed_headers(body)))
    # then
    assert response["statusCode"] in {200, 400}
    assert "decide" not in [m["intent"] for m in callback.queued()]
