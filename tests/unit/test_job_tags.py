"""``S3ControlJobs.tags``: GetJobTagging over HTTP, with a real boto3 client, against the S3 Control emulator."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.adapters.s3control import S3ControlJobs
from approvals.domain.ports import JobNotFound, JobsUnavailable
from approvals.models.job import JobRef
from sandbox.proxy import S3_CONTROL_ENDPOINT, LoopbackProxy
from sandbox.s3batch import MAX_JOB_TAGS, JobStore, S3ControlEmulator, example_create_job_params

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3_CONTROL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@pytest.fixture(scope="module")
def store() -> Iterator[JobStore]:
    store = JobStore(region=REGION, trail_enabled=False)
    yield store
    store.close()


@pytest.fixture(scope="module")
def proxy(store: JobStore) -> Iterator[LoopbackProxy]:
    with S3ControlEmulator(store, auto_advance=False) as emulator, LoopbackProxy(emulator.url) as proxy:
        yield proxy


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


def _client(proxy_url: str, region: str, attempts: int) -> BaseClient:
    return _session().client(
        "s3control",
        region_name=region,
        endpoint_url=S3_CONTROL_ENDPOINT,
        config=Config(proxies={"http": proxy_url}, retries={"mode": "standard", "total_max_attempts": attempts}),
    )


class Clients:
    """The adapter's (account, region, job) → client factory, recording which regions were asked for."""

    def __init__(self, proxy_url: str, attempts: int = 3) -> None:
        self.proxy_url = proxy_url
        self.attempts = attempts
        self.regions: list[str] = []

    def __call__(self, account_id: str, region: str, job_id: str | None) -> BaseClient:
        self.regions.append(region)
        return _client(self.proxy_url, region, self.attempts)


@pytest.fixture
def clients(proxy: LoopbackProxy) -> Clients:
    return Clients(proxy.url)


@pytest.fixture
def jobs(clients: Clients) -> S3ControlJobs:
    return S3ControlJobs(clients)


@pytest.fixture
def new_job(store: JobStore) -> Callable[..., JobRef]:
    def make(account: str = ACCOUNT, **overrides: Any) -> JobRef:
        job_id = store.create_job(account, example_create_job_params(**overrides))
        return JobRef(account_id=account, region=REGION, job_id=job_id)

    return make


def test_the_tags_a_job_was_created_with_are_read_as_a_dict(
    jobs: S3ControlJobs, clients: Clients, new_job: Callable[..., JobRef]
) -> None:
    # given
    ref = new_job(Tags=[{"Key": "env", "Value": "prod"}, {"Key": "approval-team", "Value": "storage"}])

    # when
    tags = jobs.tags(ref)

    # then
    assert tags == {"env": "prod", "approval-team": "storage"}
    assert clients.regions == [REGION], "asked in the job's own region"


def test_a_job_without_tags_has_none(jobs: S3ControlJobs, new_job: Callable[..., JobRef]) -> None:
    # given
    ref = new_job()

    # then
    assert jobs.tags(ref) == {}


def test_the_tags_are_read_as_they_are_now_not_as_they_were_created(
    jobs: S3ControlJobs, store: JobStore, new_job: Callable[..., JobRef]
) -> None:
    # given
    ref = new_job(Tags=[{"Key": "env", "Value": "prod"}])
    store.put_job_tagging(ACCOUNT, ref.job_id, [{"Key": "env", "Value": "dev"}, {"Key": "empty", "Value": ""}])

    # when
    tags = jobs.tags(ref)

    # then
    assert tags == {"env": "dev", "empty": ""}


def test_an_unknown_job_is_job_not_found(jobs: S3ControlJobs) -> None:
    # given
    ref = JobRef(account_id=ACCOUNT, region=REGION, job_id="00000000-0000-4000-8000-000000000000")

    # when / then
    with pytest.raises(JobNotFound):
        jobs.tags(ref)


def test_a_job_of_another_account_is_job_not_found(jobs: S3ControlJobs, new_job: Callable[..., JobRef]) -> None:
    # given
    theirs = new_job(OTHER_ACCOUNT, Tags=[{"Key": "env", "Value": "prod"}])
    ref = JobRef(account_id=ACCOUNT, region=REGION, job_id=theirs.job_id)

    # when / then
    with pytest.raises(JobNotFound):
        jobs.tags(ref)


def test_one_throttled_call_is_retried_by_botocore(
    jobs: S3ControlJobs, store: JobStore, new_job: Callable[..., JobRef]
) -> None:
    # given
    ref = new_job(Tags=[{"Key": "env", "Value": "prod"}])
    before = store.calls["GetJobTagging"]
    store.throttle_next("GetJobTagging")

    # when
    tags = jobs.tags(ref)

    # then
    assert tags == {"env": "prod"}
    assert store.calls["GetJobTagging"] - before == 2


def test_throttling_past_the_retries_is_jobs_unavailable(
    jobs: S3ControlJobs, store: JobStore, new_job: Callable[..., JobRef]
) -> None:
    # given
    ref = new_job()
    before = store.calls["GetJobTagging"]
    store.throttle_next("GetJobTagging", 3)

    # when / then
    with pytest.raises(JobsUnavailable, match="TooManyRequestsException"):
        jobs.tags(ref)
    assert store.calls["GetJobTagging"] - before == 3


def test_server_errors_past_the_retries_are_jobs_unavailable(
    jobs: S3ControlJobs, store: JobStore, new_job: Callable[..., JobRef]
) -> None:
    # given
    ref = new_job()
    store.fail_next("GetJobTagging", 3)

    # when / then
    with pytest.raises(JobsUnavailable, match="InternalServiceException"):
        jobs.tags(ref)


def test_no_answer_at_all_is_jobs_unavailable() -> None:
    # given a proxy address where nothing listens
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{placeholder.getsockname()[1]}"
    jobs = S3ControlJobs(Clients(closed, attempts=1))
    ref = JobRef(account_id=ACCOUNT, region=REGION, job_id="00000000-0000-4000-8000-000000000000")

    # when / then
    with pytest.raises(JobsUnavailable, match="did not answer"):
        jobs.tags(ref)


_TAG_TEXT = st.text(alphabet=st.one_of(st.characters(categories=["L", "N"]), st.sampled_from(" _.:/=+-@")), max_size=20)
_TAG_KEY = st.text(
    alphabet=st.one_of(st.characters(categories=["L", "N"]), st.sampled_from("_.:/=+-@")), min_size=1, max_size=20
).filter(lambda key: not key.lower().startswith("aws:"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tags=st.dictionaries(_TAG_KEY, _TAG_TEXT, max_size=MAX_JOB_TAGS))
def test_any_tag_set_s3_takes_reads_back_unchanged(
    jobs: S3ControlJobs, store: JobStore, new_job: Callable[..., JobRef], tags: dict[str, str]
) -> None:
    # given
    ref = new_job()
    store.put_job_tagging(ACCOUNT, ref.job_id, [{"Key": key, "Value": value} for key, value in tags.items()])

    # then
    assert jobs.tags(ref) == tags
