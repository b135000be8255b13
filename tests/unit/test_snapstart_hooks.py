"""SnapStart's runtime hooks (approvals.snapstart), run as Lambda's Python runtime runs them.

``snapshot_restore_py`` exists only inside Lambda; a stand-in with its API (register a callable with its
arguments; before-snapshot hooks run in reverse order of registration, after-restore hooks in order)
is installed in ``sys.modules`` and the hooks module is imported afresh, so it registers with it.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import random
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import approvals
from approvals import wiring
from infra import constants as c
from sandbox.aws_local import LocalAws

ROOT = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class SnapshotRestoreStandIn(types.ModuleType):
    """``snapshot_restore_py`` as Lambda's Python runtime provides it, plus the runtime's side: ``snapshot``
    and ``restore`` run the registered hooks in the runtime's order."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before: list[Hook] = []
        self.after: list[Hook] = []

    def register_before_snapshot(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        self.before.append((func, args, kwargs))
        return func

    def register_after_restore(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        self.after.append((func, args, kwargs))
        return func

    def snapshot(self) -> None:
        for func, args, kwargs in reversed(self.before):
            func(*args, **kwargs)

    def restore(self) -> None:
        for func, args, kwargs in self.after:
            func(*args, **kwargs)


def import_hooks_afresh(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    monkeypatch.delitem(sys.modules, "approvals.snapstart", raising=False)
    monkeypatch.delattr(approvals, "snapstart", raising=False)
    return importlib.import_module("approvals.snapstart")


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[SnapshotRestoreStandIn]:
    """Lambda's runtime with the hooks module imported into it; afterwards the process is as it was (the
    random state, a fresh cold start, the collector scanning everything)."""
    state = random.getstate()
    standin = SnapshotRestoreStandIn()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", standin)
    import_hooks_afresh(monkeypatch)
    yield standin
    wiring.reset_cold_start()
    gc.unfreeze()
    random.setstate(state)


@pytest.fixture
def deployed(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """The callback's environment (moto for AWS), in a fresh execution environment."""
    env = {
        **local_aws.env(),
        c.ENV_SLACK_CHANNEL_ID: "C0APPROVALS",
        c.ENV_SLACK_TEAM_ID: "T0APPROVE",
        "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wiring.reset_cold_start()
    return local_aws


def open_pools(client: Any) -> int:
    """How many connection pools a botocore client holds (each keeps its open connections)."""
    session = client._endpoint.http_session
    return len(session._manager.pools) + sum(len(manager.pools) for manager in session._proxy_managers.values())


def test_outside_lambda_the_hooks_module_imports_and_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # given no snapshot_restore_py (None in sys.modules makes its import fail, as it does off Lambda)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)

    # when
    hooks = import_hooks_afresh(monkeypatch)

    # then
    assert callable(hooks.before_snapshot)
    assert callable(hooks.after_restore)
    assert sys.modules["snapshot_restore_py"] is None


def test_inside_lambda_importing_the_module_registers_one_hook_of_each_kind(runtime: SnapshotRestoreStandIn) -> None:
    hooks = sys.modules["approvals.snapstart"]
    assert runtime.before == [(hooks.before_snapshot, (), {})]
    assert runtime.after == [(hooks.after_restore, (), {})]


def test_before_the_snapshot_every_aws_client_is_closed_and_forgotten(
    runtime: SnapshotRestoreStandIn, deployed: LocalAws
) -> None:
    # given the callback's clients, each with a connection open (the signing secret fetched, a queue read)
    deps = wiring.callback()
    assert deps.common.secrets.signing_secret() == SIGNING_SECRET
    deps.sqs.get_queue_attributes(QueueUrl=deployed.queue_url, AttributeNames=["QueueArn"])
    secrets_client = deps.common.secrets._provider.client
    assert open_pools(deps.sqs) == 1
    assert open_pools(secrets_client) == 1

    # when
    runtime.snapshot()

    # then nothing connected goes into the snapshot, and the next invocation builds its own
    assert open_pools(deps.sqs) == 0
    assert open_pools(secrets_client) == 0
    rebuilt = wiring.callback()
    assert rebuilt is not deps
    assert rebuilt.sqs is not deps.sqs
    assert rebuilt.verifier is not deps.verifier


def test_before_the_snapshot_metrics_recorded_at_init_are_dropped(
    runtime: SnapshotRestoreStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given (flushed by the first invocation of every restored environment, were it kept)
    from approvals.observability import MetricUnit, metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", c.METRICS_NAMESPACE)
    metrics.add_metric(name="RecordedAtInit", unit=MetricUnit.Count, value=1)
    assert "RecordedAtInit" in metrics.metric_set

    # when
    runtime.snapshot()

    # then
    assert "RecordedAtInit" not in metrics.metric_set


def test_after_restore_the_slack_secret_is_fetched_again_and_the_clients_rebuilt(
    runtime: SnapshotRestoreStandIn, deployed: LocalAws
) -> None:
    # given the signing secret cached at init, then rotated in Secrets Manager
    deps = wiring.callback()
    assert deps.common.secrets.signing_secret() == SIGNING_SECRET
    deployed.client("secretsmanager").put_secret_value(
        SecretId=deployed.secret_name,
        SecretString=json.dumps({c.SECRET_BOT_TOKEN_KEY: BOT_TOKEN, c.SECRET_SIGNING_SECRET_KEY: "rotated-secret"}),
    )
    assert wiring.callback().common.secrets.signing_secret() == SIGNING_SECRET  # cached until told otherwise

    # when
    runtime.restore()

    # then
    restored = wiring.callback()
    assert restored is not deps
    assert restored.sqs is not deps.sqs
    assert restored.common.deadline is not deps.common.deadline
    assert restored.common.secrets.signing_secret() == "rotated-secret"


def test_each_restored_environment_draws_its_own_random_numbers(runtime: SnapshotRestoreStandIn) -> None:
    # given the random state that init left in the snapshot
    random.seed(20261201)
    snapshot = random.getstate()
    without_hooks = []
    for _ in range(2):
        random.setstate(snapshot)
        without_hooks.append(random.random())
    assert without_hooks[0] == without_hooks[1]  # two environments, one sequence

    # when two environments are restored from it
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        runtime.restore()
        draws.append(random.random())

    # then
    assert draws[0] != draws[1]
    assert without_hooks[0] not in draws


def test_after_restore_powertools_counts_the_restore_as_a_cold_start(
    runtime: SnapshotRestoreStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given flags an invocation would have turned off
    from aws_lambda_powertools.logging import logger as logger_module
    from aws_lambda_powertools.metrics.provider import cold_start

    monkeypatch.setattr(cold_start, "is_cold_start", False)
    monkeypatch.setattr(logger_module, "is_cold_start", False)

    # when
    runtime.restore()

    # then
    assert cold_start.is_cold_start is True
    assert logger_module.is_cold_start is True


def test_after_restore_the_environment_metadata_is_read_again(
    runtime: SnapshotRestoreStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the Availability Zone of the environment that made the snapshot
    from aws_lambda_powertools.utilities.metadata import lambda_metadata

    monkeypatch.setitem(lambda_metadata._cache, "AvailabilityZoneID", "use1-az1")

    # when
    runtime.restore()

    # then
    assert lambda_metadata._cache == {}


def test_after_restore_the_default_boto3_session_is_made_again(runtime: SnapshotRestoreStandIn) -> None:
    # given
    import boto3

    boto3.setup_default_session(region_name="us-east-1")
    before = boto3.DEFAULT_SESSION

    # when
    runtime.restore()

    # then
    assert before is not None
    assert boto3.DEFAULT_SESSION is None


# The handlers that import the hooks (each must, or its function snapshots whatever its init left).
HOOKED_HANDLERS = ["notifier", "callback", "decider", "audit_writer"]


@pytest.mark.parametrize("handler", HOOKED_HANDLERS)
def test_importing_a_handler_inside_lambda_registers_the_hooks(handler: str, tmp_path: Path) -> None:
    # given Lambda's runtime module (a recording stand-in) on the path of a fresh interpreter
    (tmp_path / "snapshot_restore_py.py").write_text(
        "before, after = [], []\n"
        "def register_before_snapshot(func, *args, **kwargs):\n"
        "    before.append(func.__module__ + '.' + func.__name__)\n"
        "    return func\n"
        "def register_after_restore(func, *args, **kwargs):\n"
        "    after.append(func.__module__ + '.' + func.__name__)\n"
        "    return func\n"
    )
    script = (
        "import json, snapshot_restore_py as hooks\n"
        f"from approvals.handlers import {handler}\n"
        "print(json.dumps({'before': hooks.before, 'after': hooks.after}))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "lambdas"), str(ROOT)]),
        "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    # when
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, cwd=ROOT)

    # then
    registered = json.loads(out.stdout.strip().splitlines()[-1])
    assert registered == {
        "before": ["approvals.snapstart.before_snapshot"],
        "after": ["approvals.snapstart.after_restore"],
    }
