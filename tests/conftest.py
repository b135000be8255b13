"""Shared fixtures: one moto server per test session, fresh tables per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra import constants as c
from sandbox.aws_local import LocalAws

# What the stack sets on every function, in place before any test module is collected: a module that
# imports a handler at its top (tests/model, tests/property) must not create Powertools' Metrics without
# a namespace for every later test in the same worker.
for _name, _value in {
    "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
    "POWERTOOLS_TRACE_DISABLED": "true",
    **c.PYDANTIC_WITHOUT_PLUGINS,
}.items():
    os.environ.setdefault(_name, _value)


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
