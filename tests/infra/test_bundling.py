"""Docker-free bundling: the same ``bundle()`` recipe the asset uses, checked by importing the handlers
from the bundle with the Lambda's Python versions (where this machine has them), and what it trims.

Whether the bundle's modules really load from its bytecode is tests/infra/test_bytecode.py."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

import pytest

from infra.bundling import BOTOCORE_SERVICES, LAMBDAS_DIR, PACKAGE, bundle, bytecode_interpreter
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
PYTHON_VERSIONS = ["3.14", "3.13", "3.12"]  # the newest first; the stack's default runtime is 3.13
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
    # Clients made at import find credentials at once instead of asking for instance metadata.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
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
# The trimmed .dist-info still answers importlib.metadata, as pydantic and wrapt ask it.
import importlib.metadata
assert importlib.metadata.version("pydantic") == pydantic.VERSION
"""

# A client of every service whose botocore model the bundle keeps, offline (nothing is called).
CLIENTS_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import boto3, botocore
assert botocore.__file__.startswith(sys.argv[1]), botocore.__file__
session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")
for service in sys.argv[2:]:
    session.client(service)
print(" ".join(sorted(session.get_available_services())))
"""
# A client created in the functions' code: `client("sqs"`, `aws.client("s3control", region)`, ...
# aws.client("sqs"), and accounts("s3control", …): the clients acting in a job's own account (AccountClients).
CLIENT_CALL = re.compile(r"""\b(?:client|accounts)\(\s*["']([a-z0-9-]+)["']""")
# Run on a workstation (make audit) from lambdas/, never in a function.
NOT_IN_FUNCTIONS = {"audit_cli.py", "redrive.py"}  # operator tools beside the functions, never run in Lambda


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
    assert (asset / "pydantic_core" / f"_pydantic_core.{_binary_tag('3.13', 'aarch64')}.so").is_file()
    assert (asset / "aws_lambda_powertools").is_dir()
    assert (asset / "slack_sdk").is_dir()
    compiled = {path.name.split(".")[-2] for path in asset.rglob("*.pyc")}
    expected = {"cpython-313"} if bytecode_interpreter("3.13") else set()
    assert compiled == expected, "bytecode for the runtime's Python only, never the synth machine's"
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

    # then pip resolved binary wheels for that Python, and it is compiled where an interpreter of it exists
    assert (out / "pydantic_core" / f"_pydantic_core.{_binary_tag(version, MACHINE)}.so").is_file()
    interpreter = bytecode_interpreter(version)
    tag = f"cpython-{version.replace('.', '')}"
    assert {path.name.split(".")[-2] for path in out.rglob("*.pyc")} == ({tag} if interpreter else set())

    if interpreter is None:
        pytest.skip(
            f"no python{version} interpreter on this machine; "
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


def test_the_bundle_leaves_out_what_no_function_reads(tmp_path: Path) -> None:
    # given
    out = bundle(tmp_path / "bundle", "3.13", MACHINE, bytecode=None)

    # then no type stubs, install records, console scripts or unused AWS models
    assert not list(out.rglob("*.pyi"))
    assert not list(out.rglob("py.typed"))
    assert not list(out.glob("*-stubs"))
    assert not list(out.glob("*.dist-info/RECORD"))
    assert not (out / "boto3" / "data").exists()
    models = {path.name for path in (out / "botocore" / "data").iterdir() if path.is_dir()}
    assert models == BOTOCORE_SERVICES if BOTOCORE_SERVICES is not None else len(models) > 400
    # and what stays: every distribution's metadata and licences, the package's own files
    infos = list(out.glob("*.dist-info"))
    assert {"pydantic", "boto3", "botocore", "slack_sdk", "aws_lambda_powertools"} <= {
        info.name.split("-")[0] for info in infos
    }
    assert all((info / "METADATA").is_file() for info in infos)
    assert list(out.glob("pydantic-*.dist-info/licenses/LICENSE"))
    assert (out / "botocore" / "data" / "endpoints.json").is_file()
    assert (out / PACKAGE / "handlers" / "callback.py").is_file()


def test_every_client_the_functions_create_has_its_model_in_the_bundle() -> None:
    # given every client created in the functions' code
    sources = [p for p in (LAMBDAS_DIR / PACKAGE).rglob("*.py") if p.name not in NOT_IN_FUNCTIONS]
    created = {service for source in sources for service in CLIENT_CALL.findall(source.read_text(encoding="utf-8"))}

    # then
    if BOTOCORE_SERVICES is None:
        pytest.skip("the bundle keeps every botocore model")
    assert created, "the pattern finds the clients"
    assert {"s3control", "sqs", "dynamodb", "secretsmanager"} <= created
    assert created <= BOTOCORE_SERVICES, f"add {sorted(created - BOTOCORE_SERVICES)} to BOTOCORE_SERVICES"


def test_the_bundled_botocore_makes_a_client_of_every_kept_service(tmp_path: Path) -> None:
    # given
    interpreter = bytecode_interpreter("3.13")
    if interpreter is None:
        pytest.skip("no python3.13 interpreter on this machine")
    if BOTOCORE_SERVICES is None:
        pytest.skip("the bundle keeps every botocore model")
    out = bundle(tmp_path / "bundle", "3.13", MACHINE, bytecode=None)

    # when
    result = subprocess.run(
        [interpreter, "-I", "-B", "-c", CLIENTS_CHECK, str(out), *sorted(BOTOCORE_SERVICES)],
        env={"PATH": os.environ.get("PATH", ""), "AWS_EC2_METADATA_DISABLED": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # then
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == BOTOCORE_SERVICES
