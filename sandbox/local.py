"""The whole product on one machine: the real handlers between local stand-ins, over real HTTP.

    S3 Batch Operations emulator ──events──▶ EventRouter (the stack's JOB_EVENT_PATTERN and
        CREATE_JOB_CALL_PATTERN) ──▶ job events queue (SQS, moto; redelivery, dead-letter queue) ──▶ queue
        pump (the event source's maximum concurrency) ──▶ notifier, each post taking the channel's turn;
        emulator ──each CreateJob──▶ CloudTrail stand-in (event history, with its lag)
    notifier ──boto3 (via the loopback proxy)──▶ emulator;  ──slack_sdk──▶ Slack stand-in
    person's click ──signed HTTP──▶ API Gateway front ──▶ callback ──SQS (moto)──▶ queue pump ──▶ decider
    decider ──▶ emulator (UpdateJobStatus), DynamoDB (moto), Slack stand-in

Only one ``LocalDeployment`` runs per process: the handlers read their settings from the process
environment, as they do in Lambda.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from infra import constants as c
from sandbox.apigw import ApiGatewayFront, LambdaContext
from sandbox.aws_local import LocalAws, sandbox_notifier_timeout
from sandbox.cloudtrail import CloudTrailHistory, CloudTrailStandIn
from sandbox.proxy import LoopbackProxy, s3control_client_env
from sandbox.router import EventRouter
from sandbox.s3batch import JobStore, S3ControlEmulator, example_create_job_params
from sandbox.slack import SlackStandIn

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
CHANNEL = "C0APPROVALS"
BOT_TOKEN = "xoxb-sandbox-bot-token"
SIGNING_SECRET = "sandbox-signing-secret-0123456789abcdef"
APPROVER_GROUP = "S0APPROVERS"
ONCALL_GROUP = "S0ONCALL01"  # the sandbox policy escalates to it (and to ONCALL_CHANNEL)
ONCALL_CHANNEL = "C0ONCALL01"
POLICY_FILE = os.path.join(os.path.dirname(__file__), "policy.yaml")


@dataclass(frozen=True)
class Person:
    id: str
    name: str  # the Slack username, as interaction payloads carry it
    real_name: str
    display_name: str  # what colleagues see, and what the StatusUpdateReason records
    email: str | None = None


ALICE = Person("U0ALICE01", "alice", "Alice Approver", "Alice A.", "alice@example.com")
GINA = Person("U0GINA001", "gina", "Gina Group-Approver", "Gina G.", "gina@example.com")
MALLORY = Person("U0MALLORY", "mallory", "Mallory Onlooker", "Mallory M.", "mallory@example.com")
PEOPLE = (ALICE, GINA, MALLORY)

# Who creates jobs in the sandbox (the IAM principals CloudTrail records), and who they are in Slack:
# Alice through IAM Identity Center (her session is her email: users.lookupByEmail finds her), Gina through
# a role the sandbox policy maps to her, and a pipeline role that is nobody in Slack.
ALICE_SSO = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/AWSReservedSSO_DataEngineer_0123456789abcdef/alice@example.com"
GINA_ADMIN = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/gina-admin/gina"
PIPELINE = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/batch-pipeline/nightly-run"
PRINCIPALS = {"alice": ALICE_SSO, "gina": GINA_ADMIN, "pipeline": PIPELINE}


@dataclass
class Click:
    """What happened to one signed request sent to the callback."""

    status: int
    body: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sqs_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """The record Lambda's SQS event source hands the function for ``message`` (from ReceiveMessage)."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def requests_posted(slack: SlackStandIn, channel: str = CHANNEL) -> Counter[str]:
    """Job ID -> how many approval requests (top-level messages with the job's metadata) ``channel`` holds."""
    posted: Counter[str] = Counter()
    for message in slack.messages(channel):
        payload = (message.metadata or {}).get("event_payload") or {}
        if payload.get("job_id") and not message.thread_ts:
            posted[str(payload["job_id"])] += 1
    return posted


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


