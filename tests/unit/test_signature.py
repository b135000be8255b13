"""Slack request signatures: SlackRequestVerifier over a real SecretsProvider against moto.

Requests are signed with slack_sdk's SignatureVerifier and checked with a fixed clock, as Slack's
own tests do. Each verifier gets its own secret and provider, so the Powertools cache is per test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from slack_sdk.signature import Clock, SignatureVerifier

from approvals.adapters.secrets import BOT_TOKEN_KEY, SIGNING_SECRET_KEY, SecretError, SlackSecrets
from approvals.adapters.signature import InvalidSignature, SlackRequestVerifier
from sandbox.aws_local import LocalAws

# Slack's documented example (docs.slack.dev, "verifying-requests-from-slack"); FACTS.md section 2.
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = 1531420618
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

NOW = 1_700_000_000
BODY = 'payload={"type":"block_actions"}'
OLD_SECRET = "old-signing-secret"
NEW_SECRET = "new-signing-secret"


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


class StoredSecret:
    """A Slack secret in (moto's) Secrets Manager, counting every GetSecretValue made for it."""

    def __init__(self, client: Any, signing_secret: str) -> None:
        self.client = client
        self.name = f"sba-test/slack-{uuid.uuid4().hex}"
        self.client.create_secret(Name=self.name, SecretString=self._value(signing_secret))
        self.fetches = 0
        self._event = "provide-client-params.secrets-manager.GetSecretValue"
        self.client.meta.events.register(self._event, self._count, unique_id=self.name)

    def close(self) -> None:
        self.client.meta.events.unregister(self._event, unique_id=self.name)
        self.client.delete_secret(SecretId=self.name, ForceDeleteWithoutRecovery=True)

    def rotate(self, signing_secret: str) -> None:
        self.client.put_secret_value(SecretId=self.name, SecretString=self._value(signing_secret))

    def verifier(self, now: float = NOW) -> SlackRequestVerifier:
        secrets = SlackSecrets(SecretsProvider(boto3_client=self.client), self.name, max_age=300)
        return SlackRequestVerifier(secrets, clock=FixedClock(now))

    @staticmethod
    def _value(signing_secret: str) -> str:
        return json.dumps({BOT_TOKEN_KEY: "xoxb-test-token", SIGNING_SECRET_KEY: signing_secret})

    def _count(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("SecretId") == self.name:
            self.fetches += 1


def signed(body: str, secret: str, timestamp: int | str = NOW) -> dict[str, str]:
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


def rejection(verifier: SlackRequestVerifier, body: str, headers: dict[str, str]) -> str:
    with pytest.raises(InvalidSignature) as caught:
        verifier.verify(body, headers)
    return caught.value.reason


@pytest.fixture(scope="module")
def secretsmanager(moto_server: LocalAws) -> Any:
    """One client for the module: making a boto3 client costs more than a test."""
    return moto_server.client("secretsmanager")


@pytest.fixture
def stored(secretsmanager: Any) -> Iterator[Callable[[str], StoredSecret]]:
    """Creates secrets on moto, each counting its own fetches; deletes them afterwards."""
    made: list[StoredSecret] = []

    def make(signing_secret: str) -> StoredSecret:
        made.append(StoredSecret(secretsmanager, signing_secret))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def secret(stored: Callable[[str], StoredSecret]) -> StoredSecret:
    return stored(OLD_SECRET)


@pytest.mark.parametrize("body", [VECTOR_BODY, VECTOR_BODY.encode()], ids=["text", "bytes"])
def test_slacks_documented_test_vector_verifies_at_its_own_time(
    stored: Callable[[str], StoredSecret], body: str | bytes
) -> None:
    # given
    vector = stored(VECTOR_SECRET)
    headers = {"X-Slack-Request-Timestamp": str(VECTOR_TIMESTAMP), "X-Slack-Signature": VECTOR_SIGNATURE}
    # when
    vector.verifier(now=VECTOR_TIMESTAMP).verify(body, headers)
    # then
    assert SignatureVerifier(VECTOR_SECRET).generate_signature(timestamp=str(VECTOR_TIMESTAMP), body=VECTOR_BODY) == (
        VECTOR_SIGNATURE
    )
    assert vector.fetches == 1


def test_the_test_vector_with_one_byte_changed_is_a_mismatch(stored: Callable[[str], StoredSecret]) -> None:
    # given
    vector = stored(VECTOR_SECRET)
    headers = {"X-Slack-Request-Timestamp": str(VECTOR_TIMESTAMP), "X-Slack-Signature": VECTOR_SIGNATURE}
    # when
    reason = rejection(vector.verifier(now=VECTOR_TIMESTAMP), VECTOR_BODY.replace("roadrunner", "roadrunnes"), headers)
    # then
    assert reason == "signature mismatch"


def test_a_forged_signature_is_rejected_as_a_mismatch(secret: StoredSecret) -> None:
    # given
    headers = signed(BODY, "not-the-signing-secret")
    # when
    reason = rejection(secret.verifier(), BODY, headers)
    # then
    assert reason == "signature mismatch"


@pytest.mark.parametrize("skew", [-301, 301, -86_400, 86_400], ids=["stale", "future", "a-day-old", "a-day-ahead"])
def test_a_timestamp_more_than_five_minutes_away_is_rejected_before_the_secret_is_read(
    secret: StoredSecret, skew: int
) -> None:
    # given a correctly signed request, sent too long ago or too far ahead
    headers = signed(BODY, OLD_SECRET, timestamp=NOW + skew)
    # when
    reason = rejection(secret.verifier(now=NOW), BODY, headers)
    # then
    assert reason == "stale or future timestamp"
    assert secret.fetches == 0


@pytest.mark.parametrize("skew", [-300, 300])
def test_a_timestamp_exactly_five_minutes_away_is_still_accepted(secret: StoredSecret, skew: int) -> None:
    # given
    headers = signed(BODY, OLD_SECRET, timestamp=NOW + skew)
    # when / then (no exception)
    secret.verifier(now=NOW).verify(BODY, headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": str(NOW)},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": ""},
    ],
    ids=["none", "no-timestamp", "no-signature", "empty-timestamp", "empty-signature"],
)
def test_missing_signature_headers_are_rejected_without_reading_the_secret(
    secret: StoredSecret, headers: dict[str, str]
) -> None:
    # when
    reason = rejection(secret.verifier(), BODY, headers)
    # then
    assert reason == "missing signature headers"
    assert secret.fetches == 0


