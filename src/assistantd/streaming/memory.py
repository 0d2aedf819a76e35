"""The in-process event bus: one bounded log per run, one asyncio.Event to wake readers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import orjson

from assistantd.streaming.base import Envelope, LogGap

TERMINAL_EVENTS = frozenset(
    {
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.incomplete",
    }
)


class _RunLog:
    __slots__ = ("changed", "ended_at", "events", "next_seq", "readers", "touched")

    def __init__(self) -> None:
        self.events: deque[Envelope] = deque()
        self.next_seq = 1
        self.changed = asyncio.Event()
        self.ended_at: float | None = None
        self.touched = time.monotonic()
        self.readers = 0


class MemoryEventBus:
    def __init__(
        self, *, max_events_per_run: int = 20_000, retention_seconds: float = 30.0
    ) -> None:
        self.max_events_per_run = max_events_per_run
        self.retention_seconds = retention_seconds
        self._logs: dict[str, _RunLog] = {}
        self._last_gc = time.monotonic()

    def _log(self, run_id: str) -> _RunLog:
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog()
        return log

    async def publish(self, run_id: str, event: str, data: Any) -> int:
        log = self._log(run_id)
        envelope = Envelope(log.next_seq, event, orjson.dumps(data))
        log.next_seq += 1
        log.events.append(envelope)
        log.touched = time.monotonic()
        if len(log.events) > self.max_events_per_run:
            log.events.popleft()
        if event in TERMINAL_EVENTS:
            log.ended_at = time.monotonic()
        # Wake every reader waiting on this run; later readers wait on a fresh Event.
        log.changed.set()
        log.changed = asyncio.Event()
        self._collect_garbage()
        return envelope.seq

    async def last_seq(self, run_id: str) -> int:
        log = self._logs.get(run_id)
        return 0 if log is None else log.next_seq - 1

    async def subscribe(
        self, run_id: str, after_seq: int = 0, *, idle_timeout: float | None = None
    ) -> AsyncIterator[Envelope | None]:
        cursor = after_seq
        # The reader keeps its log: it stays readable to the end however long the reader lags,
        # and the collector leaves a log alone while anyone reads it.
        log = self._log(run_id)
        log.readers += 1
        try:
            while True:
                if log.events and log.events[0].seq > cursor + 1:
                    raise LogGap(f"events {cursor + 1}..{log.events[0].seq - 1} were dropped")
                start = cursor + 1 - log.events[0].seq if log.events else 0
                pending = list(itertools.islice(log.events, start, None)) if log.events else []
                if pending:
                    for envelope in pending:
                        cursor = envelope.seq
                        yield envelope
                    continue
                waiter = log.changed
                try:
                    await asyncio.wait_for(waiter.wait(), idle_timeout)
                except TimeoutError:
                    yield None
        finally:
            log.readers -= 1
            log.touched = time.monotonic()

    def _collect_garbage(self) -> None:
        now = time.monotonic()
        if now - self._last_gc < 5:
            return
        self._last_gc = now
        # An ended run's log goes once nobody has read it for the retention time (a stream
        # subscribes as its response starts, so that covers a slow start); runs that never
        # ended (deleted threads, lost workers) go after an hour of silence.
        expired = [
            run_id
            for run_id, log in self._logs.items()
            if (
                log.ended_at is not None
                and log.readers == 0
                and now - max(log.ended_at, log.touched) > self.retention_seconds
            )
            or now - log.touched > 3600
        ]
        for run_id in expired:
            del self._logs[run_id]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._logs.clear()
