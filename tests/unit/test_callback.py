"""The Slack callback over real HTTP: API Gateway stand-in → callback.handler → SQS (moto) and Slack stand-in.

Requests are signed with slack_sdk's SignatureVerifier, as Slack signs them. The handler's settings come
from the environment, read again after ``wiring.reset_cold_start()``, exactly as a new execution
environment would read them. Nothing in the product is patched.
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
from pydantic import TypeAdapter
from slack_sdk.signature import SignatureVerifier

from approvals import wiring
from approvals.models.job import JobRef
from approvals.models.slack import (
    ButtonValue,
    DecisionCommand,
    ModalMetadata,
    NoticeCommand,
    QueuedWork,
    RefusalCommand,
)
from infra import constants as c
from sandbox.apigw import ApiGatewayFront
from sandbox.aws_local import LocalAws
from sandbox.slack import SlackStandIn
from tests.helpers import load_event

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
CHANNEL = "C0APPROVALS"
MESSAGE_TS = "1700000000.000100"
ALICE = "UALICE001"  # a named approver
GINA = "UGINA0001"  # an approver through the user group
MALLORY = "UMALLORY1"  # nobody's approver
GROUP = "S0APPROVERS"
REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0001-abcdef")
# Appears in every payload sent; must never reach a log line.
BODY_MARKER = "payload-text-never-logged"

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
    "POWERTOOLS_TRACE_DISABLED": "true",
}
_work: TypeAdapter[DecisionCommand | NoticeCommand] = TypeAdapter(QueuedWork)


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


# -- the harness ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: str
    content_type: str
    seconds: float


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
            **overrides,
        }
        for name, value in env.items():
            self._monkeypatch.setenv(name, value)
        for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"):
            self._monkeypatch.delenv(name, raising=False)
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

    def queued(self) -> list[DecisionCommand | NoticeCommand | RefusalCommand]:
        """Everything on the decisions queue (received, so each message is read once)."""
        work: list[DecisionCommand | NoticeCommand | RefusalCommand] = []
        while True:
            received = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = received.get("Messages", [])
            if not messages:
                return work
            work.extend(_work.validate_json(m["Body"]) for m in messages)

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


def emf_metrics(stdout: str) -> list[str]:
    """Names of the metrics in the EMF lines printed to stdout."""
    names: list[str] = []
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
            names.extend(metric["Name"] for metric in directive["Metrics"])
    return names


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
    [command] = api.queued()
    assert isinstance(command, DecisionCommand)
    assert command.job == REF
    assert command.decision == "approve"
    assert command.actor.user_id == ALICE
    assert command.actor.team_id == "T0APPROVE"
    assert command.decision_id == f"{ALICE}:{payload['actions'][0]['action_ts']}"
    assert (command.channel, command.message_ts) == (CHANNEL, MESSAGE_TS)
    assert command.correlation_id == event["requestContext"]["requestId"]
    assert len(api.slack) == 0


def test_the_queued_message_is_a_decision_command_on_the_wire(api: Callback, sqs: Any) -> None:
    # when
    api.send(click("approve_job"))
    # then
    received = sqs.receive_message(QueueUrl=api.queue_url, MaxNumberOfMessages=10)
    [message] = received["Messages"]
    command = DecisionCommand.model_validate_json(message["Body"])
    assert (command.kind, command.job.job_id, command.decision) == ("decision", REF.job_id, "approve")


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
    "unknown-type": (form({"type": "shortcut", "user": {"id": ALICE}}), 400, "unsupported payload type 'shortcut'"),
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


def assert_only_a_refusal_was_queued(api: Callback, reason_in: str) -> None:
    """A signed request we cannot act on decides nothing, but is queued to be recorded and explained."""
    [work] = api.queued()
    assert isinstance(work, RefusalCommand)
    assert work.reason in reason_in


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
        assert_only_a_refusal_was_queued(api, reason_in=reply.body)
    assert api.slack.calls_to("views.open") == []


def test_a_signed_body_with_too_many_form_fields_is_a_400_not_a_crash(api: Callback) -> None:
    # given
    body = form(click("approve_job")) + "".join(f"&extra{i}=1" for i in range(25))
    # when
    reply = api.post(body)
    # then (parse_qs's ValueError used to escape: an API Gateway 502)
    assert reply.status == 400
    assert reply.body.startswith("Request not understood:")
    assert_only_a_refusal_was_queued(api, reason_in=reply.body)


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
    [command] = api.queued()
    assert isinstance(command, DecisionCommand)
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
    assert_only_a_refusal_was_queued(api, reason_in=reply.body)


def test_a_modal_that_slack_refuses_to_open_still_acks_and_queues_a_notice(api: Callback) -> None:
    # given
    api.slack.fail("views.open", "expired_trigger_id")
    trigger = api.slack.issue_trigger_id(ALICE)
    # when
    reply = api.send(click("cancel_job", ALICE, trigger_id=trigger))
    # then
    assert (reply.status, reply.body) == (200, "")
    assert [call.error for call in api.slack.calls_to("views.open")] == ["expired_trigger_id"]
    [notice] = api.queued()
    assert isinstance(notice, NoticeCommand)
    assert (notice.job, notice.actor.user_id, notice.channel) == (REF, ALICE, CHANNEL)
    assert REF.job_id in notice.text
    assert "Nothing was changed" in notice.text


def test_a_slow_slack_does_not_make_the_callback_miss_the_three_second_ack(api: Callback) -> None:
    # given
    api.slack.slow("views.open", 5)
    trigger = api.slack.issue_trigger_id(ALICE)
    # when
    reply = api.send(click("cancel_job", ALICE, trigger_id=trigger))
    # then
    assert (reply.status, reply.body) == (200, "")
    assert reply.seconds < 3.0
    [notice] = api.queued()
    assert isinstance(notice, NoticeCommand)
    assert notice.actor.user_id == ALICE


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
    [command] = api.queued()
    assert isinstance(command, DecisionCommand)
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
    [command] = api.queued()
    assert command.actor.user_id == ALICE
