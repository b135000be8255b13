"""Shared fixtures: one moto server per test session, fresh tables per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.aws_local import LocalAws


@pytest.fixture(scope="session")
def moto_server() -> Iterator[LocalAws]:
    local = LocalAws().start()
    yield local
    local.stop()


@pytest.fixture
def local_aws(moto_server: LocalAws) -> LocalAws:
    """Fresh tables, secret and queue on the shared moto server (unique names per test)."""
    fresh = LocalAws(server=moto_server.server, url=moto_server.url)
    return fresh.provision(bot_token="xoxb-test-token", signing_secret="test-signing-secret")
