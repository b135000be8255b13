"""The Slack callback over real HTTP: API Gateway stand-in → callback.handler → SQS (moto) and Slack stand-in.

Requests are signed with slack_sdk's SignatureVerifier, as Slack signs them. The handler's settings come
from the environment, read again after ``wiring.reset_cold_start()``, exactly as a new execution
environment would read them. Nothing in the product is patched.

The queue carries each request exactly as Slack signed it (``SignedSlackRequest``) with the callback's
intent; what the decider will make of it is read here with the same function the decider uses
(``interactions.read``). Events no API Gateway front can produce (a lone surrogate, a body flagged base64
that is not ASCII, odd ``headers`` or ``requestContext``) are handed to ``callback.handler`` directly,
built from tests/events/apigw_slack_interaction.json.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from slack_sdk.signature import SignatureVerifier

from approvals import wiring
from approvals.config import SettingsError
from approvals.domain.interactions import OpenReasonModal, Queue, read
from approvals.models.job import JobRef
from approvals.models.slack import (
    ButtonValue,
    DecisionCommand,
    ModalMetadata,
    SignedSlackRequest,
)
from infra import constants as c
from sandbox.apigw import ApiGatewayFront, LambdaContext
from sandbox.aws_local import LocalAws
from sandbox.slack import SlackStandIn
from tests.helpers import emf_metrics, load_event

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
CHANNEL = "C0APPROVALS"
MESSAGE_TS = "1700000000.000100"
ALICE = "UALICE001"  # a named approver
GINA = "UGINA0001"  # an approver through the user group
MALLORY = "UMALLORY1"  # nobody's approver
GROUP = "S0APPROVERS"
TEAM = "T0APPROVE"  # the workspace of the samples in tests/events, and the one this deployment serves
REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0001-abcdef")
# Appears in every payload sent; must never reach a log line.
BODY_MARKER = "payload-text-never-logged"

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


# -- payloads, shaped after tests/events ------------------------------------------------------------


def click(
    action_id: str, user: str = ALICE, *, value: str | None = None, trigger_id: str = "1.2.abc"
) -> dict[str, Any]:
    payload = load_event("slack_block_actions_approve")
    payload["user"].update(id=user, username=BODY_MARKER, name=BODY_MARKER)
    payload["trigger_id"] = trigger_id
    payload["actions"][0]["action_id"] = action_id
    payload["actions"][0]["value"] = ButtonValue.from_ref(REF).encode() if value is None else value
    return payload


def submission(reason: str, user: str = ALICE, *, private_metadata: str | None = None) -> dict[str, Any]:
    payload = load_event("slack_view_submission_cancel")
    payload["user"].update(id=user, username=BODY_MARKER, name=BODY_MARKER)
    payload["view"]["private_metadata"] = (
        ModalMetadata(job=REF, channel=CHANNEL, message_ts=MESSAGE_TS).encode()
        if private_metadata is None
        else private_metadata
    )
    payload["view"]["state"]["values"]["reason"]["reason_input"]["value"] = reason
    return payload


def form(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def signature_for(body: str, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return signature


def api_gateway_event(
    body: str, *, base64_encoded: bool = False, signature: str | None = None, **changes: Any
) -> dict[str, Any]:
    """The API Gateway proxy event of tests/events carrying ``body``, signed now (or with ``signature``)."""
    event = load_event("apigw_slack_interaction")
    timestamp = str(int(time.time()))
    signed = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or signature_for(body, timestamp),
    }
    event["headers"].update(signed)
    event["multiValueHeaders"].update({name: [value] for name, value in signed.items()})
    event.update(body=body, isBase64Encoded=base64_encoded, **changes)
    return event


def decision_read_from(work: SignedSlackRequest, teams: tuple[str, ...] = (TEAM,)) -> DecisionCommand:
    """What the decider will read from the queued body (it reads it with the same function)."""
    action = read(work.body, teams, correlation_id=work.correlation_id)
    assert isinstance(action, Queue | OpenReasonModal), action
    return action.command


# -- the harness ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: str
    content_type: str
    seconds: float


@dataclass(frozen=True)
class Signed:
    """A request as the test signed it: the body, its timestamp and Slack's signature header."""

    body: str
    timestamp: str
    signature: str


