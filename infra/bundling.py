"""Docker-free bundling of the Lambda code: the ``approvals`` package, its pinned requirements and the
validated policy (``approvals/policy.json``, so that the functions never need PyYAML).

pip downloads manylinux wheels for the Lambda's Python version and architecture, so the bundle can be
built on any machine without Docker. ``bundle`` is the one recipe: the CDK asset and the tests call it.

**Bytecode.** Lambda runs the code from a read-only ``/var/task``, so Python cannot cache what it
compiles: a module without a usable ``.pyc`` is compiled from source at every cold start (about 3x the
cold start of the bundle with bytecode). ``bundle`` therefore compiles the whole bundle (the function
code and every library) to hash-based, unchecked ``.pyc`` files (PEP 552), in the usual
``__pycache__/<module>.cpython-3X.pyc`` places. Unchecked-hash ``.pyc`` files embed no source mtime, so
they stay valid after the asset zip normalises file dates. Bytecode is specific to the minor version,
so it takes an interpreter of the runtime's own version (not the synth machine's), found in this order:

1. ``BUNDLE_PYTHON``: an interpreter to use, as a path or a command name
   (``BUNDLE_PYTHON=/root/.pyenv/versions/3.13.0/bin/python3.13``); it must be of the runtime's version;
2. ``python3.X`` on ``PATH`` (a pyenv shim counts only when it runs);
3. pyenv's ``$PYENV_ROOT/versions/3.X.*/bin/python3.X`` (``~/.pyenv`` without ``PYENV_ROOT``), newest first.

Without one, the bundle ships no bytecode (``missing_interpreter_warning`` says what that costs and what
to install). Whether it has bytecode is part of the asset hash, so installing the interpreter later
produces a new asset.

**Trimmed.** No function reads type stubs (``*.pyi``, ``*-stubs``, ``py.typed``), the libraries' test
suites, console scripts, pip's install records (``.dist-info/RECORD``), boto3's resource models or the
botocore models of services no function calls (``BOTOCORE_SERVICES`` lists those kept); they are left
out. The rest of each ``.dist-info`` stays (licences, and the metadata ``importlib.metadata`` reads).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
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

# The interpreter that compiles the bundle, when set (see the module docstring).
BUNDLE_PYTHON_ENV = "BUNDLE_PYTHON"
# ``bundle(bytecode=FIND_INTERPRETER)``: compile with ``bytecode_interpreter(python_version)`` if there is one.
FIND_INTERPRETER = "find"
# Where the functions' code runs; the file names recorded in the bytecode start here, not at the build
# directory, so that two builds of the same code give the same bytes.
LAMBDA_TASK_ROOT = "/var/task"

# The AWS services whose botocore models the bundle keeps: every client the functions create (directly,
# or through Powertools' idempotency and parameters, and the X-Ray SDK's sampling client, made at import),
# plus STS and SSO for botocore's credential providers. A client of any other service fails with
# UnknownServiceError, so a new one must be added here (tests/infra/test_bundling.py looks for clients
# in the code). None keeps every model: 18 MB more (16 MB zipped), and a slower first client, as
# botocore lists the models' directory first (10-15 ms for 450 services, measured here).
BOTOCORE_SERVICES: frozenset[str] | None = frozenset(
    {"cloudtrail", "dynamodb", "s3control", "secretsmanager", "sqs", "sts", "sso", "sso-oidc", "xray"}
)

_STUB_DIR = re.compile(r".+-stubs$")
_FOUND: dict[tuple[str, ...], str | None] = {}  # bytecode_interpreter's answers, by what they depend on


class BundlingError(RuntimeError):
    """pip or compileall could not build the bundle (the message carries their output)."""


def missing_interpreter_warning(python_version: str) -> str:
    """What a bundle without bytecode costs, and how to give it bytecode."""
    return (
        f"No Python {python_version} interpreter on this machine: the Lambda bundle ships without bytecode, "
        f"so cold starts are about 3x slower: every module is compiled from source at each cold start "
        f"(/var/task is read-only, so Lambda cannot cache it). Install Python {python_version} "
        f"(`pyenv install {python_version}`, or python{python_version} on PATH), or point "
        f"{BUNDLE_PYTHON_ENV} at one ({BUNDLE_PYTHON_ENV}=/path/to/python{python_version}), and synthesize again."
    )


def _cache_tag(python_version: str) -> str:
    return f"cpython-{python_version.replace('.', '')}"


def _runs_as(interpreter: str, python_version: str, environ: Mapping[str, str]) -> bool:
    """Whether ``interpreter`` runs and writes bytecode for ``python_version`` (CPython, same cache tag)."""
    try:
        result = subprocess.run(
            [interpreter, "-I", "-c", "import sys; print(sys.implementation.cache_tag)"],
            env=dict(environ),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == _cache_tag(python_version)


def _pyenv_interpreters(python_version: str, environ: Mapping[str, str]) -> list[Path]:
    root = environ.get("PYENV_ROOT") or (str(Path(environ["HOME"]) / ".pyenv") if environ.get("HOME") else "")
    if not root:
        return []
    release = re.compile(rf"^{re.escape(python_version)}\.(\d+)$")  # 3.13.0, not 3.13.0t or 3.13-dev
    found = [
        (int(match.group(1)), path / "bin" / f"python{python_version}")
        for path in (Path(root) / "versions").glob(f"{python_version}.*")
        if (match := release.match(path.name))
    ]
    return [path for _, path in sorted(found, reverse=True) if path.is_file()]


def bytecode_interpreter(python_version: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    """An interpreter of ``python_version`` ("3.13") to compile the bundle with, or None if there is none.

    Looks at ``BUNDLE_PYTHON``, then ``python3.X`` on ``PATH``, then pyenv's versions (module docstring).
    ``BUNDLE_PYTHON`` naming an interpreter of another version is a mistake, not an absence: it raises.
    """
    env = os.environ if environ is None else environ
    # Asked by the asset, its bundling and the stack's warning alike, and each probe starts an interpreter.
    key = (python_version, *(env.get(name, "") for name in (BUNDLE_PYTHON_ENV, "PATH", "PYENV_ROOT", "HOME")))
    if key not in _FOUND:
        _FOUND[key] = _find_interpreter(python_version, env)
    return _FOUND[key]


def _find_interpreter(python_version: str, env: Mapping[str, str]) -> str | None:
    override = env.get(BUNDLE_PYTHON_ENV, "").strip()
    if override:
        resolved = shutil.which(override, path=env.get("PATH", "")) or override
        if not _runs_as(resolved, python_version, env):
            raise BundlingError(
                f"{BUNDLE_PYTHON_ENV}={override} is not a Python {python_version} interpreter that runs here "
                f"(the Lambda runtime is Python {python_version}); point it at python{python_version} or unset it."
            )
        return resolved
    candidates: list[str] = []
    on_path = shutil.which(f"python{python_version}", path=env.get("PATH", ""))
    if on_path:
        candidates.append(on_path)
    candidates += [str(path) for path in _pyenv_interpreters(python_version, env)]
    return next((candidate for candidate in candidates if _runs_as(candidate, python_version, env)), None)


def bundle(
    out_dir: str | Path,
    python_version: str,
    platform_arch: str,
    *,
    source_dir: Path = LAMBDAS_DIR,
    python: str = sys.executable,
    policy_json: str | None = None,
    bytecode: str | None = FIND_INTERPRETER,
) -> Path:
    """Copy ``approvals`` into ``out_dir``, write the policy, install the requirements for the Lambda platform,
    trim what no function reads and compile the bundle.

    ``python_version`` is the runtime's version ("3.13"); ``platform_arch`` is the manylinux machine
    name ("aarch64" or "x86_64"). ``bytecode`` is the interpreter that compiles the bundle (of
    ``python_version``), ``FIND_INTERPRETER`` to look for one (``bytecode_interpreter``), or None for a
    bundle without bytecode; pip itself never compiles (``--no-compile``): it would compile for the
    synth machine's Python, not the runtime's.
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
    _pip_install(out, source_dir / REQUIREMENTS, python_version, platform_arch, python)
    trim(out)
    interpreter = bytecode_interpreter(python_version) if bytecode == FIND_INTERPRETER else bytecode
    if interpreter is not None:
        compile_bytecode(out, interpreter)
    return out


