"""One version, said the same everywhere: the package, pyproject.toml, the changelog, the stack's tag and the
command-line tools."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from approvals import __version__
from approvals.audit_cli import main as audit_main
from approvals.policy import main as policy_main
from infra.constants import product_version

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_semantic_and_the_same_in_pyproject_and_for_the_stack() -> None:
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", __version__)
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == __version__
    assert product_version() == __version__


def test_the_changelog_starts_with_this_version() -> None:
    headings = re.findall(r"^## ([0-9]+\.[0-9]+\.[0-9]+) \(", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert headings[0] == __version__


def test_the_licence_is_apache_2_and_declared() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"


@pytest.mark.parametrize("main", [audit_main, policy_main])
def test_the_command_line_tools_say_their_version(main: object, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])  # type: ignore[operator]
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"s3-batch-approvals {__version__}"
