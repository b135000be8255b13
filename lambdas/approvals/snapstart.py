"""Lambda SnapStart runtime hooks: nothing unique goes into the snapshot, and each restored environment
makes its own.

With SnapStart (the stack's snapStart setting) Lambda runs a function's init once, when a version is
published, snapshots the execution environment and starts later environments from that snapshot, so
whatever init left in memory is shared by all of them: the ``random`` module's state, open connections,
fetched secrets, credentials. Importing this module registers two hooks with ``snapshot_restore_py``,
which exists only inside Lambda's Python runtime; anywhere else the import registers nothing. Lambda runs
the hooks only for versions published with SnapStart.

Before the snapshot: every AWS client still alive is closed (its connection pool with it), and the
cached settings, clients, boto3 session (credentials), Slack secret, the callback's verifier and the
Deadline are dropped (``wiring.reset_cold_start``), as are Powertools' parameter cache and whatever
metrics init recorded (they would be flushed once per restored environment).

After restore: ``random`` is seeded again from ``os.urandom``, the same caches are dropped again (each
is made again on first use, in this environment), Powertools' cold-start flags say "cold start" (a
restore is this environment's cold start) and its execution-environment metadata (the Availability
Zone) is forgotten. ``uuid.uuid4``, ``secrets`` and ``os.urandom`` read the kernel at every call and need
nothing. The string hash seed (``PYTHONHASHSEED``) cannot change in a running interpreter and stays
shared; nothing here depends on it.

Only modules already imported are touched: the audit writer, for one, never loads boto3 or the wiring.
"""

from __future__ import annotations

import gc
import random
import sys
from typing import Any


def before_snapshot() -> None:
    """Runs once, at the end of init, before Lambda snapshots the execution environment."""
    gc.unfreeze()  # approvals.coldstart froze the clients out of gc.get_objects()
    for client in _live_aws_clients():
        client.close()
    observability = _loaded("approvals.observability")
    if observability is not None:
        observability.metrics.clear_metrics()
    _forget_environment()
    gc.collect()  # what was dropped goes now, in the snapshot's place, sockets and all
    gc.freeze()  # the modules stay out of later collections, as after any cold start


def after_restore() -> None:
    """Runs in each execution environment restored from the snapshot, before its first invocation."""
    random.seed()  # from os.urandom: each environment draws its own numbers (retry jitter, sampling)
    _forget_environment()
    _mark_cold_start()
    metadata = _loaded("aws_lambda_powertools.utilities.metadata.lambda_metadata")
    if metadata is not None:
        metadata.clear_metadata_cache()
    gc.freeze()  # reset_cold_start thawed the frozen modules; freezing again is cheap


def _forget_environment() -> None:
    """Drop every cached client, session, credential, secret and setting; each is made again on first use."""
    wiring = _loaded("approvals.wiring")
    if wiring is not None:
        wiring.reset_cold_start()
    boto3 = _loaded("boto3")
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None
    parameters = _loaded("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()


def _mark_cold_start() -> None:
    metrics_cold_start = _loaded("aws_lambda_powertools.metrics.provider.cold_start")
    if metrics_cold_start is not None:
        metrics_cold_start.reset_cold_start_flag()
    for name in ("aws_lambda_powertools.logging.logger", "aws_lambda_powertools.tracing.tracer"):
        module = _loaded(name)
        if module is not None:
            module.is_cold_start = True


def _live_aws_clients() -> list[Any]:
    """Every botocore client the interpreter still holds, wherever it is cached."""
    botocore_client = _loaded("botocore.client")
    if botocore_client is None:
        return []
    base = botocore_client.BaseClient
    return [obj for obj in gc.get_objects() if isinstance(obj, base)]


def _loaded(name: str) -> Any:
    """The module if something has imported it already, else None (nothing is imported here)."""
    return sys.modules.get(name)


try:
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:  # not inside Lambda's Python runtime: no snapshots
    pass
else:
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
