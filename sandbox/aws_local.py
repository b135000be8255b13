"""Local AWS for the sandbox and the tests: moto in server mode (a real HTTP endpoint).

DynamoDB tables, the Slack secret and the decisions queue are created from the same names and
key definitions the stack uses (infra.constants).

moto applies a DynamoDB request without a lock, so two concurrent conditional updates can both
succeed (seen: two claims both "won" in 3 of 40 trials). DynamoDB applies each request whole, so the
server here puts moto behind ``SerialisedDynamoDB``: one DynamoDB request at a time, everything else
(streams, SQS, Secrets Manager) concurrent as before.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from infra import constants as c

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}

# The X-Amz-Target of every DynamoDB call (streams use "DynamoDBStreams_20120810.", which stays concurrent).
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class DecisionTiming:
    """The decision path's timing in the sandbox, checked when it is built (so a bad change fails at start).

    Shorter than the stack's (infra.constants) so that a redelivery after a crash comes within a test's
    patience, in the same proportions: the lease outlasts one decider invocation, and the queue does not
    redeliver before the lease of the claim a message took has run out.
    """

    visibility_timeout: int  # the decisions queue's VisibilityTimeout
    lease: int  # DECISION_LEASE_SECONDS (the functions accept 10 or more)
    function_timeout: int  # the decider's timeout (what its LambdaContext counts down from)

    def __post_init__(self) -> None:
        c.check_decision_timing(
            visibility_timeout=self.visibility_timeout, lease=self.lease, function_timeout=self.function_timeout
        )


# 20 s covers the slowest decider the sandbox drives (S3 Control answering in 5 s, three calls); the lease and
# the visibility timeout follow from it. The stack's values are 60 s, 120 s and 360 s.
SANDBOX_DECISION_TIMING = DecisionTiming(visibility_timeout=60, lease=30, function_timeout=20)
# The notifier's shortest timeout here (seconds): LocalDeployment scales the stack's with Slack's time scale,
# so that a notifier can wait for its channel's turn behind the others, as in the stack.
SANDBOX_NOTIFIER_MIN_TIMEOUT = 3


def sandbox_notifier_timeout(slack_time_scale: float) -> int:
    """The notifier's timeout at this time scale: the stack's (60 Slack seconds), at least 3 real seconds."""
    return max(SANDBOX_NOTIFIER_MIN_TIMEOUT, math.ceil(c.NOTIFIER_TIMEOUT_SECONDS * slack_time_scale))


class SerialisedDynamoDB:
    """WSGI middleware: DynamoDB requests run one at a time, each to the end of its response.

    DynamoDB applies every request atomically (a conditional update's check and write are one step);
    moto's server does not lock, so this front holds one lock for each request whose X-Amz-Target is a
    DynamoDB operation. The response is read whole inside the lock, so nothing of it is computed after
    the next request starts.
    """

    def __init__(self, app: WsgiApp, lock: threading.Lock | None = None) -> None:
        self.app = app
        self._lock = lock or threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(DYNAMODB_TARGET_PREFIX):
            return self.app(environ, start_response)
        with self._lock:
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


class WsgiServer:
    """A threaded werkzeug server on a free loopback port, in a background thread."""

    def __init__(
        self,
        app: WsgiApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        request_handler: type[WSGIRequestHandler] | None = None,
    ) -> None:
        self.app = app
        self._host, self._port, self._request_handler = host, port, request_handler
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WsgiServer:
        self._server = make_server(
            self._host, self._port, self.app, threaded=True, request_handler=self._request_handler
        )
        serve = self._server.serve_forever
        self._thread = threading.Thread(target=serve, args=(0.05,), name="wsgi-server", daemon=True)
        self._thread.start()
        return self

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "call start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def allow_s3_job_arns_in_moto_iam() -> None:
    """moto 5.2's IAM policy validator refuses an S3 resource ARN with a region unless it is an access point, so
    it refuses ``arn:aws:s3:REGION:ACCOUNT:job/*``, the documented resource of s3:DescribeJob and
    s3:UpdateJobStatus, which IAM takes (the stack's own policies have it). Teach it job ARNs too; it checks
    everything else as before."""
    from moto.iam import policy_validation

    s3 = policy_validation.SERVICE_TYPE_REGION_INFORMATION_ERROR_ASSOCIATIONS.get("s3")
    if s3 is not None and "job/" not in s3.setdefault("valid_starting_values", []):
        s3["valid_starting_values"].append("job/")


def moto_server(*, host: str = "127.0.0.1", port: int = 0) -> WsgiServer:
    """moto's server as ``ThreadedMotoServer`` builds it (same app, same request handler), DynamoDB serialised."""
    allow_s3_job_arns_in_moto_iam()
    app = SerialisedDynamoDB(DomainDispatcherApplication(create_backend_app))
    return WsgiServer(app, host=host, port=port, request_handler=MotoRequestHandler)


@dataclass
class LocalAws:
    """A moto server plus the product's tables, secret and queue. ``env`` is what the handlers need."""

    prefix: str = field(default_factory=lambda: "sba-" + uuid.uuid4().hex[:8])
    server: WsgiServer | None = None
    url: str = ""
    timing: DecisionTiming = SANDBOX_DECISION_TIMING
    requests_table: str = ""
    audit_table: str = ""
    idempotency_table: str = ""
    secret_name: str = ""
    queue_url: str = ""
    dlq_url: str = ""
    job_events_queue_url: str = ""
    job_events_dlq_url: str = ""
    # Run moto in a process of its own (benchmarks: its work then does not share the handlers' GIL).
    separate_process: bool = False
    _process: subprocess.Popen[str] | None = None

    def start(self) -> LocalAws:
        if self.separate_process:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "sandbox.aws_local"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            assert self._process.stdout is not None
            self.url = self._process.stdout.readline().strip()
            if not self.url.startswith("http://"):
                raise RuntimeError(f"moto did not start in its own process: {self.url!r}")
            return self
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self.server = moto_server().start()
        self.url = self.server.url
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()  # the child serves until its stdin closes
            self._process.wait(timeout=10)
            self._process = None

    def client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client(service, endpoint_url=self.url)

    def provision(
        self, bot_token: str, signing_secret: str, notifier_timeout: int = SANDBOX_NOTIFIER_MIN_TIMEOUT
    ) -> LocalAws:
        """Create a fresh set of tables, secret and queue (unique names, so tests can share a server)."""
        self.requests_table = f"{self.prefix}-requests"
        self.audit_table = f"{self.prefix}-audit"
        self.idempotency_table = f"{self.prefix}-idempotency"
        self.secret_name = f"{self.prefix}/slack"
        dynamodb = self.client("dynamodb")
        create_requests_table(dynamodb, self.requests_table)
        create_audit_table(dynamodb, self.audit_table)
        create_idempotency_table(dynamodb, self.idempotency_table)
        self.client("secretsmanager").create_secret(
            Name=self.secret_name,
            SecretString=json.dumps({c.SECRET_BOT_TOKEN_KEY: bot_token, c.SECRET_SIGNING_SECRET_KEY: signing_secret}),
        )
        sqs = self.client("sqs")
        self.dlq_url = sqs.create_queue(QueueName=f"{self.prefix}-decisions-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_url = sqs.create_queue(
            QueueName=f"{self.prefix}-decisions",
            Attributes={
                "VisibilityTimeout": str(self.timing.visibility_timeout),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
            },
        )["QueueUrl"]
        # The job events queue (EventBridge → SQS → notifier), with the stack's maximum receives.
        self.job_events_dlq_url = sqs.create_queue(QueueName=f"{self.prefix}-job-events-dlq")["QueueUrl"]
        events_dlq_arn = sqs.get_queue_attributes(QueueUrl=self.job_events_dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.job_events_queue_url = sqs.create_queue(
            QueueName=f"{self.prefix}-job-events",
            Attributes={
                # Never delivered again while an invocation may still work on it; a failed event comes back
                # soon after (the stack: six times the timeout).
                "VisibilityTimeout": str(notifier_timeout + 1),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": events_dlq_arn, "maxReceiveCount": str(c.JOB_EVENTS_QUEUE_MAX_RECEIVES)}
                ),
            },
        )["QueueUrl"]
        return self

    def env(self) -> dict[str, str]:
        """AWS settings for the handlers: every client honours AWS_ENDPOINT_URL_<SERVICE>."""
        return {
            **CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_DYNAMODB": self.url,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.url,
            "AWS_ENDPOINT_URL_SQS": self.url,
            c.ENV_REQUESTS_TABLE_NAME: self.requests_table,
            c.ENV_AUDIT_TABLE_NAME: self.audit_table,
            c.ENV_IDEMPOTENCY_TABLE_NAME: self.idempotency_table,
            c.ENV_SLACK_SECRET_NAME: self.secret_name,
            c.ENV_DECISIONS_QUEUE_URL: self.queue_url,
            c.ENV_DECISION_LEASE_SECONDS: str(self.timing.lease),
            c.ENV_DECISION_STUCK_AFTER_SECONDS: str(
                c.decision_stuck_after(self.timing.lease, self.timing.visibility_timeout)
            ),
        }


def create_requests_table(dynamodb: Any, name: str) -> None:
    """Requests, with the stack's sparse indexes (infra.constants.REQUESTS_INDEXES); no stream (audit records
    have their own table)."""
    pk, sk = c.REQUESTS_TABLE_PARTITION_KEY, c.REQUESTS_TABLE_SORT_KEY
    keys = sorted({pk, sk} | {key for _, partition, sort in c.REQUESTS_INDEXES for key in (partition, sort)})
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index_name,
                "KeySchema": [
                    {"AttributeName": partition, "KeyType": "HASH"},
                    {"AttributeName": sort, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index_name, partition, sort in c.REQUESTS_INDEXES
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": c.REQUESTS_TABLE_TTL_ATTRIBUTE}
    )


def create_audit_table(dynamodb: Any, name: str) -> None:
    """Audit records, insert-only; the stream (old and new images) lets the audit writer see any overwrite."""
    pk, sk = c.AUDIT_TABLE_PARTITION_KEY, c.AUDIT_TABLE_SORT_KEY
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": pk, "AttributeType": "S"},
            {"AttributeName": sk, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def create_idempotency_table(dynamodb: Any, name: str) -> None:
    key = c.IDEMPOTENCY_TABLE_PARTITION_KEY
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": c.IDEMPOTENCY_TABLE_TTL_ATTRIBUTE},
    )


if __name__ == "__main__":  # LocalAws(separate_process=True): serve, print the URL, stop when stdin closes
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    served = moto_server().start()
    print(served.url, flush=True)
    sys.stdin.read()
    served.stop()
