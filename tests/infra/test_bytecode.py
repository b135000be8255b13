"""The bundle's bytecode: found for the runtime's Python, and really used where Lambda runs the code.

Lambda's /var/task is read-only and the asset zip resets file dates, so the check runs the handlers'
imports from a read-only copy of the bundle with every mtime at 1980-01-01, with -B and
PYTHONDONTWRITEBYTECODE, and watches (through the interpreter's ``compile`` audit event, which every
compile from source raises) for any module of the bundle compiled from source.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.bundling import (
    BUNDLE_PYTHON_ENV,
    PACKAGE,
    BundlingError,
    bundle,
    bytecode_interpreter,
    missing_interpreter_warning,
)
from tests.infra.test_bundling import BUNDLED_HANDLER_MODULES, IMPORT_ENV, MACHINE

RUNTIME = "3.13"
ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest date a zip entry holds
PYC_UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked

# Imports the modules from the bundle and prints, as JSON, which of the bundle's files were compiled
# from source and which modules came from the bundle.
COMPILE_WATCH = """
import importlib, json, os, sys
bundle = sys.argv[1]
compiled = []

def watch(event, args):
    if event == "compile" and isinstance(args[1], str) and args[1].startswith(bundle + os.sep):
        compiled.append(os.path.relpath(args[1], bundle))

sys.addaudithook(watch)
sys.path.insert(0, bundle)
for name in sys.argv[2:]:
    importlib.import_module(name)
loaded = sorted(
    name for name, module in list(sys.modules.items())
    if isinstance(getattr(module, "__file__", None), str) and module.__file__.startswith(bundle + os.sep)
)
print(json.dumps({"compiled": sorted(set(compiled)), "loaded": loaded}))
"""


def _runtime_interpreter() -> str:
    interpreter = bytecode_interpreter(RUNTIME)
    if interpreter is None:
        pytest.skip(f"no python{RUNTIME} interpreter on this machine")
    return interpreter


def _as_task_root(source: Path, target: Path) -> Path:
    """A copy as Lambda holds it: every mtime at 1980-01-01 and nothing writable."""
    shutil.copytree(source, target)
    paths = [target, *target.rglob("*")]
    for path in paths:
        os.utime(path, (ZIP_EPOCH, ZIP_EPOCH))
    for path in paths:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return target


def _writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _listing(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def _watch_imports(interpreter: str, task_root: Path) -> dict[str, list[str]]:
    result = subprocess.run(
        [interpreter, "-B", "-I", "-c", COMPILE_WATCH, str(task_root), *BUNDLED_HANDLER_MODULES],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", **IMPORT_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    watched: dict[str, list[str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return watched


@pytest.fixture(scope="module")
def compiled_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recipe run for this machine's architecture and the runtime's Python (pip and compileall, ~10 s)."""
    _runtime_interpreter()
    return bundle(tmp_path_factory.mktemp("compiled") / "bundle", RUNTIME, MACHINE)


@pytest.fixture
def task_roots(tmp_path: Path) -> Iterator[list[Path]]:
    """Read-only copies made by a test, made writable again afterwards so that they can be removed."""
    made: list[Path] = []
    yield made
    for root in made:
        _writable(root)


# ---------------------------------------------------------------- finding the interpreter (fast)


def test_the_runtimes_interpreter_is_found_in_pyenv_when_path_has_none(tmp_path: Path) -> None:
    # given a PATH without python3.13, and pyenv's versions
    interpreter = _runtime_interpreter()
    pyenv_root = Path(interpreter).resolve().parent.parent.parent.parent
    if pyenv_root.name != ".pyenv":
        pytest.skip(f"python{RUNTIME} is not a pyenv version here")

    # when
    found = bytecode_interpreter(RUNTIME, environ={"PATH": str(tmp_path), "PYENV_ROOT": str(pyenv_root)})

    # then
    assert found is not None
    assert Path(found).parent.parent.name.startswith(f"{RUNTIME}.")


