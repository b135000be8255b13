"""Docker-free bundling: the same ``bundle()`` recipe the asset uses, checked by importing the handlers
from the bundle with the Lambda's Python versions (where this machine has them)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

from infra.bundling import bundle
from infra.constants import METRICS_NAMESPACE, SERVICE_NAME
from tests.infra.conftest import Synth, synthesize

pytestmark = pytest.mark.slow

# The handler modules every function's code must import from the bundle.
BUNDLED_HANDLER_MODULES = [
    "approvals.handlers.notifier",
    "approvals.handlers.callback",
    "approvals.handlers.decider",
    "approvals.handlers.audit_writer",
]
PYTHON_VERSIONS = ["3.14", "3.13", "3.12"]  # the runtime first
PYENV_VERSIONS = Path("/root/.pyenv/versions")
MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine().lower()]

# Just enough settings for the modules to import (nothing is called).
IMPORT_ENV = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "SLACK_SECRET_NAME": "s3-batch-approvals/slack",
    "SLACK_CHANNEL_ID": "C0123456789",
    "REQUESTS_TABLE_NAME": "requests",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "DECISIONS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/decisions",
}

# -I ignores PYTHONPATH, so the bundle goes on sys.path by hand; then every third-party module must
# come from the bundle, not from the interpreter's own site-packages.
IMPORT_CHECK = """
import importlib, sys
bundle = sys.argv[1]
sys.path.insert(0, bundle)
for name in sys.argv[2:]:
    importlib.import_module(name)
import aws_lambda_powertools, boto3, pydantic, pydantic_core, slack_sdk
for module in (aws_lambda_powertools, boto3, pydantic, pydantic_core, slack_sdk):
    assert module.__file__.startswith(bundle), module.__file__
"""


def _interpreter(version: str) -> Path | None:
    found = sorted(PYENV_VERSIONS.glob(f"{version}.*/bin/python"))
    return found[-1] if found else None


def _binary_tag(version: str, machine: str) -> str:
    return f"cpython-{version.replace('.', '')}-{machine}-linux-gnu"


@pytest.fixture(scope="module")
def bundled_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack as cdk.json configures it, this time with real bundling (pip, about 5 s)."""
    return synthesize({}, tmp_path_factory.mktemp("cdk-bundled"), bundle=True)


def test_synth_bundles_the_code_and_its_requirements_for_the_lambda_platform(bundled_synth: Synth) -> None:
    # given
    [code] = {str(p["Code"]["S3Key"]) for p in bundled_synth.props("AWS::Lambda::Function")}
    asset = bundled_synth.outdir / f"asset.{code.removesuffix('.zip')}"

    # then
    assert (asset / "approvals" / "handlers" / "notifier.py").is_file()
    assert (asset / "pydantic_core" / f"_pydantic_core.{_binary_tag('3.14', 'aarch64')}.so").is_file()
    assert (asset / "aws_lambda_powertools").is_dir()
    assert (asset / "slack_sdk").is_dir()
    assert not list(asset.rglob("__pycache__")), "nothing compiled for the synth machine's Python"
    assert not (asset / "bin").exists()
    assert not (asset / "requirements.txt").exists(), "only the package and its dependencies"


def test_the_asset_hash_follows_the_target_platform(default_synth: Synth, custom_synth: Synth) -> None:
    # given (the custom stack targets x86_64 and Python 3.13)
    default_key = {str(p["Code"]["S3Key"]) for p in default_synth.props("AWS::Lambda::Function")}
    custom_key = {str(p["Code"]["S3Key"]) for p in custom_synth.props("AWS::Lambda::Function")}

    # then
    assert default_key.isdisjoint(custom_key)


@pytest.mark.parametrize("version", PYTHON_VERSIONS)
def test_the_handlers_import_from_the_bundle(tmp_path: Path, version: str) -> None:
    # given the recipe run for this machine's architecture
    out = bundle(tmp_path / "bundle", version, MACHINE)

    # then pip resolved binary wheels for that Python
    assert (out / "pydantic_core" / f"_pydantic_core.{_binary_tag(version, MACHINE)}.so").is_file()
    assert not list(out.rglob("__pycache__"))

    interpreter = _interpreter(version)
    if interpreter is None:
        pytest.skip(
            f"python{version} interpreter not installed at {PYENV_VERSIONS}; "
            f"the pip resolution for cp{version.replace('.', '')} was still checked"
        )

    # when
    result = subprocess.run(
        [str(interpreter), "-I", "-c", IMPORT_CHECK, str(out), *BUNDLED_HANDLER_MODULES],
        env={"PATH": os.environ.get("PATH", ""), **IMPORT_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # then
    assert result.returncode == 0, result.stderr
