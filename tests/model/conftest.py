"""The backend every model test runs against: moto in server mode, provisioned once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.aws_local import LocalAws
from tests.model.harness import Backend


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    local = LocalAws().start()
    try:
        yield Backend.provision(local)
    finally:
        local.stop()
