"""Test helpers: event samples live in tests/events/*.json, loaded by one function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> Any:
    """A fresh copy of tests/events/<name>.json (tests may change it freely)."""
    return json.loads((EVENTS / f"{name}.json").read_text())