class Callback:
    """The callback behind API Gateway, its queue and its Slack, as one deployment would have them."""

    def __init__(
        self,
        handler: Any,
        aws: LocalAws,
        sqs: Any,
        queue_url: str,
        slack: SlackStandIn,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.handler = handler
        self.aws = aws
        self.queue_url = queue_url
        self.slack = slack
        self._monkeypatch = monkeypatch
        self._sqs = sqs
        self._fronts: dict[tuple[bool, str], ApiGatewayFront] = {}
        self.signed: list[Signed] = []

    def configure(self, **overrides: str) -> None:
        """Set the function's environment and start a new execution environment."""
        env = {
            **self.aws.env(),
            **POWERTOOLS_ENV,
            c.ENV_DECISIONS_QUEUE_URL: self.queue_url,
            "SLACK_API_URL": self.slack.api_url,
            c.ENV_SLACK_CHANNEL_ID: CHANNEL,
            c.ENV_APPROVER_USER_IDS: ALICE,
            c.ENV_APPROVER_GROUP_IDS: GROUP,
            c.ENV_SLACK_TEAM_ID: TEAM,
            **overrides,
        }
        for name, value in env.items():
            self._monkeypatch.setenv(name, value)
        for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"):
            self._monkeypatch.delenv(name, raising=False)
        wiring.reset_cold_start()

    def configure_without(self, *names: str) -> None:
        """The usual environment without ``names``, in a new execution environment."""
        self.configure()
        for name in names:
            self._monkeypatch.delenv(name)
        wiring.reset_cold_start()

    def front(self, *, binary: bool = False, method: str = "POST") -> ApiGatewayFront:
        key = (binary, method)
        if key not in self._fronts:
            self._fronts[key] = ApiGatewayFront(
                {(method, "/" + c.SLACK_INTERACTIONS_PATH): self.handler},
                binary_media_types=["*/*"] if binary else [],
                function_name="callback",
                timeout_seconds=10,
            ).start()
        return self._fronts[key]

    def post(
        self,
        body: str | bytes,
        *,
        secret: str | None = SIGNING_SECRET,
        timestamp: str | None = None,
        binary: bool = False,
        method: str = "POST",
        route_method: str = "POST",
    ) -> Reply:
        """Send ``body`` as Slack would, signed with ``secret`` (unsigned when None)."""
        raw = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Slackbot 1.0"}
        if secret is not None:
            ts = timestamp or str(int(time.time()))
            headers["X-Slack-Request-Timestamp"] = ts
            signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=raw)
            assert signature is not None
            headers["X-Slack-Signature"] = signature
            self.signed.append(Signed(raw.decode("utf-8", errors="replace"), ts, signature))
        front = self.front(binary=binary, method=route_method)
        url = urlsplit(front.url_for(c.SLACK_INTERACTIONS_PATH))
        # http.client, not urllib: urllib's process-wide opener keeps whatever HTTP_PROXY an earlier test set.
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
        started = time.perf_counter()
        try:
            connection.request(method, url.path, body=raw, headers=headers)
            response = connection.getresponse()
            status, content, kind = response.status, response.read(), response.getheader("Content-Type", "")
        finally:
            connection.close()
        return Reply(status, content.decode(), kind, time.perf_counter() - started)

    def send(self, payload: dict[str, Any], **kwargs: Any) -> Reply:
        return self.post(form(payload), **kwargs)

    def last_event(self, binary: bool = False) -> dict[str, Any]:
        event = self.front(binary=binary).requests[-1].event
        assert event is not None
        return event

    def queued(self) -> list[SignedSlackRequest]:
        """Everything on the decisions queue (received, so each message is read once)."""
        work: list[SignedSlackRequest] = []
        while True:
            received = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = received.get("Messages", [])
            if not messages:
                return work
            work.extend(SignedSlackRequest.model_validate_json(m["Body"]) for m in messages)

    def intents(self) -> list[str]:
        """The intent of everything on the decisions queue (received, as ``queued``)."""
        return [work.intent for work in self.queued()]

    def invoke(self, event: Any) -> Any:
        """Hand ``event`` to the function directly, as Lambda would (for events no HTTP front produces)."""
        return self.handler(event, LambdaContext("callback", timeout_seconds=10))

    def stop(self) -> None:
        for front in self._fronts.values():
            front.stop()


@pytest.fixture(scope="module")
def callback_module() -> ModuleType:
    """Import the handler as Lambda would: with the Powertools settings already in the environment."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in POWERTOOLS_ENV.items():
            env.setenv(name, value)
        from approvals.handlers import callback

    return callback


@pytest.fixture(scope="module")
def module_aws(moto_server: LocalAws) -> LocalAws:
    """Tables and the Slack secret once per module (the callback only reads the secret); queues per test."""
    return LocalAws(server=moto_server.server, url=moto_server.url).provision(BOT_TOKEN, SIGNING_SECRET)


@pytest.fixture(scope="module")
def sqs(module_aws: LocalAws) -> Any:
    """The test's own SQS client (one per module: making a boto3 client costs more than a test)."""
    return module_aws.client("sqs")


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    standin = SlackStandIn(
        BOT_TOKEN,
        users=[
            {"id": ALICE, "name": "alice"},
            {"id": GINA, "name": "gina"},
            {"id": MALLORY, "name": "mallory"},
        ],
        groups={GROUP: [GINA]},
        channels=[{"id": CHANNEL, "name": "s3-approvals"}],
    ).start()
    yield standin
    standin.stop()


