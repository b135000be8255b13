"""Test helpers: event samples live in tests/events/*.json, loaded by one function; EMF read back."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> Any:
    """A fresh copy of tests/events/<name>.json (tests may change it freely)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def emf_metrics(stdout: str, namespace: str | None = None) -> Counter[str]:
    """The metrics in the EMF lines printed to stdout, summed by name (other lines are skipped).

    With ``namespace``, every metric directive must be in it.
    """
    totals: Counter[str] = Counter()
    for line in stdout.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            if namespace is not None:
                assert directive["Namespace"] == namespace
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                totals[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
    return totals