def _pip_install(out: Path, requirements: Path, python_version: str, platform_arch: str, python: str) -> None:
    command = [
        python,
        "-m",
        "pip",
        "install",
        "-r",
        str(requirements),
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


def trim(out: Path) -> None:
    """Remove from an installed bundle what no function reads (module docstring, "Trimmed")."""
    # Console scripts of the dependencies are of no use inside a Lambda function.
    shutil.rmtree(out / "bin", ignore_errors=True)
    for top in out.iterdir():
        if top.name == PACKAGE:
            continue
        if top.is_dir() and _STUB_DIR.match(top.name):
            shutil.rmtree(top)
            continue
        if top.name.endswith(".dist-info"):
            (top / "RECORD").unlink(missing_ok=True)
            continue
        if not top.is_dir():
            if top.suffix == ".pyi":
                top.unlink()
            continue
        for path in sorted(top.rglob("*"), reverse=True):  # children before their directories
            if path.is_dir() and path.name == "tests":
                shutil.rmtree(path)
            elif path.is_file() and (path.suffix == ".pyi" or path.name == "py.typed"):
                path.unlink()
    shutil.rmtree(out / "boto3" / "data", ignore_errors=True)  # resource models: the functions use clients
    data = out / "botocore" / "data"
    if BOTOCORE_SERVICES is not None and data.is_dir():
        for service in data.iterdir():
            if service.is_dir() and service.name not in BOTOCORE_SERVICES:
                shutil.rmtree(service)


def compile_bytecode(out: Path, interpreter: str) -> None:
    """Compile every module under ``out`` to unchecked-hash ``.pyc`` with ``interpreter`` (PEP 552)."""
    command = [
        interpreter,
        "-I",
        "-m",
        "compileall",
        "-q",
        "-f",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(out),
        "-p",
        LAMBDA_TASK_ROOT,
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BundlingError(f"could not compile the bundle:\n{' '.join(command)}\n{result.stdout}{result.stderr}")


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
        interpreter = bytecode_interpreter(self.python_version)
        if interpreter is None:
            print(f"warning: {missing_interpreter_warning(self.python_version)}", file=sys.stderr)
        bundle(output_dir, self.python_version, self.platform_arch, policy_json=self.policy_json, bytecode=interpreter)
        return True


def lambda_code(python_version: str, platform_arch: str, *, policy_json: str | None = None) -> lambda_.AssetCode:
    """The one asset every function shares.

    The asset hash is the default source hash: it covers everything under lambdas/ (code and
    requirements.txt, minus EXCLUDE) plus these bundling options, so the target platform is part of it,
    and so is the policy (its digest is in the bundling environment; the file lives outside lambdas/),
    and whether the bundle has bytecode (a synth machine without the runtime's Python builds a bundle
    without it; once it has one, the asset changes and is uploaded again).
    Bundling is skipped when the context key ``aws:cdk:bundling-stacks`` is ``[]``.
    """
    bytecode = _cache_tag(python_version) if bytecode_interpreter(python_version) else "none"
    environment = {
        "TARGET_PYTHON": python_version,
        "TARGET_PLATFORM": f"manylinux2014_{platform_arch}",
        "TARGET_BYTECODE": f"{bytecode}-unchecked-hash" if bytecode != "none" else bytecode,
    }
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
