"""The one source of wall-clock time for objects, so tests can reason about it."""

from __future__ import annotations

import time


def now() -> int:
    """Unix time in whole seconds, as every ``*_at`` field of the API carries it."""
    return int(time.time())
