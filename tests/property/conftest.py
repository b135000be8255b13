"""Hypothesis profiles for tests/property, chosen by HYPOTHESIS_PROFILE (default "ci").

- ``ci``: the default; the whole suite in under a minute on two cores, a few thousand examples in all.
- ``dev``: quick feedback while editing (about 50 examples a test).
- ``deep``: a long hunt (ten times ``ci``, about a quarter of an hour), for a night run or before a release.

No deadline (shared machines are noisy), not derandomised (each run explores new inputs), and every
failure prints the blob that replays it (``@reproduce_failure``). Tests that cost more per example than
the others take a share of the profile's examples (``tests.property.strategies.examples``), so the
three profiles scale every test alike. Every fixture here is module-scoped, so no health check is
suppressed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
COMMON = {"deadline": None, "derandomize": False, "print_blob": True}

settings.register_profile("ci", max_examples=500, **COMMON)
settings.register_profile("dev", max_examples=50, **COMMON)
settings.register_profile("deep", max_examples=5000, **COMMON)
settings.load_profile(PROFILE)

HERE = Path(__file__).parent
# A deep hunt outlasts pytest-timeout's limit for one test (pyproject: 300 s).
TIMEOUT_SECONDS = {"deep": 3600}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    timeout = TIMEOUT_SECONDS.get(PROFILE)
    if timeout is None:
        return
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.timeout(timeout))