class QueuePump:
    """Lambda's SQS event source, locally: receive, invoke the decider, delete what succeeded.

    Like Lambda's, it runs several invocations at once (``concurrency``, the event source's maximum
    concurrency): a standard queue hands messages to concurrent pollers in no promised order.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Callable[[dict[str, Any], Any], Any],
        *,
        timeout_seconds: float,
        concurrency: int = 1,
        function_name: str = "decider",
    ):
        self._sqs, self._url, self._arn, self._handler = sqs, queue_url, queue_arn, handler
        self._timeout = timeout_seconds
        self._function_name = function_name
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-pump-{function_name}-{n}", daemon=True)
            for n in range(concurrency)
        ]
        self.failures: list[str] = []

    def start(self) -> QueuePump:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                got = self._sqs.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=0,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except self._sqs.exceptions.QueueDoesNotExist:
                got = []  # Lambda's poller finds nothing on a deleted queue either
            # A received message is invisible in the queue until it is deleted or its visibility timeout
            # ends, so idle() counts it through SQS's in-flight figure; the count here covers the moment
            # between the delete (or the failure) and the end of the invocation.
            for message in got:
                with self._lock:
                    self._in_flight += 1
                try:
                    self._invoke(message)
                finally:
                    with self._lock:
                        self._in_flight -= 1
            if not got:
                self._stop.wait(0.05)

    def _invoke(self, message: dict[str, Any]) -> None:
        record = sqs_record(message, self._arn, REGION)
        context = LambdaContext(self._function_name, timeout_seconds=self._timeout)
        try:
            response = self._handler({"Records": [record]}, context) or {}
        except Exception as exc:  # the whole invocation failed: the message becomes visible again
            self.failures.append(f"{type(exc).__name__}: {exc}")
            return
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        if message["MessageId"] in failed:
            self.failures.append(f"record {message['MessageId']} failed")
            return
        try:
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        except self._sqs.exceptions.ReceiptHandleIsInvalid:
            # Received again after its visibility timeout, while this invocation ran: the later receipt is
            # the one that counts, as in SQS (whose delete with an old receipt may leave the message).
            self.failures.append(f"record {message['MessageId']} outlived its visibility timeout")

    def idle(self) -> bool:
        """No message waiting or in flight, and no invocation running."""
        with self._lock:
            if self._in_flight:
                return False
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self._url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except self._sqs.exceptions.QueueDoesNotExist:
            attrs = {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
        with self._lock:
            running = self._in_flight
        return (
            not running
            and attrs["ApproximateNumberOfMessages"] == "0"
            and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
        )


@dataclass
class LocalDeployment:
    """Start with ``start()`` (or ``with``); every part listens on a free loopback port."""

    approver_ids: Iterable[str] = (ALICE.id,)
    approver_groups: dict[str, list[str]] = field(default_factory=lambda: {APPROVER_GROUP: [GINA.id]})
    auto_advance: bool = False
    advance_interval: float = 0.2
    # The job events queue's event source runs up to 5 notifiers at once (the stack's maximum concurrency),
    # side by side and in no promised order; so does the sandbox.
    notifier_concurrency: int = c.NOTIFIER_MAX_CONCURRENCY
    # Slack's pace, sped up: one Slack second lasts this many real seconds, for the Slack stand-in's
    # per-channel limit and the product's posting interval alike (1.0: as fast as Slack, no faster).
    slack_time_scale: float = 0.02
    # The decisions queue's event source runs up to 5 decider invocations at once (the stack's maximum
    # concurrency); so does the sandbox, so that concurrent votes and clicks really race.
    decider_concurrency: int = c.DECIDER_MAX_CONCURRENCY
    quiet: bool = True
    bot_token: str = BOT_TOKEN
    signing_secret: str = SIGNING_SECRET
    policy_file: str | None = POLICY_FILE
    # Whether a CloudTrail trail records management events (then EventBridge gets CreateJob calls), and
    # how long CloudTrail's event history takes to show a call (seconds; minutes in AWS).
    trail: bool = True
    history_delay: float = 0.0

    def start(self) -> LocalDeployment:
        self.notifier_timeout = sandbox_notifier_timeout(self.slack_time_scale)
        self.aws = LocalAws().start().provision(self.bot_token, self.signing_secret, self.notifier_timeout)
        # S3 and CloudTrail keep the product's time (``advance`` moves it for them too: creation and suspension
        # times, the history's window).
        self.cloudtrail = CloudTrailStandIn(
            CloudTrailHistory(account_id=ACCOUNT_ID, region=REGION, visibility_delay=self.history_delay, clock=self.now)
        ).start()
        self.jobs = JobStore(
            region=REGION,
            active_steps=3,
            trail_enabled=self.trail,
            on_management_event=self.cloudtrail.record,
            clock=self.now,
        )
        self.s3 = S3ControlEmulator(self.jobs, auto_advance=self.auto_advance, interval=self.advance_interval).start()
        self.proxy = LoopbackProxy(self.s3.url).start()
        self.slack = SlackStandIn(
            self.bot_token,
            users=[
                {
                    "id": p.id,
                    "name": p.name,
                    "real_name": p.real_name,
                    "display_name": p.display_name,
                    "email": p.email,
                }
                for p in PEOPLE
            ],
            groups=self.approver_groups,
            channels=[{"id": CHANNEL, "name": "s3-approvals"}, {"id": ONCALL_CHANNEL, "name": "s3-approvals-oncall"}],
            time_scale=self.slack_time_scale,
            clock=lambda: self.now().timestamp(),  # Slack signs and stamps with the product's time
        ).start()
        self._environment()
        # Imported after the environment is set, as Lambda would: Powertools reads it at import.
        from approvals import wiring
        from approvals.handlers import callback, decider, notifier

        wiring.reset_cold_start()
        # The product's clock (wiring.clock): ``advance`` moves it for every function, the signature check and
        # the requests this sandbox signs alike.
        self.clock = wiring.clock
        self.clock.reset()
        self.notifier_handler = notifier.handler
        # The rules' dead-letter queue: events EventBridge could not put on the job events queue at all.
        self.event_dlq: list[dict[str, Any]] = []
        sqs = self._events_sqs = self.aws.client("sqs")
        self.notifier = QueuePump(
            sqs,
            self.aws.job_events_queue_url,
            _queue_arn(sqs, self.aws.job_events_queue_url),
            notifier.handler,
            timeout_seconds=self.notifier_timeout,
            concurrency=self.notifier_concurrency,
            function_name="notifier",
        ).start()
        self.api = ApiGatewayFront(
            {
                ("POST", "/" + c.SLACK_INTERACTIONS_PATH): callback.handler,
                ("POST", "/" + c.SLACK_EVENTS_PATH): callback.handler,
                ("POST", "/" + c.SLACK_COMMANDS_PATH): callback.handler,
            },
            function_name="callback",
            timeout_seconds=10,
        ).start()
        self.router = EventRouter()
        self.router.add_rule("job-events", c.JOB_EVENT_PATTERN, self._deliver)
        self.router.add_rule("create-job-calls", c.CREATE_JOB_CALL_PATTERN, self._deliver)
        self.jobs.subscribe(self.router.put_events)
        self.pump = QueuePump(
            sqs,
            self.aws.queue_url,
            _queue_arn(sqs, self.aws.queue_url),
            decider.handler,
            timeout_seconds=self.aws.timing.function_timeout,
            concurrency=self.decider_concurrency,
        ).start()
        self.callback_url = self.api.url_for("/" + c.SLACK_INTERACTIONS_PATH)
        return self

    def stop(self) -> None:
        for part in ("pump", "notifier", "api", "slack", "proxy", "s3", "cloudtrail"):
            if hasattr(self, part):
                getattr(self, part).stop()
        if hasattr(self, "jobs"):
            self.jobs.close()
        if hasattr(self, "aws"):
            self.aws.stop()
        if hasattr(self, "clock"):
            self.clock.reset()
        for key in getattr(self, "_env_keys", []):
            os.environ.pop(key, None)
        urllib.request.install_opener(None)  # urllib's default opener remembers the proxy settings

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _environment(self) -> None:
        env = {
            **self.aws.env(),
            **s3control_client_env(self.proxy.url),
            "SLACK_API_URL": self.slack.api_url,
            c.ENV_SLACK_CHANNEL_ID: CHANNEL,
            c.ENV_SLACK_TEAM_ID: self.slack.team_id,
            c.ENV_APPROVER_USER_IDS: ",".join(self.approver_ids),
            c.ENV_APPROVER_GROUP_IDS: ",".join(self.approver_groups),
            "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_ENDPOINT_URL_CLOUDTRAIL": self.cloudtrail.url,
            c.ENV_REQUESTER_LOOKUP: c.REQUESTER_LOOKUP_CLOUDTRAIL,
            c.ENV_SLACK_POST_INTERVAL_SECONDS: str(self.slack_time_scale),
            **c.PYDANTIC_WITHOUT_PLUGINS,
        }
        if self.policy_file:
            env["POLICY_FILE"] = self.policy_file
        if self.quiet:
            env["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"
            env["POWERTOOLS_METRICS_DISABLED"] = "true"
        self._env_keys = list(env)
        os.environ.update(env)
        urllib.request.install_opener(None)  # rebuilt on next use, with these proxy settings

    # -- EventBridge: the rule's Lambda target -------------------------------------------------------

    def _deliver(self, event: dict[str, Any]) -> None:
        """Put the event on the job events queue, as the rule's SQS target does.

        The rule's retry policy and dead-letter queue cover only this step: an event the queue did not
        take goes to ``event_dlq``; one the notifier kept failing on ends in the queue's dead-letter queue
        (``notifier_failures``).
        """
        try:
            self._events_sqs.send_message(QueueUrl=self.aws.job_events_queue_url, MessageBody=json.dumps(event))
        except Exception:  # the queue is gone or unreachable: EventBridge's own dead-letter queue
            self.event_dlq.append(event)

    @property
    def notifier_failures(self) -> list[dict[str, Any]]:
        """The events in the job events dead-letter queue (peeked: they stay there)."""
        sqs = self.aws.client("sqs")
        found: dict[str, dict[str, Any]] = {}
        for _ in range(20):
            got = sqs.receive_message(
                QueueUrl=self.aws.job_events_dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            fresh = [m for m in got if m["MessageId"] not in found]
            if not fresh:
                break
            found.update({m["MessageId"]: json.loads(m["Body"]) for m in fresh})
        return list(found.values())

    def reconcile(self) -> Any:
        """The 15-minute schedule's event, now."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "region": REGION,
            "resources": [],
            "detail": {},
        }
        return self.notifier_handler(event, LambdaContext("notifier", timeout_seconds=60))

    # -- time: the lifecycle tick and the clock ---------------------------------------------------

    def now(self) -> datetime:
        """The product's time (the system clock, moved by ``advance``)."""
        return self.clock() if hasattr(self, "clock") else datetime.now(UTC)

    def tick(self) -> Any:
        """The lifecycle schedule's event (every minute in AWS), now."""
        return self.notifier_handler(dict(c.LIFECYCLE_TICK_EVENT), LambdaContext("notifier", timeout_seconds=60))

    def next_due(self) -> datetime | None:
        """When the earliest lifecycle step of any request is due (the state index, as the sweep reads it)."""
        from approvals.adapters.store import DynamoRequestStore

        store = DynamoRequestStore(self.aws.client("dynamodb"), self.aws.requests_table, self.aws.audit_table)
        soonest = store.open_requests(1)
        return soonest[0].due_at if soonest else None

    def advance(self, by: timedelta, max_ticks: int = 200) -> list[Any]:
        """Move the clock ``by`` forward as a minute's tick would see it pass: the clock stops at each step
        that falls due on the way (a reminder, an escalation, an expiry), the tick runs, the events it
        causes settle; then the clock reaches its end and the tick runs once more. Returns the ticks'
        results."""
        if by < timedelta(0):
            raise ValueError("the clock only moves forward")
        end = self.now() + by
        results = []
        for _ in range(max_ticks):
            due = self.next_due()
            if due is None or due > end:
                break
            if due > self.now():
                self.clock.advance(due - self.now())
            results.append(self.tick())
            self.settle()
            if self.next_due() == due:  # the step failed and is due again at once: the next tick's to retry
                break
        if end > self.now():
            self.clock.advance(end - self.now())
        results.append(self.tick())
        self.settle()
        return results

    # -- driving the story ------------------------------------------------------------------------

    def create_job(
        self,
        *,
        description: str = "Re-tag last month's raw events",
        object_count: int = 48_000,
        confirmation: bool = True,
        operation: dict[str, Any] | None = None,
        principal: str = PIPELINE,
        manifest_bucket: str = "example-manifests",
        tags: dict[str, str] | None = None,
    ) -> str:
        """CreateJob through the real boto3 s3control client, over HTTP to the emulator, signed with the
        credentials of ``principal`` (an IAM ARN, or a name in ``PRINCIPALS``), as CloudTrail records it."""
        params = example_create_job_params(ConfirmationRequired=confirmation, Description=description)
        if operation is not None:
            params["Operation"] = operation
        if tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        manifest = f"arn:aws:s3:::{manifest_bucket}/{uuid.uuid4().hex[:8]}.csv"
        params["Manifest"]["Location"]["ObjectArn"] = manifest
        self.jobs.set_manifest_object_count(manifest, object_count)
        client = self.s3control(PRINCIPALS.get(principal, principal))
        return str(client.create_job(AccountId=ACCOUNT_ID, **params)["JobId"])

    def s3control(self, principal: str | None = None) -> Any:
        """A boto3 s3control client as a person at a terminal would have, pointed at the emulator; with
        ``principal``, its requests are signed with an access key the emulator knows as that principal."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(region_name=REGION)
        if principal is not None:
            key = "ASIA" + uuid.uuid5(uuid.NAMESPACE_URL, principal).hex[:16].upper()
            self.jobs.add_principal(key, principal)
            session = boto3.session.Session(
                region_name=REGION, aws_access_key_id=key, aws_secret_access_key="sandbox-secret"
            )
        return session.client(
            "s3control", endpoint_url="http://s3-control.test", config=Config(proxies={"http": self.proxy.url})
        )

    def advance_until(self, job_id: str, status: str, timeout: float = 20.0) -> None:
        self.jobs.advance_until(job_id, status)
        self.settle(timeout)

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until every event is delivered and handled (retries included) and every queued decision applied."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.jobs.drain(timeout=max(0.1, deadline - time.monotonic()))
            if self.notifier.idle() and self.pump.idle() and self.jobs.drain(timeout=0.1) and self.notifier.idle():
                return
            time.sleep(0.05)
        raise TimeoutError("the sandbox did not settle: events or decisions still pending")

    def request_message(self, job_id: str) -> Any:
        for message in self.slack.messages(CHANNEL):
            if message.thread_ts in (None, message.ts) and job_id in json.dumps(message.blocks):
                return message
        raise LookupError(f"no approval request in {CHANNEL} for job {job_id}")

    def click(self, job_id: str, action_id: str, person: Person) -> Click:
        message = self.request_message(job_id)
        payload = self.slack.block_actions_payload(CHANNEL, message.ts, action_id, user=person.id)
        return self.post_payload(payload)

    def submit_reason(self, person: Person, reason: str) -> Click:
        opened = [v for v in self.slack.views() if v.user in (person.id, None)]
        if not opened:
            raise LookupError(f"no modal was opened for {person.name}")
        view = opened[-1]
        payload = {
            "type": "view_submission",
            "team": {"id": self.slack.team_id, "domain": self.slack.team_name},
            "user": {"id": person.id, "username": person.name, "name": person.name, "team_id": self.slack.team_id},
            "api_app_id": self.slack.app_id,
            "trigger_id": self.slack.issue_trigger_id(person.id),
            "view": {
                "id": view.id,
                "team_id": self.slack.team_id,
                "type": "modal",
                "callback_id": view.callback_id,
                "private_metadata": view.private_metadata,
                "hash": "h",
                "blocks": view.view.get("blocks", []),
                "state": {"values": {"reason": {"reason_input": {"type": "plain_text_input", "value": reason}}}},
            },
            "response_urls": [],
        }
        return self.post_payload(payload)

    def post_payload(
        self, payload: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None
    ) -> Click:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post_signed(body, secret=secret, timestamp=timestamp)

    def post_signed(
        self,
        body: str,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Click:
        ts = str(timestamp if timestamp is not None else int(self.now().timestamp()))
        signature = SignatureVerifier(secret or self.signing_secret).generate_signature(timestamp=ts, body=body)
        all_headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
            **(headers or {}),
        }
        request = urllib.request.Request(self.callback_url, data=body.encode(), headers=all_headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Click(response.status, response.read().decode(), time.perf_counter() - started)
        except urllib.error.HTTPError as error:
            return Click(error.code, error.read().decode(), time.perf_counter() - started)

    def audit(self, job_id: str) -> list[Any]:
        from approvals.adapters.store import DynamoRequestStore
        from approvals.models.job import JobRef

        store = DynamoRequestStore(self.aws.client("dynamodb"), self.aws.requests_table, self.aws.audit_table)
        return store.history(JobRef(account_id=ACCOUNT_ID, region=REGION, job_id=job_id))

    def request_record(self, job_id: str) -> Any:
        from approvals.adapters.store import DynamoRequestStore
        from approvals.models.job import JobRef

        store = DynamoRequestStore(self.aws.client("dynamodb"), self.aws.requests_table, self.aws.audit_table)
        return store.get(JobRef(account_id=ACCOUNT_ID, region=REGION, job_id=job_id))

    # -- the approver's queue: Slack's side of the Home tab and the slash command ---------------------

    def open_home(self, person: Person) -> list[Any]:
        """``person`` opens the app's Home tab: Slack sends app_home_opened (signed, 3 s, retried as Slack
        retries); the decider publishes their view. Returns Slack's deliveries (sandbox.slack.Delivery)."""
        envelope = self.slack.app_home_opened_event(person.id)
        deliveries = self.slack.send_event(self.api.url_for("/" + c.SLACK_EVENTS_PATH), envelope, self.signing_secret)
        self.settle()
        return deliveries

    def home(self, person: Person) -> str:
        """``person``'s Home tab, rendered as text, after opening it."""
        self.open_home(person)
        return self.slack.render_home(person.id)

    def command(self, text: str, person: Person, channel: str = CHANNEL) -> list[str]:
        """``person`` runs ``text`` (for example ``/s3-approvals pending``): the replies they see."""
        name, _, rest = text.strip().partition(" ")
        before = len(self.slack.ephemerals(person.id))
        form = self.slack.slash_command_form(name, rest.strip(), user=person.id, channel=channel)
        delivery = self.slack.send_command(self.api.url_for("/" + c.SLACK_COMMANDS_PATH), form, self.signing_secret)
        self.settle()
        replies = [self.slack.render_ephemeral(e) for e in self.slack.ephemerals(person.id)[before:]]
        if delivery.status != 200:
            replies.insert(0, f"(Slack: the command failed, HTTP {delivery.status})")
        elif delivery.body:
            answer = delivery.json() if delivery.body.startswith("{") else {"text": delivery.body}
            replies.insert(0, str(answer.get("text", "")))
        return replies

    def click_home(self, job_id: str, action_id: str, person: Person) -> Click:
        """``person`` clicks Approve or Cancel for ``job_id`` on their Home tab (as last published)."""
        return self.post_payload(self.slack.home_block_actions_payload(person.id, job_id, action_id))
