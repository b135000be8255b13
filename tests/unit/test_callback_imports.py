"""What the callback's cold start loads: only what an Approve click needs (README, "Cold start")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Loaded by the other functions, never by the callback's import: event parsing (Powertools' parser and the
# job and CreateJob event models), the X-Ray SDK, the CloudTrail history adapter and the policy's matching.
# (slack_sdk's package loads its WebClient whenever its signature module is imported: not listed.)
NOT_FOR_THE_CALLBACK = (
    "aws_lambda_powertools.utilities.parser",
    "approvals.models.events",
    "aws_xray_sdk",
    "approvals.adapters.cloudtrail",
    "approvals.domain.policy",
    "approvals.domain.identity",
)


@pytest.fixture(scope="module")
def loaded() -> set[str]:
    """The modules a fresh interpreter holds after importing the callback handler."""
    code = "import json, sys, approvals.handlers.callback; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lambdas")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", NOT_FOR_THE_CALLBACK)
def test_the_callback_does_not_load(loaded: set[str], module: str) -> None:
    assert not [name for name in loaded if name == module or name.startswith(module + ".")]
