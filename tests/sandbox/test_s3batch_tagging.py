"""The emulator's job tags (GetJobTagging, PutJobTagging, DeleteJobTagging), driven by the real boto3 client."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.proxy import S3_CONTROL_ENDPOINT, LoopbackProxy
from sandbox.s3batch import MAX_JOB_TAGS, JobStore, S3ControlEmulator, example_create_job_params

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
TAGS = [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "storage"}]


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3_CONTROL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@pytest.fixture
def store() -> Iterator[JobStore]:
    store = JobStore(trail_enabled=False)
    yield store
    store.close()


@pytest.fixture
def emulator(store: JobStore) -> Iterator[S3ControlEmulator]:
    with S3ControlEmulator(store, auto_advance=False) as emulator:
        yield emulator


@pytest.fixture
def proxy(emulator: S3ControlEmulator) -> Iterator[LoopbackProxy]:
    with LoopbackProxy(emulator.url) as proxy:
        yield proxy


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def client(proxy: LoopbackProxy) -> BaseClient:
    return _session().client(
        "s3control",
        region_name="us-east-1",
        endpoint_url=S3_CONTROL_ENDPOINT,
        config=Config(proxies={"http": proxy.url}, retries={"mode": "standard", "total_max_attempts": 1}),
    )


def create_job(client: BaseClient, account: str = ACCOUNT, **overrides: Any) -> str:
    job_id: str = client.create_job(AccountId=account, **example_create_job_params(**overrides))["JobId"]
    return job_id


def tags_of(client: BaseClient, job_id: str) -> list[dict[str, str]]:
    tags: list[dict[str, str]] = client.get_job_tagging(AccountId=ACCOUNT, JobId=job_id)["Tags"]
    return tags


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# --------------------------------------------------------------------------- reading


def test_a_job_keeps_the_tags_it_was_created_with_and_describe_does_not_show_them(client: BaseClient) -> None:
    # given
    job_id = create_job(client, Tags=TAGS)

    # when
    tags = tags_of(client, job_id)
    job = client.describe_job(AccountId=ACCOUNT, JobId=job_id)["Job"]

    # then
    assert tags == TAGS
    assert "Tags" not in job


def test_a_job_created_without_tags_has_an_empty_tag_set(client: BaseClient) -> None:
    # given
    job_id = create_job(client)

    # then
    assert tags_of(client, job_id) == []


def test_an_empty_tag_value_is_kept_as_an_empty_string(client: BaseClient) -> None:
    # given
    job_id = create_job(client, Tags=[{"Key": "flag", "Value": ""}])

    # then
    assert tags_of(client, job_id) == [{"Key": "flag", "Value": ""}]


@pytest.mark.parametrize("operation", ["get_job_tagging", "put_job_tagging", "delete_job_tagging"])
def test_every_tagging_operation_on_an_unknown_job_is_not_found(client: BaseClient, operation: str) -> None:
    # given
    extra: dict[str, Any] = {"Tags": TAGS} if operation == "put_job_tagging" else {}

    # when
    with pytest.raises(ClientError) as excinfo:
        getattr(client, operation)(AccountId=ACCOUNT, JobId="00000000-0000-4000-8000-000000000000", **extra)

    # then
    assert error_of(excinfo) == "NotFoundException"


@pytest.mark.parametrize("operation", ["get_job_tagging", "put_job_tagging", "delete_job_tagging"])
def test_another_accounts_job_is_not_found_and_keeps_its_tags(
    client: BaseClient, store: JobStore, operation: str
) -> None:
    # given
    job_id = store.create_job(OTHER_ACCOUNT, example_create_job_params(Tags=TAGS))
    extra: dict[str, Any] = {"Tags": []} if operation == "put_job_tagging" else {}

    # when
    with pytest.raises(ClientError) as excinfo:
        getattr(client, operation)(AccountId=ACCOUNT, JobId=job_id, **extra)

    # then
    assert error_of(excinfo) == "NotFoundException"
    assert store.get_job_tagging(OTHER_ACCOUNT, job_id) == {"Tags": TAGS}


def test_a_malformed_job_id_is_a_bad_request(client: BaseClient) -> None:
    # when
    with pytest.raises(ClientError) as excinfo:
        client.get_job_tagging(AccountId=ACCOUNT, JobId="job*with*stars")

    # then
    assert error_of(excinfo) == "BadRequestException"


# --------------------------------------------------------------------------- changing


def test_put_replaces_the_whole_tag_set(client: BaseClient) -> None:
    # given
    job_id = create_job(client, Tags=TAGS)

    # when
    response = client.put_job_tagging(AccountId=ACCOUNT, JobId=job_id, Tags=[{"Key": "env", "Value": "dev"}])

    # then
    assert tags_of(client, job_id) == [{"Key": "env", "Value": "dev"}]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-length"] == "0", "an empty body, as S3 sends"


def test_put_with_an_empty_tag_set_removes_every_tag(client: BaseClient) -> None:
    # given
    job_id = create_job(client, Tags=TAGS)

    # when
    client.put_job_tagging(AccountId=ACCOUNT, JobId=job_id, Tags=[])

    # then
    assert tags_of(client, job_id) == []


def test_delete_removes_every_tag_and_may_be_repeated(client: BaseClient) -> None:
    # given
    job_id = create_job(client, Tags=TAGS)

    # when
    first = client.delete_job_tagging(AccountId=ACCOUNT, JobId=job_id)
    second = client.delete_job_tagging(AccountId=ACCOUNT, JobId=job_id)

    # then
    assert tags_of(client, job_id) == []
    assert [r["ResponseMetadata"]["HTTPHeaders"]["content-length"] for r in (first, second)] == ["0", "0"]


def test_a_retried_create_job_returns_the_job_with_the_tags_put_since(client: BaseClient) -> None:
    # given
    params = example_create_job_params(Tags=TAGS)
    job_id = client.create_job(AccountId=ACCOUNT, **params)["JobId"]
    client.put_job_tagging(AccountId=ACCOUNT, JobId=job_id, Tags=[{"Key": "env", "Value": "dev"}])

    # when
    again = client.create_job(AccountId=ACCOUNT, **params)["JobId"]

    # then
    assert again == job_id
    assert tags_of(client, job_id) == [{"Key": "env", "Value": "dev"}]


def test_more_than_fifty_tags_is_too_many_and_changes_nothing(client: BaseClient) -> None:
    # given
    job_id = create_job(client, Tags=TAGS)
    many = [{"Key": f"k{n}", "Value": "v"} for n in range(MAX_JOB_TAGS + 1)]

    # when
    with pytest.raises(ClientError) as excinfo:
        client.put_job_tagging(AccountId=ACCOUNT, JobId=job_id, Tags=many)
    client.put_job_tagging(AccountId=ACCOUNT, JobId=job_id, Tags=many[:MAX_JOB_TAGS])

    # then
    assert error_of(excinfo) == "TooManyTagsException"
    assert len(tags_of(client, job_id)) == MAX_JOB_TAGS


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param([{"Key": "env", "Value": "a"}, {"Key": "env", "Value": "b"}], id="repeated key"),
        pytest.param([{"Key": "k" * 129, "Value": "v"}], id="key too long"),
        pytest.param([{"Key": "k", "Value": "v" * 257}], id="value too long"),
        pytest.param([{"Key": "cost*centre", "Value": "v"}], id="key outside the pattern"),
        pytest.param([{"Key": "k", "Value": "a;b"}], id="value outside the pattern"),
        pytest.param([{"Key": "aws:reserved", "Value": "v"}], id="reserved prefix"),
    ],
)
def test_a_tag_set_s3tag_refuses_is_a_bad_request_and_changes_nothing(
    client: BaseClient, tags: list[dict[str, str]]
) -> None:
    # given
    job_id = create_job(client, Tags=TAGS)

    # when
    with pytest.raises(ClientError) as put:
        client.put_job_tagging(AccountId=ACCOUNT, JobId=job_id, Tags=tags)
    with pytest.raises(ClientError) as create:
        create_job(client, Tags=tags)

    # then
    assert error_of(put) == "BadRequestException"
    assert error_of(create) == "BadRequestException"
    assert tags_of(client, job_id) == TAGS


def test_the_longest_keys_and_values_and_every_allowed_kind_of_character_are_taken(client: BaseClient) -> None:
    # given
    job_id = create_job(client)
    tags = [
        {"Key": "k" * 128, "Value": "v" * 256},
        {"Key": "Kostenstelle 7", "Value": "Größe_.:/=+-@"},
        {"Key": "チーム", "Value": "ストレージ"},
    ]

    # when
    client.put_job_tagging(AccountId=ACCOUNT, JobId=job_id, Tags=tags)

    # then
    assert tags_of(client, job_id) == tags


def test_a_put_body_that_is_not_the_tagging_document_is_a_bad_request(emulator: S3ControlEmulator) -> None:
    # given
    job_id = emulator.store.create_job(ACCOUNT, example_create_job_params(Tags=TAGS))
    request = urllib.request.Request(
        f"{emulator.url}/v20180820/jobs/{job_id}/tagging",
        data=b"<Tagging><TagSet/></Tagging>",
        method="PUT",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250301/us-east-1/s3/aws4_request"},
    )
    request.add_header("x-amz-account-id", ACCOUNT)

    # when
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)

    # then
    assert excinfo.value.code == 400
    assert b"<Code>BadRequestException</Code>" in excinfo.value.read()
    assert emulator.store.get_job_tagging(ACCOUNT, job_id) == {"Tags": TAGS}


# --------------------------------------------------------------------------- fault hooks


def test_the_fault_hooks_reach_the_tagging_operations(client: BaseClient, store: JobStore) -> None:
    # given
    job_id = create_job(client, Tags=TAGS)
    store.throttle_next("GetJobTagging")
    store.fail_next("PutJobTagging")

    # when
    with pytest.raises(ClientError) as throttled:
        tags_of(client, job_id)
    with pytest.raises(ClientError) as failed:
        client.put_job_tagging(AccountId=ACCOUNT, JobId=job_id, Tags=[])

    # then
    assert error_of(throttled) == "TooManyRequestsException"
    assert error_of(failed) == "InternalServiceException"
    assert tags_of(client, job_id) == TAGS
    assert (store.calls["GetJobTagging"], store.calls["PutJobTagging"]) == (2, 1)
