"""One local deployment per e2e module: real handlers, real boto3 and slack_sdk clients, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.local import LocalDeployment


@pytest.fixture(scope="module")
def deployment() -> Iterator[LocalDeployment]:
    with LocalDeployment() as running:
        yield running


@pytest.fixture
def d(deployment: LocalDeployment) -> Iterator[LocalDeployment]:
    """The module's deployment, with every fault hook cleared after each test."""
    yield deployment
    deployment.slack.clear_faults()
    deployment.jobs.delay.clear()
    deployment.settle()


@pytest.fixture
def suspended_job(d: LocalDeployment) -> str:
    """A job that waits for confirmation and has its approval request in Slack."""
    job_id = d.create_job()
    d.advance_until(job_id, "Suspended")
    return job_id