def test_an_interpreter_on_path_that_does_not_run_is_passed_over(tmp_path: Path) -> None:
    # given a python3.13 on PATH that fails as a pyenv shim does when the version is not selected
    shim = tmp_path / f"python{RUNTIME}"
    shim.write_text(f"#!/bin/sh\necho 'pyenv: python{RUNTIME}: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)

    # when
    found = bytecode_interpreter(RUNTIME, environ={"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path / "none")})

    # then
    assert found is None


def test_bundle_python_names_the_interpreter() -> None:
    # given
    interpreter = _runtime_interpreter()

    # when
    found = bytecode_interpreter(RUNTIME, environ={"PATH": "", BUNDLE_PYTHON_ENV: interpreter})

    # then
    assert found == interpreter


def test_bundle_python_of_another_version_is_refused() -> None:
    # given an interpreter that is not 3.13 (the one running the tests)
    other = bytecode_interpreter("3.11") or bytecode_interpreter("3.12")
    if other is None:
        pytest.skip("no second Python version on this machine")

    # when / then
    with pytest.raises(BundlingError, match=f"{BUNDLE_PYTHON_ENV}=.* is not a Python {RUNTIME} interpreter"):
        bytecode_interpreter(RUNTIME, environ={"PATH": "", BUNDLE_PYTHON_ENV: other})


def test_the_warning_names_the_version_what_it_costs_and_what_to_install() -> None:
    # when
    warning = missing_interpreter_warning("3.13")

    # then
    assert "Python 3.13" in warning
    assert "about 3x slower" in warning
    assert "compiled from source at each cold start" in warning
    assert "/var/task is read-only" in warning
    assert "pyenv install 3.13" in warning
    assert f"{BUNDLE_PYTHON_ENV}=/path/to/python3.13" in warning


# ---------------------------------------------------------------- the bundle's bytecode (slow)


@pytest.mark.slow
def test_every_module_of_the_bundle_has_unchecked_hash_bytecode_of_the_runtime(compiled_bundle: Path) -> None:
    # given the runtime's magic number
    interpreter = _runtime_interpreter()
    magic = subprocess.run(
        [interpreter, "-I", "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tag = f"cpython-{RUNTIME.replace('.', '')}"

    # when
    sources = list(compiled_bundle.rglob("*.py"))
    headers = {
        source: (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").read_bytes()[:8] for source in sources
    }

    # then
    assert len(sources) > 500
    assert all(header[:4].hex() == magic for header in headers.values())
    assert all(int.from_bytes(header[4:8], "little") == PYC_UNCHECKED_HASH for header in headers.values())


@pytest.mark.slow
def test_no_module_is_compiled_from_source_in_a_read_only_task_root(
    compiled_bundle: Path, tmp_path: Path, task_roots: list[Path]
) -> None:
    # given the bundle as Lambda holds it
    interpreter = _runtime_interpreter()
    task_root = _as_task_root(compiled_bundle, tmp_path / "task")
    task_roots.append(task_root)
    before = _listing(task_root)

    # when every handler is imported
    watched = _watch_imports(interpreter, task_root)

    # then all of it came from the bundle's bytecode, and nothing was written
    assert watched["compiled"] == []
    assert {"approvals.handlers.callback", "pydantic.main", "botocore.client", "slack_sdk.web.client"} <= set(
        watched["loaded"]
    )
    assert len(watched["loaded"]) > 300
    assert _listing(task_root) == before


@pytest.mark.slow
def test_the_check_sees_a_module_compiled_from_source(
    compiled_bundle: Path, tmp_path: Path, task_roots: list[Path]
) -> None:
    # given a copy where two modules have lost their bytecode
    interpreter = _runtime_interpreter()
    tag = f"cpython-{RUNTIME.replace('.', '')}"
    copy = tmp_path / "copy"
    shutil.copytree(compiled_bundle, copy)
    (copy / PACKAGE / "handlers" / "__pycache__" / f"callback.{tag}.pyc").unlink()
    (copy / "pydantic" / "__pycache__" / f"main.{tag}.pyc").unlink()
    task_root = _as_task_root(copy, tmp_path / "task")
    task_roots.append(task_root)

    # when
    watched = _watch_imports(interpreter, task_root)

    # then
    assert watched["compiled"] == [f"{PACKAGE}/handlers/callback.py", "pydantic/main.py"]


@pytest.mark.slow
def test_without_an_interpreter_of_the_runtime_the_bundle_has_no_bytecode(
    tmp_path: Path, task_roots: list[Path]
) -> None:
    # given a machine with no python3.13 (nothing on PATH, no pyenv)
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    interpreter = bytecode_interpreter(RUNTIME, environ={"PATH": str(nowhere), "PYENV_ROOT": str(nowhere)})

    # when
    out = bundle(tmp_path / "bundle", RUNTIME, MACHINE, bytecode=interpreter)

    # then
    assert interpreter is None
    assert not list(out.rglob("*.pyc"))
    assert (out / PACKAGE / "handlers" / "callback.py").is_file()

    runtime = bytecode_interpreter(RUNTIME)
    if runtime is None:
        return
    # and where it runs, it works by compiling every module at each cold start
    task_root = _as_task_root(out, tmp_path / "task")
    task_roots.append(task_root)
    watched = _watch_imports(runtime, task_root)
    assert f"{PACKAGE}/handlers/callback.py" in watched["compiled"]
    assert len(watched["compiled"]) > 300
