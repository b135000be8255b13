"""Local AWS for the sandbox and the tests: moto in server mode (a real HTTP endpoint).

DynamoDB tables, the Slack secret and the decisions queue are created from the same names and
key definitions the stack uses (infra.constants).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from infra import constants as c

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@dataclass
class LocalAws:
    """A moto server plus the product's tables, secret and queue. ``env`` is what the handlers need."""

    prefix: str = field(default_factory=lambda: "sba-" + uuid.uuid4().hex[:8])
    server: ThreadedMotoServer | None = None
    url: str = ""
    requests_table: str = ""
    idempotency_table: str = ""
    secret_name: str = ""
    queue_url: str = ""
    dlq_url: str = ""

    def start(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client(service, endpoint_url=self.url)

    def provision(self, bot_token: str, signing_secret: str) -> LocalAws:
        """Create a fresh set of tables, secret and queue (unique names, so tests can share a server)."""
        self.requests_table = f"{self.prefix}-requests"
        self.idempotency_table = f"{self.prefix}-idempotency"
        self.secret_name = f"{self.prefix}/slack"
        create_requests_table(self.client("dynamodb"), self.requests_table)
        create_idempotency_table(self.client("dynamodb"), self.idempotency_table)
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
                "VisibilityTimeout": "5",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
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
            c.ENV_IDEMPOTENCY_TABLE_NAME: self.idempotency_table,
            c.ENV_SLACK_SECRET_NAME: self.secret_name,
            c.ENV_DECISIONS_QUEUE_URL: self.queue_url,
        }


def create_requests_table(dynamodb: Any, name: str) -> None:
    pk, sk = c.REQUESTS_TABLE_PARTITION_KEY, c.REQUESTS_TABLE_SORT_KEY
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": pk, "AttributeType": "S"},
            {"AttributeName": sk, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": c.REQUESTS_TABLE_TTL_ATTRIBUTE}
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
