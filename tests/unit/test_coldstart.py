"""Cold-start work runs without cyclic garbage collection and is then frozen out of it."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from approvals import coldstart, wiring

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ["callback", "notifier", "decider", "audit_writer"]


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_inside_and_running_again_after() -> None:
    # given
    gc.enable()
    gc.unfreeze()

    # when
    with coldstart.long_lived():
        inside = gc.isenabled()
        made_inside: list[object] = []
    made_after: list[object] = []

    # then
    assert inside is False
    assert gc.isenabled() is True
    assert gc.get_freeze_count() > 0
    scanned = gc.get_objects()  # what the collector still scans: not what the step made
    assert not any(o is made_inside for o in scanned)
    assert any(o is made_after for o in scanned)


def test_nested_steps_keep_the_collector_paused_until_the_outer_one_ends() -> None:
    # given
    gc.enable()

    # when
    with coldstart.long_lived():
        with coldstart.long_lived():
            pass
        between = gc.isenabled()

    # then
    assert between is False
    assert gc.isenabled() is True


def test_a_collector_that_was_off_stays_off() -> None:
    # given
    gc.disable()

    # when
    with coldstart.long_lived():
        pass

    # then
    assert gc.isenabled() is False


def test_the_collector_comes_back_when_the_step_fails() -> None:
    # given
    gc.enable()

    # when
    with pytest.raises(ValueError, match="could not be made"), coldstart.long_lived():
        raise ValueError("client could not be made")

    # then
    assert gc.isenabled() is True


def test_as_a_decorator_each_call_is_a_step_of_its_own() -> None:
    # given
    gc.enable()
    seen: list[bool] = []

    @coldstart.long_lived()
    def build() -> None:
        seen.append(gc.isenabled())

    # when
    build()
    build()

    # then
    assert seen == [False, False]
    assert gc.isenabled() is True


def test_a_new_cold_start_in_the_same_process_thaws_what_the_last_one_froze() -> None:
    # given
    with coldstart.long_lived():
        pass
    assert gc.get_freeze_count() > 0

    # when
    wiring.reset_cold_start()

    # then
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("handler", HANDLERS)
def test_loading_a_handler_in_a_fresh_interpreter_freezes_its_modules_and_leaves_the_collector_on(
    handler: str,
) -> None:
    # given
    script = (
        "import gc, json, sys\n"
        f"from approvals.handlers import {handler}\n"
        "print(json.dumps({'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count(),"
        " 'scanned': len(gc.get_objects())}))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "lambdas"), str(ROOT)]),
        "POWERTOOLS_SERVICE_NAME": "s3-batch-approvals",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    # when
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)

    # then
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state["enabled"] is True
    assert state["frozen"] > 50_000  # the libraries' modules, classes and functions
    assert state["scanned"] < state["frozen"] // 100  # what is left for the collector to scan is small
