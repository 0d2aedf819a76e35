"""The event bus protocol.

``publish(run, event, data)`` appends to the run's log and gives the event the next sequence
number; ``subscribe(run, after_seq)`` yields every event after ``after_seq``, first the ones
already logged (replay), then new ones as they come. Publishing never waits for subscribers: a
slow reader only falls behind in the log, and the log is bounded, so neither a slow client nor
a stalled one can hold the run or other clients back. Backends: in memory for one process
(``memory.py``); a shared one (Redis Streams) for many.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Envelope:
    seq: int
    event: str
    data: bytes
    """The event's JSON, encoded once at publish time."""


class LogGap(Exception):
    """The subscriber fell so far behind that the events it needs were dropped."""


class EventBus(Protocol):
    async def publish(self, run_id: str, event: str, data: Any) -> int:
        """Append an event; returns its sequence number (1, 2, ...)."""
        ...

    async def last_seq(self, run_id: str) -> int:
        """The sequence number of the newest event of the run (0 if none)."""
        ...

    def subscribe(
        self, run_id: str, after_seq: int = 0, *, idle_timeout: float | None = None
    ) -> AsyncIterator[Envelope | None]:
        """Events after ``after_seq``, in order. Yields ``None`` after ``idle_timeout``
        seconds without an event (so the caller can send a keep-alive or check the run)."""
        ...

    async def close(self) -> None: ...