@pytest.mark.parametrize("timestamp", ["abc", "1700000000.5", "-1700000000", "0x6553f100", "1e9", "17 00"])
def test_a_non_numeric_timestamp_is_rejected_as_malformed(secret: StoredSecret, timestamp: str) -> None:
    # given
    headers = signed(BODY, OLD_SECRET, timestamp=timestamp)
    # when
    reason = rejection(secret.verifier(), BODY, headers)
    # then
    assert reason == "malformed timestamp"
    assert secret.fetches == 0


@pytest.mark.parametrize(
    "timestamp",
    ["\u00b2", "\uff11\uff17\uff10\uff10", "9" * 5000, " 1700000000", "1700000000\n"],
    ids=["superscript-two", "fullwidth-digits", "5000-digits", "leading-space", "trailing-newline"],
)
def test_a_timestamp_that_is_not_plain_ascii_digits_is_rejected_as_malformed(
    secret: StoredSecret, timestamp: str
) -> None:
    # given digits str.isdigit() accepts but int() refuses or reads differently (a ValueError here was a 5xx)
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=" + "0" * 64}
    # when
    reason = rejection(secret.verifier(), BODY, headers)
    # then
    assert reason == "malformed timestamp"
    assert secret.fetches == 0


@pytest.mark.parametrize("prefix", ["", "v1=", "V0=", "sha256="])
def test_a_signature_without_the_v0_prefix_is_rejected_as_malformed(secret: StoredSecret, prefix: str) -> None:
    # given a correct HMAC, but labelled wrongly
    headers = signed(BODY, OLD_SECRET)
    headers["X-Slack-Signature"] = prefix + headers["X-Slack-Signature"].removeprefix("v0=")
    # when
    reason = rejection(secret.verifier(), BODY, headers)
    # then
    assert reason == "malformed signature"
    assert secret.fetches == 0


