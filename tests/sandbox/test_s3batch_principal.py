"""Who created a job: the emulator records the caller and logs each CreateJob as CloudTrail would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.constants import JOB_EVENT_PATTERN
from sandbox.proxy import S3_CONTROL_ENDPOINT, LoopbackProxy
from sandbox.s3batch import (
    API_CALL_DETAIL_TYPE,
    JobStore,
    S3ControlEmulator,
    S3ControlError,
    example_create_job_params,
    identity_from_arn,
)

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
ALICE_KEY, OPS_KEY, STRANGER_KEY = "AKIAALICE0000000001", "ASIAOPS000000000002", "AKIASTRANGER0000003"
ALICE_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"
OPS_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Operators_0123456789abcdef/ops@example.com"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class History:
    """The event history: what the management-event hook was given."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)


class Bus:
    """A listener that records what the store delivered."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [f"{e['detail-type']}:{e['detail']['eventName']}" for e in self.events]


API_CALL = f"{API_CALL_DETAIL_TYPE}:CreateJob"
JOB_CREATED = "AWS Service Event via CloudTrail:JobCreated"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3_CONTROL", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@pytest.fixture
def history() -> History:
    return History()


@pytest.fixture
def bus() -> Bus:
    return Bus()


def make_store(history: History, bus: Bus, **options: Any) -> JobStore:
    store = JobStore(
        clock=lambda: NOW,
        principals={ALICE_KEY: ALICE_ARN, OPS_KEY: OPS_ARN},
        on_management_event=history,
        **options,
    )
    store.subscribe(bus)
    return store


@pytest.fixture
def store(history: History, bus: Bus) -> Iterator[JobStore]:
    store = make_store(history, bus)
    yield store
    store.close()


@pytest.fixture
def proxy(store: JobStore) -> Iterator[LoopbackProxy]:
    with S3ControlEmulator(store) as emulator, LoopbackProxy(emulator.url) as proxy:
        yield proxy


def client_for(proxy: LoopbackProxy, access_key_id: str) -> BaseClient:
    session = boto3.session.Session(aws_access_key_id=access_key_id, aws_secret_access_key="secret")
    return session.client(
        "s3control",
        region_name="us-east-1",
        endpoint_url=S3_CONTROL_ENDPOINT,
        config=Config(proxies={"http": proxy.url}, retries={"mode": "standard", "total_max_attempts": 1}),
    )


def create(client: BaseClient, **overrides: Any) -> str:
    return str(client.create_job(AccountId=ACCOUNT, **example_create_job_params(**overrides))["JobId"])


# ----------------------------------------------------------------------------- the creator, over HTTP


def test_each_job_records_the_principal_whose_key_signed_the_request(
    store: JobStore, proxy: LoopbackProxy, history: History
) -> None:
    # given
    alice, ops = client_for(proxy, ALICE_KEY), client_for(proxy, OPS_KEY)

    # when
    alices_job = create(alice)
    ops_job = create(ops)

    # then
    assert store.job_creator(alices_job)["arn"] == ALICE_ARN
    assert store.job_creator(alices_job)["accessKeyId"] == ALICE_KEY
    assert store.job_creator(ops_job)["arn"] == OPS_ARN
    assert store.job_creator(ops_job)["type"] == "AssumedRole"
    assert [(r["responseElements"]["jobId"], r["userIdentity"]["arn"]) for r in history.records] == [
        (alices_job, ALICE_ARN),
        (ops_job, OPS_ARN),
    ]


def test_an_unknown_key_is_the_accounts_sandbox_user(store: JobStore, proxy: LoopbackProxy) -> None:
    # when
    job_id = create(client_for(proxy, STRANGER_KEY))

    # then
    creator = store.job_creator(job_id)
    assert (creator["type"], creator["arn"], creator["accountId"], creator["accessKeyId"]) == (
        "IAMUser",
        f"arn:aws:iam::{ACCOUNT}:user/sandbox",
        ACCOUNT,
        STRANGER_KEY,
    )


def test_describe_job_does_not_say_who_created_it(store: JobStore, proxy: LoopbackProxy) -> None:
    # given
    client = client_for(proxy, ALICE_KEY)
    job_id = create(client)

    # when
    job = client.describe_job(AccountId=ACCOUNT, JobId=job_id)["Job"]

    # then
    assert "alice" not in str(job)
    assert ALICE_KEY not in str(job)


def test_a_caller_from_another_account_is_access_denied_and_logged(
    history: History, bus: Bus, proxy: LoopbackProxy, store: JobStore
) -> None:
    # given
    store.add_principal("AKIAOUTSIDER00000004", f"arn:aws:iam::{OTHER_ACCOUNT}:user/mallory")

    # when
    with pytest.raises(ClientError) as raised:
        create(client_for(proxy, "AKIAOUTSIDER00000004"))

    # then
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert store.job_ids() == []
    (record,) = history.records
    assert (record["errorCode"], record["responseElements"]) == ("AccessDenied", None)
    assert record["userIdentity"]["accountId"] == OTHER_ACCOUNT


# ----------------------------------------------------------------------------- the management event


def test_create_job_goes_to_the_bus_as_cloudtrail_delivers_it_before_job_created(
    store: JobStore, proxy: LoopbackProxy, bus: Bus
) -> None:
    # when
    answer = client_for(proxy, OPS_KEY).create_job(AccountId=ACCOUNT, **example_create_job_params(Priority=42))
    job_id = answer["JobId"]
    assert store.drain(5)

    # then
    assert bus.kinds() == [API_CALL, JOB_CREATED]
    event = bus.events[0]
    assert (event["source"], event["detail-type"], event["account"], event["region"]) == (
        "aws.s3",
        "AWS API Call via CloudTrail",
        ACCOUNT,
        "us-east-1",
    )
    assert event["time"] == "2025-03-01T12:00:00Z"
    detail = event["detail"]
    assert {key: detail[key] for key in SCALARS} == {
        "eventSource": "s3.amazonaws.com",
        "eventName": "CreateJob",
        "awsRegion": "us-east-1",
        "eventTime": "2025-03-01T12:00:00Z",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    assert detail["eventVersion"].startswith("1.")
    assert detail["responseElements"] == {"jobId": job_id}
    assert detail["requestID"] == answer["ResponseMetadata"]["RequestId"]
    assert detail["eventID"] != event["id"]
    assert detail["sourceIPAddress"] == "127.0.0.1"
    assert detail["userAgent"].startswith("Boto3/")
    assert "errorCode" not in detail


SCALARS = (
    "eventSource",
    "eventName",
    "awsRegion",
    "eventTime",
    "readOnly",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
)


def test_the_record_names_the_caller_and_its_session_issuer(store: JobStore, proxy: LoopbackProxy, bus: Bus) -> None:
    # when
    create(client_for(proxy, OPS_KEY))
    assert store.drain(5)

    # then
    identity = bus.events[0]["detail"]["userIdentity"]
    assert (identity["type"], identity["arn"], identity["accountId"], identity["accessKeyId"]) == (
        "AssumedRole",
        OPS_ARN,
        ACCOUNT,
        OPS_KEY,
    )
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert issuer["type"] == "Role"
    assert issuer["arn"] == (
        f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Operators_0123456789abcdef"
    )
    assert issuer["userName"] == "AWSReservedSSO_Operators_0123456789abcdef"
    assert identity["principalId"] == f"{issuer['principalId']}:ops@example.com"


def test_request_parameters_say_what_the_job_is_without_its_arguments(store: JobStore, history: History) -> None:
    # given
    params = example_create_job_params(
        Operation={"LambdaInvoke": {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}},
        Tags=[{"Key": "secret", "Value": "do-not-log"}],
    )

    # when
    store.create_job(ACCOUNT, params, principal=ALICE_ARN)

    # then
    shown = history.records[0]["requestParameters"]
    assert shown["Operation"] == {"LambdaInvoke": {}}
    assert shown["Priority"] == params["Priority"]
    assert shown["ConfirmationRequired"] is True
    assert shown["Manifest"]["Location"]["ObjectArn"] == params["Manifest"]["Location"]["ObjectArn"]
    assert shown["accountId"] == ACCOUNT
    assert "function:f" not in str(shown)
    assert "do-not-log" not in str(shown)


def test_without_a_trail_only_the_event_history_hears_of_create_job(history: History, bus: Bus) -> None:
    # given
    store = make_store(history, bus, trail_enabled=False)

    # when
    job_id = store.create_job(ACCOUNT, example_create_job_params(), principal=OPS_ARN)
    assert store.drain(5)
    store.close()

    # then
    assert bus.kinds() == [JOB_CREATED]
    (record,) = history.records
    assert record["eventName"] == "CreateJob"
    assert record["responseElements"] == {"jobId": job_id}
    assert record["userIdentity"]["arn"] == OPS_ARN


def test_a_dropped_api_call_event_still_reaches_the_event_history(store: JobStore, history: History, bus: Bus) -> None:
    # given
    store.drop_next_events(1)

    # when
    job_id = store.create_job(ACCOUNT, example_create_job_params(), principal=ALICE_ARN)
    assert store.drain(5)

    # then
    assert bus.kinds() == [JOB_CREATED]
    assert [r["responseElements"]["jobId"] for r in history.records] == [job_id]


def test_a_duplicated_api_call_event_arrives_twice_with_one_event_id(store: JobStore, bus: Bus) -> None:
    # given
    store.duplicate_next_events(1)

    # when
    store.create_job(ACCOUNT, example_create_job_params(), principal=ALICE_ARN)
    assert store.drain(5)

    # then
    assert bus.kinds() == [API_CALL, API_CALL, JOB_CREATED]
    assert bus.events[0] == bus.events[1]


def test_the_api_call_event_does_not_match_the_job_event_rule(store: JobStore, bus: Bus) -> None:
    # when
    store.create_job(ACCOUNT, example_create_job_params(), principal=ALICE_ARN)
    assert store.drain(5)

    # then
    api_call = bus.events[0]
    assert api_call["detail-type"] not in JOB_EVENT_PATTERN["detail-type"]


def test_a_retried_create_job_is_a_second_call_for_the_same_job(store: JobStore, history: History, bus: Bus) -> None:
    # given
    params = example_create_job_params()
    first = store.create_job(ACCOUNT, params, principal=ALICE_ARN)

    # when
    again = store.create_job(ACCOUNT, params, principal=OPS_ARN)
    assert store.drain(5)

    # then
    assert again == first
    assert [r["responseElements"]["jobId"] for r in history.records] == [first, first]
    assert bus.kinds() == [API_CALL, JOB_CREATED, API_CALL]
    assert store.job_creator(first)["arn"] == ALICE_ARN


def test_a_refused_create_job_is_logged_with_its_error_and_no_job(store: JobStore, history: History) -> None:
    # when
    with pytest.raises(S3ControlError) as raised:
        store.create_job(ACCOUNT, example_create_job_params(Priority=-1), principal=ALICE_ARN)

    # then
    assert raised.value.code == "BadRequestException"
    (record,) = history.records
    assert record["errorCode"] == "BadRequestException"
    assert record["errorMessage"] == raised.value.message
    assert record["responseElements"] is None
    assert store.job_ids() == []


def test_a_failing_hook_does_not_fail_create_job(store: JobStore) -> None:
    # given
    def broken(record: dict[str, Any]) -> None:
        raise RuntimeError("history unavailable")

    store.on_management_event = broken

    # when
    job_id = store.create_job(ACCOUNT, example_create_job_params())

    # then
    assert store.job_status(job_id) == "New"
    assert store.management_events[-1]["responseElements"] == {"jobId": job_id}


# ----------------------------------------------------------------------------- identities from ARNs


@pytest.mark.parametrize(
    ("arn", "kind", "issuer"),
    [
        (f"arn:aws:iam::{ACCOUNT}:user/team/alice", "IAMUser", None),
        (f"arn:aws:iam::{ACCOUNT}:root", "Root", None),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-run-7", "AssumedRole", "Role"),
        (f"arn:aws:sts::{ACCOUNT}:federated-user/bob", "FederatedUser", "IAMUser"),
    ],
)
def test_an_arn_becomes_a_plausible_user_identity(arn: str, kind: str, issuer: str | None) -> None:
    # when
    identity = identity_from_arn(arn)

    # then
    assert (identity["type"], identity["arn"], identity["accountId"]) == (kind, arn, ACCOUNT)
    assert identity["principalId"]
    assert identity["accessKeyId"].startswith("ASIA" if issuer else "AKIA")
    found_issuer = identity.get("sessionContext", {}).get("sessionIssuer", {}).get("type")
    assert found_issuer == issuer


def test_an_assumed_roles_issuer_is_the_role_arn() -> None:
    # when
    identity = identity_from_arn(f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-run-7")

    # then
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert (issuer["arn"], issuer["userName"]) == (f"arn:aws:iam::{ACCOUNT}:role/deployer", "deployer")
    assert identity["principalId"] == f"{issuer['principalId']}:ci-run-7"


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::{ACCOUNT}:role/deployer",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer",
        "arn:aws:iam::12345:user/alice",
        "alice",
    ],
    ids=["role", "role without session", "short account", "not an arn"],
)
def test_what_cannot_call_an_api_is_refused(arn: str) -> None:
    # when / then
    with pytest.raises(ValueError, match="caller ARN"):
        identity_from_arn(arn)


def test_a_principal_given_as_a_dict_is_kept_as_given(store: JobStore) -> None:
    # given
    identity = {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:someone",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Custom/someone",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/path/Custom"}},
    }

    # when
    job_id = store.create_job(ACCOUNT, example_create_job_params(), principal=identity)

    # then
    assert store.job_creator(job_id) == identity


@pytest.mark.parametrize(
    "identity",
    [{"arn": "x", "accountId": ACCOUNT}, {"type": "Robot", "accountId": ACCOUNT}, {"type": "IAMUser"}],
    ids=["no type", "unknown type", "no account"],
)
def test_a_malformed_principal_is_refused_at_configuration(identity: dict[str, Any]) -> None:
    # when / then
    with pytest.raises(ValueError, match="userIdentity"):
        JobStore(principals={"AKIAEXAMPLE": identity})
