"""Cold-start work runs without cyclic garbage collection, and what it makes is frozen out of it.

Loading a handler's modules and building its clients happen once per execution environment and
make a few hundred thousand objects that live as long as the environment. Python's cyclic
collector would scan them again and again while they are being made (tens of milliseconds of a
callback cold start, which must answer Slack within 3 seconds) and then in later collections.
``long_lived()`` pauses the collector for such a step and then moves what exists into the
permanent generation (``gc.freeze``), so later collections only scan objects made per request.

Reference counting frees objects as usual throughout; only cycle detection is paused. The cost is
that reference cycles already unreachable when a step ends are kept, not collected; these steps
make few.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived() -> Iterator[None]:
    """Usable as ``with long_lived():`` or as a decorator; nesting is safe."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def thaw() -> None:
    """Let the collector scan everything again, as in a new execution environment (local runs and
    tests that start a fresh cold start in the same process)."""
    gc.unfreeze()
