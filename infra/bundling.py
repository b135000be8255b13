"""Docker-free bundling of the Lambda code: the ``approvals`` package, its pinned requirements and the
validated policy (``approvals/policy.json``, so that the functions never need PyYAML).

pip downloads manylinux wheels for the Lambda's Python version and architecture, so the bundle can be
built on any machine without Docker. ``bundle`` is the one recipe: the CDK asset and the tests call it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.policy import BUNDLED_POLICY_NAME, policy_digest

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
PACKAGE = "approvals"
REQUIREMENTS = "requirements.txt"
# Never part of the asset: bytecode differs between machines and would change the asset hash.
EXCLUDE = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache"]


class BundlingError(RuntimeError):
    """pip could not build the bundle (the message carries pip's output)."""


def bundle(
    out_dir: str | Path,
    python_version: str,
    platform_arch: str,
    *,
    source_dir: Path = LAMBDAS_DIR,
    python: str = sys.executable,
    policy_json: str | None = None,
) -> Path:
    """Copy ``approvals`` into ``out_dir``, write the policy and install the requirements for the Lambda platform.

    ``python_version`` is the runtime's version ("3.14"); ``platform_arch`` is the manylinux machine
    name ("aarch64" or "x86_64"). Byte-compiling is left to Lambda (``--no-compile``): pip would compile
    for the synth machine's Python, not the runtime's.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        source_dir / PACKAGE,
        out / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        dirs_exist_ok=True,
    )
    if policy_json is not None:
        write_policy(out, policy_json)
    command = [
        python,
        "-m",
        "pip",
        "install",
        "-r",
        str(source_dir / REQUIREMENTS),
        "--target",
        str(out),
        "--platform",
        f"manylinux2014_{platform_arch}",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--no-compile",
        "--quiet",
        "--disable-pip-version-check",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BundlingError(
            f"pip could not bundle the Lambda requirements for Python {python_version} on {platform_arch}:\n"
            f"{' '.join(command)}\n{result.stdout}{result.stderr}"
        )
    # Console scripts of the dependencies are of no use inside a Lambda function.
    shutil.rmtree(out / "bin", ignore_errors=True)
    return out


def write_policy(out_dir: str | Path, policy_json: str) -> Path:
    """Write the validated policy (``infra.policy.dump_policy``) where the functions read it."""
    path = Path(out_dir) / PACKAGE / BUNDLED_POLICY_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(policy_json, encoding="utf-8")
    return path


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    """Bundles on this machine with pip (the CDK calls ``try_bundle`` instead of starting Docker)."""

    def __init__(self, python_version: str, platform_arch: str, policy_json: str | None = None) -> None:
        self.python_version = python_version
        self.platform_arch = platform_arch
        self.policy_json = policy_json

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        bundle(output_dir, self.python_version, self.platform_arch, policy_json=self.policy_json)
        return True


def lambda_code(python_version: str, platform_arch: str, *, policy_json: str | None = None) -> lambda_.AssetCode:
    """The one asset every function shares.

    The asset hash is the default source hash: it covers everything under lambdas/ (code and
    requirements.txt, minus EXCLUDE) plus these bundling options, so the target platform is part of it,
    and so is the policy (its digest is in the bundling environment; the file lives outside lambdas/).
    Bundling is skipped when the context key ``aws:cdk:bundling-stacks`` is ``[]``.
    """
    environment = {"TARGET_PYTHON": python_version, "TARGET_PLATFORM": f"manylinux2014_{platform_arch}"}
    if policy_json is not None:
        environment["POLICY_SHA256"] = policy_digest(policy_json)
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        exclude=EXCLUDE,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("unused-local-bundling-only"),
            local=LocalPipBundling(python_version, platform_arch, policy_json),
            environment=environment,
        ),
    )
