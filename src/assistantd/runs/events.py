"""Where the executor announces what happens to a run, event by event.

The names and payloads are the Assistants stream events (``thread.run.step.delta`` ...).
``sequence`` numbers are per run and strictly increasing, so a subscriber can resume after the
last one it saw. ``streaming/`` implements it with a bus.
"""

from __future__ import annotations

from typing import Any, Protocol


class RunEvents(Protocol):
    async def publish(self, run_id: str, event: str, data: Any) -> object:
        """Record ``event`` for ``run_id``; never blocks on slow subscribers."""
        ...
