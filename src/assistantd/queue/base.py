"""The dispatch protocol, and the embedded dispatcher.

The database is where work lives: a run that is ``queued`` or ``in_progress`` and not leased
by a live worker, or a vector store file that is ``in_progress`` and not leased, is work to
do, and a worker takes it by writing its lease on the row. Dispatch only tells workers where
to look and spreads the work between them; losing a dispatch can delay work but never lose
it, because workers also look for leftover work on their own (see ``Worker`` and
``Ingestor``).

- Embedded (``LocalDispatcher``): API and worker share a process; dispatch wakes the worker's
  claim loop.
- Distributed (``queue.taskiq.TaskiqDispatcher``): run and ingestion jobs go through a task
  queue on Redis to whichever worker process takes them; cancels are broadcast to all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

RunHandler = Callable[[str], Awaitable[None]]
"""Executes one run (by id) if it can be claimed; returns when this worker is done with it."""

IngestHandler = Callable[[], Awaitable[bool]]
"""Takes ingestion work; returns whether there may be more."""

WakeHandler = Callable[[], None]


class Dispatcher(Protocol):
    queue_mode: bool
    """True when runs reach workers as jobs (workers must not claim runs on their own)."""

    async def run_ready(self, run_id: str, thread_id: str | None = None) -> None:
        """A run can be executed now: it was created, or tool outputs came in. With the
        thread, a run goes to the worker its thread is pinned to, if any."""
        ...

    async def pin_thread(self, thread_id: str, seconds: float) -> None:
        """This worker holds state for the thread (a code_interpreter session): send the
        thread's runs here for the next ``seconds``."""
        ...

    async def redispatch_run(self, run_id: str) -> bool:
        """Dispatch a run nobody holds again, unless it was dispatched moments ago."""
        ...

    async def wake_workers(self) -> None:
        """A run was cancelled: the worker holding it (wherever it is) must look now."""
        ...

    async def ingestion_ready(self) -> None:
        """Files wait for ingestion, or index data waits to be purged."""
        ...

    async def redispatch_ingestion(self) -> None:
        """Files wait that nobody works on: dispatch a job, unless one went out moments ago."""
        ...

    async def start(
        self, *, runs: RunHandler | None, ingest: IngestHandler | None, wake: WakeHandler | None
    ) -> None:
        """Start consuming (worker processes pass handlers; API-only processes pass None)."""
        ...

    async def stop_consuming(self) -> None:
        """Take no more work (work in flight is the worker's to finish or hand back)."""
        ...

    async def close(self) -> None: ...


class LocalDispatcher:
    """One process: dispatch is waking the in-process worker, which claims from the database."""

    queue_mode = False

    def __init__(self) -> None:
        self._wake: WakeHandler | None = None
        self._ingest_wake: WakeHandler | None = None

    def bind(self, wake_runs: WakeHandler, wake_ingest: WakeHandler) -> None:
        self._wake = wake_runs
        self._ingest_wake = wake_ingest

    async def run_ready(self, run_id: str, thread_id: str | None = None) -> None:
        if self._wake is not None:
            self._wake()

    async def pin_thread(self, thread_id: str, seconds: float) -> None:
        return None

    async def redispatch_run(self, run_id: str) -> bool:
        return False

    async def wake_workers(self) -> None:
        if self._wake is not None:
            self._wake()

    async def ingestion_ready(self) -> None:
        if self._ingest_wake is not None:
            self._ingest_wake()

    async def redispatch_ingestion(self) -> None:
        return None

    async def start(
        self, *, runs: RunHandler | None, ingest: IngestHandler | None, wake: WakeHandler | None
    ) -> None:
        return None

    async def stop_consuming(self) -> None:
        return None

    async def close(self) -> None:
        return None