@pytest.fixture
def api(
    callback_module: ModuleType, module_aws: LocalAws, sqs: Any, slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callback]:
    # slack_sdk's WebClient uses urllib's process-wide opener, which keeps the proxies of the environment
    # it was first built in (an earlier e2e module sets HTTP_PROXY): start from a fresh one, as Lambda would.
    urllib.request.install_opener(None)
    queue_url = sqs.create_queue(QueueName=f"{module_aws.prefix}-decisions-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    deployed = Callback(callback_module.handler, module_aws, sqs, queue_url, slack, monkeypatch)
    deployed.configure()
    yield deployed
    deployed.stop()
    sqs.delete_queue(QueueUrl=queue_url)
    wiring.reset_cold_start()


@pytest.fixture
def logs(callback_module: ModuleType) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The function's Powertools JSON log lines, as written (same formatter), at INFO.

    Read through a second handler: the Logger's own stream is bound when the module is imported (to
    pytest's capture file), so capsys/capfd never see it. EMF metrics are printed at flush, so capsys does.
    """
    from approvals.observability import logger

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    level = logger.log_level
    logger.addHandler(handler)
    logger.setLevel("INFO")

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def assert_is_the_signed_request(work: SignedSlackRequest, signed: Signed) -> None:
    """The queued work carries the request exactly as it was signed, so the decider can verify it again."""
    assert (work.body, work.timestamp, work.signature) == (signed.body, signed.timestamp, signed.signature)


# -- approve -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True], ids=["text-body", "base64-body"])
def test_a_signed_approve_click_is_queued_once_and_acked_with_an_empty_200(api: Callback, binary: bool) -> None:
    # given
    payload = click("approve_job")
    # when
    reply = api.send(payload, binary=binary)
    # then
    assert (reply.status, reply.body) == (200, "")
    event = api.last_event(binary)
    assert event["isBase64Encoded"] is binary
    [work] = api.queued()
    assert work.intent == "decide"
    assert_is_the_signed_request(work, api.signed[-1])
    assert work.correlation_id == event["requestContext"]["requestId"]
    command = decision_read_from(work)
    assert command.job == REF
    assert command.decision == "approve"
    assert command.actor.user_id == ALICE
    assert command.actor.team_id == "T0APPROVE"
    assert command.decision_id == f"{ALICE}:{payload['actions'][0]['action_ts']}"
    assert (command.channel, command.message_ts) == (CHANNEL, MESSAGE_TS)
    assert command.correlation_id == event["requestContext"]["requestId"]
    assert len(api.slack) == 0


def test_the_queued_message_is_the_signed_request_on_the_wire_and_its_signature_still_verifies(
    api: Callback, sqs: Any
) -> None:
    # when
    api.send(click("approve_job"))
    # then
    received = sqs.receive_message(QueueUrl=api.queue_url, MaxNumberOfMessages=10)
    [message] = received["Messages"]
    work = SignedSlackRequest.model_validate_json(message["Body"])
    assert (work.kind, work.intent) == ("slack_request", "decide")
    assert work.body == form(click("approve_job"))
    assert SignatureVerifier(SIGNING_SECRET).is_valid(work.body, work.timestamp, work.signature)
    command = decision_read_from(work)
    assert (command.job.job_id, command.decision) == (REF.job_id, "approve")


# -- signatures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"secret": "a-guessed-secret"},
        {"timestamp": str(int(time.time()) - 600)},
        {"timestamp": str(int(time.time()) + 600)},
        {"secret": None},
        {"secret": "a-guessed-secret", "binary": True},
    ],
    ids=["forged", "stale", "future", "unsigned", "forged-base64"],
)
def test_a_request_not_provably_from_slack_gets_an_empty_401_and_nothing_is_queued(
    api: Callback,
    logs: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    request_kwargs: dict[str, Any],
) -> None:
    # when
    reply = api.send(click("approve_job"), **request_kwargs)
    # then
    assert (reply.status, reply.body) == (401, "")
    assert api.queued() == []
    assert len(api.slack) == 0
    lines = logs()
    [rejected] = [line for line in lines if line["message"] == "signature rejected"]
    assert rejected["level"] == "WARNING"
    assert rejected["reason"] in {"signature mismatch", "stale or future timestamp", "missing signature headers"}
    assert not any(BODY_MARKER in json.dumps(line) or REF.job_id in json.dumps(line) for line in lines)
    assert c.METRIC_SIGNATURE_REJECTED in emf_metrics(capsys.readouterr().out)


@pytest.mark.parametrize("timestamp", ["9" * 5000, "\u00b2"], ids=["5000-digits", "superscript-two"])
def test_a_timestamp_int_cannot_read_is_a_401_not_a_crash(api: Callback, timestamp: str) -> None:
    # when
    reply = api.post(form(click("approve_job")), timestamp=timestamp)
    # then
    assert (reply.status, reply.body) == (401, "")
    assert api.queued() == []


def test_an_unsigned_base64_body_that_is_not_utf8_is_refused_without_a_crash(api: Callback) -> None:
    # when
    reply = api.post(b"payload=\xff\xfe\xfd", secret=None, binary=True)
    # then
    assert reply.status in (400, 401)
    assert api.queued() == []


# -- bodies that cannot be acted on --------------------------------------------------------------------


def _with(payload: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    change(payload)
    return payload


MALFORMED: dict[str, tuple[str, int, str]] = {
    "no-payload-field": ("token=abc&team_id=T0APPROVE", 400, "no payload field"),
    "empty-payload": ("payload=", 400, "no payload field"),
    "payload-not-json": ("payload=%7Bnot-json", 400, "not JSON"),
    "payload-not-an-object": (form([]), 400, "no type"),  # type: ignore[arg-type]
    "unknown-type": (
        form({"type": "shortcut", "user": {"id": ALICE, "team_id": TEAM}}),
        400,
        "unsupported payload type 'shortcut'",
    ),
    "no-actions": (form(_with(click("approve_job"), lambda p: p.update(actions=[]))), 400, "actions"),
    "unknown-action-id": (form(click("delete_everything")), 400, "unknown action 'delete_everything'"),
    "value-not-json": (form(click("approve_job", value="job-0001-abcdef")), 400, "the button names no valid job"),
    "no-value": (form(_with(click("approve_job"), lambda p: p["actions"][0].pop("value"))), 400, "carries no job"),
    "account-not-12-digits": (
        form(click("approve_job", value='{"account_id":"12345","region":"us-east-1","job_id":"job-0001-abcdef"}')),
        400,
        "account ID must be 12 digits",
    ),
    "bad-job-id": (
        form(click("approve_job", value='{"account_id":"123456789012","region":"us-east-1","job_id":"job/../x"}')),
        400,
        "job ID must be 5 to 36 characters",
    ),
    "bad-region": (
        form(click("approve_job", value='{"account_id":"123456789012","region":"mars","job_id":"job-0001-abcdef"}')),
        400,
        "region must look like us-east-1",
    ),
    "value-over-2000": (form(click("approve_job", value="x" * 2001)), 400, "at most 2000 characters"),
    "cancel-without-trigger": (
        form(_with(click("cancel_job"), lambda p: p.pop("trigger_id"))),
        400,
        "no trigger_id",
    ),
    "unknown-form": (
        form(_with(submission("wrong prefix"), lambda p: p["view"].update(callback_id="other_form"))),
        400,
        "unknown form 'other_form'",
    ),
    "form-without-job": (form(submission("wrong prefix", private_metadata="{}")), 400, "names no valid job"),
    "body-over-64-kb": ("payload=" + "x" * (64 * 1024), 413, "too large"),
}


def assert_only_a_refusal_was_queued(api: Callback) -> None:
    """A signed request we cannot act on decides nothing, but is queued, exactly as signed, to be recorded."""
    [work] = api.queued()
    assert work.intent == "invalid"
    assert_is_the_signed_request(work, api.signed[-1])


@pytest.mark.parametrize(("body", "status", "says"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_signed_body_that_cannot_be_acted_on_is_refused_with_a_clear_4xx(
    api: Callback, body: str, status: int, says: str
) -> None:
    # when
    reply = api.post(body)
    # then
    assert reply.status == status
    assert reply.content_type.startswith("text/plain")
    assert says in reply.body
    if status == 413:  # refused before the signature is read: nothing to attribute
        assert api.queued() == []
    else:
        assert_only_a_refusal_was_queued(api)
    assert api.slack.calls_to("views.open") == []


def test_a_signed_body_with_too_many_form_fields_is_a_400_not_a_crash(api: Callback) -> None:
    # given
    body = form(click("approve_job")) + "".join(f"&extra{i}=1" for i in range(25))
    # when
    reply = api.post(body)
    # then (parse_qs's ValueError used to escape: an API Gateway 502)
    assert reply.status == 400
    assert reply.body.startswith("Request not understood:")
    assert_only_a_refusal_was_queued(api)


# -- cancel: the reason modal --------------------------------------------------------------------------


def test_a_cancel_click_by_an_approver_opens_the_reason_modal_and_queues_nothing(api: Callback) -> None:
    # given
    trigger = api.slack.issue_trigger_id(ALICE)
    # when
    reply = api.send(click("cancel_job", ALICE, trigger_id=trigger))
    # then
    assert (reply.status, reply.body) == (200, "")
    [call] = api.slack.calls_to("views.open")
    assert call.ok
    assert call.params["trigger_id"] == trigger
    [view] = api.slack.views()
    assert view.callback_id == "cancel_reason"
    metadata = ModalMetadata.model_validate_json(view.private_metadata)
    assert (metadata.job, metadata.channel, metadata.message_ts) == (REF, CHANNEL, MESSAGE_TS)
    assert api.queued() == []


def test_a_cancel_click_by_someone_only_a_group_could_vouch_for_opens_the_modal_while_the_group_is_unknown(
    api: Callback,
) -> None:
    # given no group members are cached yet: the callback cannot be certain, and asks nobody inside the 3 s
    trigger = api.slack.issue_trigger_id(MALLORY)
    # when
    reply = api.send(click("cancel_job", MALLORY, trigger_id=trigger))
    # then
    assert reply.status == 200
    assert len(api.slack.views()) == 1
    assert api.slack.calls_to("usergroups.users.list") == []
    assert api.queued() == []


@pytest.mark.parametrize("groups", ["none-configured", "group-cache-warm"])
def test_a_cancel_click_by_someone_certainly_not_an_approver_is_queued_for_refusal_without_a_modal(
    api: Callback, groups: str
) -> None:
    # given
    if groups == "none-configured":
        api.configure(**{c.ENV_APPROVER_GROUP_IDS: ""})
    else:
        wiring.callback().chat.group_members(GROUP)  # as a previous request in this environment would have
    calls_before = len(api.slack)
    trigger = api.slack.issue_trigger_id(MALLORY)
    # when
    reply = api.send(click("cancel_job", MALLORY, trigger_id=trigger))
    # then
    assert (reply.status, reply.body) == (200, "")
    assert api.slack.calls_to("views.open") == []
    assert len(api.slack) == calls_before
    [work] = api.queued()
    assert work.intent == "refuse_cancel"
    assert_is_the_signed_request(work, api.signed[-1])
    command = decision_read_from(work)
    assert (command.decision, command.actor.user_id, command.job) == ("cancel", MALLORY, REF)


def test_a_cancel_click_by_a_group_approver_opens_the_modal_when_the_group_is_cached(api: Callback) -> None:
    # given
    wiring.callback().chat.group_members(GROUP)
    trigger = api.slack.issue_trigger_id(GINA)
    # when
    reply = api.send(click("cancel_job", GINA, trigger_id=trigger))
    # then
    assert reply.status == 200
    assert [call.params["trigger_id"] for call in api.slack.calls_to("views.open")] == [trigger]
    assert api.queued() == []


@pytest.mark.parametrize("where", ["channel", "message"])
def test_a_cancel_click_naming_a_channel_or_message_too_long_for_the_form_is_a_400_not_a_crash(
    api: Callback, where: str
) -> None:
    # given a signed click whose channel id or message ts alone would overflow the modal's private_metadata
    payload = click("cancel_job", ALICE, trigger_id=api.slack.issue_trigger_id(ALICE))
    payload[where]["id" if where == "channel" else "ts"] = "C" + "0" * 3000
    # when
    reply = api.send(payload)
    # then (render_reason_modal's MessageTooLarge used to escape: an API Gateway 502)
    assert reply.status == 400
    assert reply.body.startswith("Request not understood:")
    assert api.slack.calls_to("views.open") == []
    assert_only_a_refusal_was_queued(api)


def test_a_modal_that_slack_refuses_to_open_still_acks_and_queues_the_click_to_tell_the_person(api: Callback) -> None:
    # given
    api.slack.fail("views.open", "expired_trigger_id")
    trigger = api.slack.issue_trigger_id(ALICE)
    # when
    reply = api.send(click("cancel_job", ALICE, trigger_id=trigger))
    # then
    assert (reply.status, reply.body) == (200, "")
    assert [call.error for call in api.slack.calls_to("views.open")] == ["expired_trigger_id"]
    [work] = api.queued()
    assert work.intent == "modal_failed"
    assert_is_the_signed_request(work, api.signed[-1])
    clicked = decision_read_from(work)  # the decider tells this person, in this channel, about this job
    assert (clicked.job, clicked.actor.user_id, clicked.channel) == (REF, ALICE, CHANNEL)


def test_a_slow_slack_does_not_make_the_callback_miss_the_three_second_ack(api: Callback) -> None:
    # given
    api.slack.slow("views.open", 5)
    trigger = api.slack.issue_trigger_id(ALICE)
    # when
    reply = api.send(click("cancel_job", ALICE, trigger_id=trigger))
    # then
    assert (reply.status, reply.body) == (200, "")
    # It gave up on views.open (its 2-second timeout) instead of waiting out Slack's 5 seconds: had it waited,
    # the modal would have opened and no modal_failed would be queued. (No timed assertion: these machines are
    # noisy.)
    [work] = api.queued()
    assert work.intent == "modal_failed"
    assert decision_read_from(work).actor.user_id == ALICE


# -- the modal's answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", "\n\t "], ids=["empty", "spaces", "whitespace"])
def test_a_blank_reason_keeps_the_modal_open_with_a_field_error(api: Callback, reason: str) -> None:
    # when
    reply = api.send(submission(reason))
    # then
    assert reply.status == 200
    assert reply.content_type.startswith("application/json")
    answer = json.loads(reply.body)
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"reason"}
    assert answer["errors"]["reason"].strip()
    assert api.queued() == []


def test_a_submitted_reason_closes_the_modal_and_queues_the_cancellation(api: Callback) -> None:
    # when
    reply = api.send(submission("  wrong manifest prefix  "))
    # then
    assert (reply.status, reply.body) == (200, "")
    [work] = api.queued()
    assert work.intent == "decide"
    assert_is_the_signed_request(work, api.signed[-1])
    assert work.correlation_id == api.last_event()["requestContext"]["requestId"]
    command = decision_read_from(work)
    assert (command.job, command.decision, command.reason) == (REF, "cancel", "wrong manifest prefix")
    assert command.actor.user_id == ALICE
    assert command.decision_id == f"{ALICE}:V0MODAL01"
    assert (command.channel, command.message_ts) == (CHANNEL, MESSAGE_TS)
    assert command.correlation_id == api.last_event()["requestContext"]["requestId"]
    assert len(api.slack) == 0


def test_a_closed_modal_is_acknowledged_and_nothing_is_queued(api: Callback) -> None:
    # given
    payload = _with(submission("typed, then closed"), lambda p: p.update(type="view_closed", is_cleared=False))
    # when
    reply = api.send(payload)
    # then
    assert (reply.status, reply.body) == (200, "")
    assert api.queued() == []
    assert len(api.slack) == 0


# -- other methods and a queue that is down ------------------------------------------------------------


@pytest.mark.parametrize("route_method", ["POST", "ANY"], ids=["api-routes-post-only", "api-forwards-any-method"])
def test_a_get_request_never_approves_anything(api: Callback, route_method: str) -> None:
    # when a correctly signed approve body arrives with GET
    reply = api.post(form(click("approve_job")), method="GET", route_method=route_method)
    # then
    assert reply.status in (403, 404, 405)
    assert api.queued() == []


def test_an_unreachable_queue_is_a_503_and_nothing_is_decided(api: Callback, module_aws: LocalAws) -> None:
    # given
    missing = module_aws.queue_url.rsplit("/", 1)[0] + "/no-such-queue-" + uuid.uuid4().hex[:8]
    api.configure(**{c.ENV_DECISIONS_QUEUE_URL: missing})
    # when
    reply = api.send(click("approve_job"))
    # then
    assert reply.status == 503
    assert "could not be queued" in reply.body
    assert "nothing was changed" in reply.body
    assert api.queued() == []
    assert len(api.slack) == 0


def test_the_body_sent_is_decoded_from_base64_exactly_before_its_signature_is_checked(api: Callback) -> None:
    # given a body with characters that form-encoding and base64 both change
    payload = click("approve_job")
    payload["user"]["name"] = "Zoë & Ørjan +1/2=½"
    # when
    reply = api.send(payload, binary=True)
    # then
    assert reply.status == 200
    assert base64.b64decode(api.last_event(binary=True)["body"]).decode() == form(payload)
    [work] = api.queued()
    assert work.body == form(payload)
    assert_is_the_signed_request(work, api.signed[-1])
    assert decision_read_from(work).actor.user_id == ALICE


# -- bodies and events the parser must survive ---------------------------------------------------------

NESTED = {
    # 50,000 levels cannot close inside the 64 KB limit (a body that big is refused as too large first)
    "50000-levels-unclosed": "payload=" + "[" * 50_000,
    "30000-levels-closed": "payload=" + "[" * 30_000 + "]" * 30_000,
}


@pytest.mark.parametrize("body", NESTED.values(), ids=NESTED.keys())
def test_a_signed_payload_nested_deeper_than_the_json_parser_goes_is_a_400_not_a_crash(
    api: Callback, body: str
) -> None:
    # given
    assert len(body) < 64 * 1024
    # when
    reply = api.post(body)
    # then (json.loads' RecursionError used to escape: an API Gateway 502)
    assert reply.status == 400
    assert reply.body == "Request not understood: the payload is not JSON"
    queued = api.queued()
    assert [work.intent for work in queued] in ([], ["invalid"])
    for work in queued:
        assert_is_the_signed_request(work, api.signed[-1])


def test_a_body_flagged_base64_that_is_not_ascii_is_a_400_not_a_crash(api: Callback) -> None:
    # given
    body = form(click("approve_job")).replace("approve", "\u00e9\u00e9")
    event = api_gateway_event(body, base64_encoded=True)
    # when
    response = api.invoke(event)
    # then (base64's ValueError for non-ASCII text used to escape)
    assert response["statusCode"] == 400
    assert response["body"] == "Request not understood: the body is not valid base64 UTF-8"
    assert api.queued() == []


def test_a_body_with_a_lone_surrogate_is_a_400_before_the_signature_or_the_secret_is_read(api: Callback) -> None:
    # given a secret that does not exist: reading it would be a 500, so a 400 proves it was never read
    api.configure(**{c.ENV_SLACK_SECRET_NAME: f"{api.aws.prefix}/no-such-secret"})
    body = "payload=" + json.dumps(click("approve_job"), ensure_ascii=False).replace(BODY_MARKER, "\ud800")
    event = api_gateway_event(body, signature="v0=" + "0" * 64)  # no bytes to sign: a wrong signature
    # when
    response = api.invoke(event)
    # then (body.encode()'s UnicodeEncodeError used to escape)
    assert response["statusCode"] == 400
    assert response["body"] == "Request not understood: the body is not valid UTF-8"
    assert api.queued() == []


@pytest.mark.parametrize("request_id", [42, {"a": 1}, "x" * 129, "req id with spaces"])
def test_a_request_id_that_is_not_an_api_gateway_request_id_is_a_400_and_nothing_is_queued(
    api: Callback, request_id: Any
) -> None:
    # given a correctly signed approve click
    event = api_gateway_event(form(click("approve_job")))
    event["requestContext"]["requestId"] = request_id
    # when
    response = api.invoke(event)
    # then (a non-string requestId used to reach DecisionCommand and escape as a ValidationError)
    assert response["statusCode"] == 400
    assert response["body"] == "Malformed request: requestContext.requestId is not a request ID"
    assert api.queued() == []


@pytest.mark.parametrize("headers", [["X-Slack-Signature", "v0=1"], "X-Slack-Signature: v0=1", 42])
def test_headers_that_are_not_an_object_are_a_401_not_a_crash(api: Callback, headers: Any) -> None:
    # given
    event = api_gateway_event(form(click("approve_job")))
    event["headers"] = headers
    # when
    response = api.invoke(event)
    # then (headers.items() used to escape as an AttributeError)
    assert (response["statusCode"], response["body"]) == (401, "")
    assert api.queued() == []


def test_a_cancel_reason_that_is_not_text_is_a_400_and_decides_nothing(api: Callback) -> None:
    # given a signed form whose reason field carries an object
    payload = submission("placeholder")
    payload["view"]["state"]["values"]["reason"]["reason_input"]["value"] = {"a": [1, 2]}
    # when
    reply = api.send(payload)
    # then (str() of the object used to become the cancellation reason)
    assert reply.status == 400
    assert reply.body == "Request not understood: the reason is not text"
    assert_only_a_refusal_was_queued(api)


def _set(path: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = payload
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value

    return change


IDENTIFIERS: dict[str, tuple[Callable[[], dict[str, Any]], str, str]] = {
    "view-id-3000-chars": (lambda: submission("wrong prefix"), "view.id", "V" + "0" * 2999),
    "view-id-with-punctuation": (lambda: submission("wrong prefix"), "view.id", "V0:../../x"),
    "action-ts-3000-chars": (lambda: click("approve_job"), "actions.0.action_ts", "1" * 3000),
    "action-ts-not-a-timestamp": (lambda: click("approve_job"), "actions.0.action_ts", "1700000100.1;x"),
    "user-id-3000-chars": (lambda: click("approve_job"), "user.id", "U" + "A" * 2999),
    "user-id-with-spaces": (lambda: click("approve_job"), "user.id", "UALICE001 admin"),
    "channel-id-3000-chars": (lambda: click("approve_job"), "channel.id", "C" + "0" * 2999),
    "channel-id-lowercase": (lambda: click("approve_job"), "channel.id", "C0approvals"),
    "submitter-id-3000-chars": (lambda: submission("wrong prefix"), "user.id", "U" + "A" * 2999),
}


@pytest.mark.parametrize(("payload", "path", "value"), IDENTIFIERS.values(), ids=IDENTIFIERS.keys())
def test_a_signed_request_naming_an_identifier_slack_never_issues_is_a_400_and_decides_nothing(
    api: Callback, payload: Callable[[], dict[str, Any]], path: str, value: str
) -> None:
    # given
    signed = _with(payload(), _set(path, value))
    # when
    reply = api.send(signed)
    # then
    assert reply.status == 400
    assert reply.body.startswith("Request not understood: malformed payload at ")
    assert_only_a_refusal_was_queued(api)
    assert api.slack.calls_to("views.open") == []


# -- the workspace ---------------------------------------------------------------------------------------


def _from(user_team: str | None, team: str | None) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        if user_team is None:
            payload["user"].pop("team_id", None)
        else:
            payload["user"]["team_id"] = user_team
        if team is None:
            payload.pop("team", None)
        else:
            payload["team"] = {"id": team, "domain": "elsewhere"}

    return change


FOREIGN: dict[str, tuple[Callable[[], dict[str, Any]], str | None, str | None]] = {
    "approve-from-another-workspace": (lambda: click("approve_job"), "T0OTHER01", "T0OTHER01"),
    "approve-slack-connect-guest": (lambda: click("approve_job"), "T0OTHER01", TEAM),
    "cancel-form-slack-connect-guest": (lambda: submission("wrong prefix"), "T0OTHER01", TEAM),
    "approve-no-user-team-other-team": (lambda: click("approve_job"), None, "T0OTHER01"),
    "approve-naming-no-workspace": (lambda: click("approve_job"), None, None),
}


@pytest.mark.parametrize(("payload", "user_team", "team"), FOREIGN.values(), ids=FOREIGN.keys())
def test_a_signed_request_from_someone_of_another_workspace_is_a_403_decides_nothing_and_is_recorded(
    api: Callback,
    capsys: pytest.CaptureFixture[str],
    payload: Callable[[], dict[str, Any]],
    user_team: str | None,
    team: str | None,
) -> None:
    # given
    signed = _with(payload(), _from(user_team, team))
    # when
    reply = api.send(signed)
    # then
    assert reply.status == 403
    assert reply.body.startswith("Request refused: this app serves another Slack workspace")
    assert_only_a_refusal_was_queued(api)  # the decider audits it
    assert api.slack.calls_to("views.open") == []
    assert c.METRIC_FOREIGN_TEAM in emf_metrics(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("served", "user_team", "team"),
    [(TEAM, TEAM, TEAM), (TEAM, None, TEAM), ("E0GRID001", "E0GRID001", TEAM), (f"T0SECOND1,{TEAM}", TEAM, TEAM)],
    ids=["our-workspace", "our-workspace-team-only", "enterprise-grid-org", "one-of-two-workspaces"],
)
def test_an_approve_click_from_someone_of_the_served_workspace_or_org_is_queued_to_decide(
    api: Callback, served: str, user_team: str | None, team: str
) -> None:
    # given
    api.configure(**{c.ENV_SLACK_TEAM_ID: served})
    signed = _with(click("approve_job"), _from(user_team, team))
    # when
    reply = api.send(signed)
    # then
    assert (reply.status, reply.body) == (200, "")
    [work] = api.queued()
    assert work.intent == "decide"
    assert_is_the_signed_request(work, api.signed[-1])
    command = decision_read_from(work, teams=tuple(served.split(",")))
    assert (command.job, command.decision, command.actor.user_id) == (REF, "approve", ALICE)


@pytest.mark.parametrize("setting", ["unset", "empty"])
def test_a_callback_not_told_which_workspace_it_serves_refuses_to_act_and_names_slack_team_id(
    api: Callback, setting: str
) -> None:
    # given
    if setting == "unset":
        api.configure_without(c.ENV_SLACK_TEAM_ID)
    else:
        api.configure(**{c.ENV_SLACK_TEAM_ID: ""})
    event = api_gateway_event(form(click("approve_job")))
    # when / then
    with pytest.raises(SettingsError, match="SLACK_TEAM_ID"):
        api.invoke(event)
    assert api.queued() == []