@pytest.mark.parametrize(
    ("timestamp_name", "signature_name"),
    [
        ("X-Slack-Request-Timestamp", "X-Slack-Signature"),
        ("x-slack-request-timestamp", "x-slack-signature"),
        ("X-SLACK-REQUEST-TIMESTAMP", "X-SLACK-SIGNATURE"),
        ("x-Slack-request-TIMESTAMP", "X-slack-SIGNATURE"),
    ],
    ids=["canonical", "lower", "upper", "mixed"],
)
def test_header_names_are_matched_whatever_their_case(
    secret: StoredSecret, timestamp_name: str, signature_name: str
) -> None:
    # given
    canonical = signed(BODY, OLD_SECRET)
    headers = {
        timestamp_name: canonical["X-Slack-Request-Timestamp"],
        signature_name: canonical["X-Slack-Signature"],
        "Content-Type": "application/x-www-form-urlencoded",
    }
    # when / then (no exception)
    secret.verifier().verify(BODY, headers)


def test_a_rotated_secret_is_fetched_again_once_and_the_request_passes(secret: StoredSecret) -> None:
    # given the old secret is cached by a request signed with it
    verifier = secret.verifier()
    verifier.verify(BODY, signed(BODY, OLD_SECRET))
    assert secret.fetches == 1
    # and the secret is rotated in Secrets Manager
    secret.rotate(NEW_SECRET)
    # when a request signed with the new secret arrives
    verifier.verify(BODY, signed(BODY, NEW_SECRET))
    # then the cached old secret failed and exactly one forced fetch got the new one
    assert secret.fetches == 2
    # and the new secret is what is cached now
    verifier.verify(BODY, signed(BODY, NEW_SECRET))
    assert secret.fetches == 2


def test_a_wrong_secret_is_rejected_even_after_fetching_the_secret_again(secret: StoredSecret) -> None:
    # given the secret is cached
    verifier = secret.verifier()
    verifier.verify(BODY, signed(BODY, OLD_SECRET))
    # when a request signed with another secret arrives
    reason = rejection(verifier, BODY, signed(BODY, "a-guessed-secret"))
    # then it was checked against a fresh copy once, and refused
    assert reason == "signature mismatch"
    assert secret.fetches == 2


def test_a_burst_of_forged_requests_fetches_the_secret_again_only_once(secret: StoredSecret) -> None:
    # given the secret is cached
    verifier = secret.verifier()
    verifier.verify(BODY, signed(BODY, OLD_SECRET))
    # when ten forged requests arrive within the re-fetch interval
    reasons = {rejection(verifier, BODY, signed(BODY, f"guess-{i}")) for i in range(10)}
    # then each is refused, and Secrets Manager was asked again only once
    assert reasons == {"signature mismatch"}
    assert secret.fetches == 2


@pytest.mark.parametrize(
    ("stored_value", "says"),
    [
        ("not json at all", "could not be read as JSON"),
        (json.dumps({BOT_TOKEN_KEY: "xoxb-x"}), "has no 'signing_secret'"),
    ],
)
def test_an_unusable_secret_is_a_secret_error_naming_the_key_never_the_value(
    secretsmanager: Any, stored_value: str, says: str
) -> None:
    # given
    name = f"sba-test/broken-{uuid.uuid4().hex}"
    secretsmanager.create_secret(Name=name, SecretString=stored_value)
    secrets = SlackSecrets(SecretsProvider(boto3_client=secretsmanager), name, max_age=300)
    # when
    with pytest.raises(SecretError) as caught:
        secrets.signing_secret()
    # then
    assert says in str(caught.value)
    assert "xoxb-x" not in str(caught.value)
    secretsmanager.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_a_missing_secret_is_a_secret_error(secretsmanager: Any) -> None:
    secrets = SlackSecrets(SecretsProvider(boto3_client=secretsmanager), "sba-test/never-created", max_age=300)
    with pytest.raises(SecretError, match="could not be read"):
        secrets.bot_token()
