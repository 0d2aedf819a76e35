"""Where the executor announces what happens to a run, event by event.

The names and payloads are the Assistants stream events (``thread.run.step.delta`` ...).
``sequence`` numbers are per run and strictly increasing, so a subscriber can resume after the
last one it saw. The streaming layer implements this protocol with a bus; without streaming,
:class:`NullEvents` drops them.
"""

from __future__ import annotations

from typing import Any, Protocol


class RunEvents(Protocol):
    async def publish(self, run_id: str, event: str, data: Any) -> None:
        """Record ``event`` for ``run_id``; never blocks on slow subscribers."""
        ...


class NullEvents:
    async def publish(self, run_id: str, event: str, data: Any) -> None:
        return None
