"""The shared event bus: one Redis Stream per run, read by every API process.

Publishing is one Lua call that increments the run's counter and appends the event under the
stream id ``<seq>-0``, so sequence numbers are per run, strictly increasing and the same on
every process, whichever process (API or worker) published. A stream is trimmed to about
``max_events_per_run`` entries and expires ``retention_seconds`` after the run's terminal event
(or after an hour without events, for runs that never end here).

Reading: each process runs one reader task that blocks on ``XREAD`` over the streams of all
runs it has subscribers for, and hands each event to those subscribers' in-memory queues. A
subscriber first replays what the stream already holds (``XRANGE``), then takes the live
events, skipping what it has seen; whenever it sees a hole (a late start, or its queue
overflowed because its client reads slowly) it fills it from ``XRANGE``, and if the stream was
already trimmed past the hole it raises :class:`LogGap`. So one slow client costs memory only
up to its queue bound and never holds the reader or other clients back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from assistantd.streaming.base import Envelope, LogGap
from assistantd.streaming.memory import TERMINAL_EVENTS

log = logging.getLogger("assistantd.bus")

_PUBLISH = """
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', ARGV[1], 'd', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return seq
"""

_IDLE_TTL = 3600
_READ_BLOCK_MS = 100
_READ_COUNT = 512
_QUEUE_BOUND = 4096


class _Subscriber:
    __slots__ = ("changed", "events", "overflowed")

    def __init__(self) -> None:
        self.events: deque[Envelope] = deque()
        self.changed = asyncio.Event()
        self.overflowed = False

    def offer(self, envelope: Envelope) -> None:
        if len(self.events) >= _QUEUE_BOUND:
            # The reader never waits for a slow subscriber: drop its backlog; it refills the
            # hole from the stream when it catches up.
            self.events.clear()
            self.overflowed = True
        else:
            self.events.append(envelope)
        self.changed.set()


class RedisEventBus:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "assistantd",
        max_events_per_run: int = 20_000,
        retention_seconds: int = 600,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.max_events_per_run = max_events_per_run
        self.retention_seconds = retention_seconds
        self._publish = redis.register_script(_PUBLISH)
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._cursors: dict[str, int] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closing = False

    def _stream(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:events"

    def _counter(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:seq"

    async def publish(self, run_id: str, event: str, data: Any) -> int:
        ttl = self.retention_seconds if event in TERMINAL_EVENTS else _IDLE_TTL
        seq = await self._publish(
            keys=[self._stream(run_id), self._counter(run_id)],
            args=[event, orjson.dumps(data), self.max_events_per_run, ttl],
        )
        return int(seq)

    async def last_seq(self, run_id: str) -> int:
        value = await self.redis.get(self._counter(run_id))
        return int(value) if value is not None else 0

    async def _range(self, run_id: str, cursor: int, upto: int | None = None) -> list[Envelope]:
        """The stream's events after ``cursor`` (up to ``upto``, exclusive), checking that
        the first one follows ``cursor``."""
        end = f"{upto - 1}-0" if upto is not None else "+"
        if upto is not None and upto <= cursor + 1:
            return []
        entries: Any = await self.redis.xrange(self._stream(run_id), f"{cursor + 1}-0", end)
        out = [_envelope(entry_id, fields) for entry_id, fields in entries]
        first = out[0].seq if out else upto
        if first is not None and first > cursor + 1:
            raise LogGap(f"events {cursor + 1}..{first - 1} were dropped")
        return out

    async def subscribe(
        self, run_id: str, after_seq: int = 0, *, idle_timeout: float | None = None
    ) -> AsyncIterator[Envelope | None]:
        sub = _Subscriber()
        self._subscribers.setdefault(run_id, set()).add(sub)
        self._cursors.setdefault(run_id, after_seq)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="assistantd-bus-reader")
        cursor = after_seq
        try:
            # Registered first, then replayed: an event published in between is in the
            # replay or in the queue (or both; the cursor skips the second copy).
            for envelope in await self._range(run_id, cursor):
                cursor = envelope.seq
                yield envelope
            while True:
                if sub.overflowed:
                    sub.overflowed = False
                    for envelope in await self._range(run_id, cursor):
                        cursor = envelope.seq
                        yield envelope
                while sub.events:
                    envelope = sub.events.popleft()
                    if envelope.seq <= cursor:
                        continue
                    if envelope.seq > cursor + 1:
                        for missed in await self._range(run_id, cursor, envelope.seq):
                            cursor = missed.seq
                            yield missed
                    cursor = envelope.seq
                    yield envelope
                if sub.overflowed:
                    continue
                sub.changed.clear()
                try:
                    await asyncio.wait_for(sub.changed.wait(), idle_timeout)
                except TimeoutError:
                    yield None
        finally:
            subs = self._subscribers.get(run_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[run_id]
                    self._cursors.pop(run_id, None)

    async def _read(self) -> None:
        """One blocking XREAD over every subscribed run, fanned out to the subscribers."""
        while self._subscribers and not self._closing:
            streams = {self._stream(run): f"{cur}-0" for run, cur in self._cursors.items()}
            try:
                response: Any = await self.redis.xread(
                    streams,  # type: ignore[arg-type]
                    count=_READ_COUNT,
                    block=_READ_BLOCK_MS,
                )
            except RedisError:
                log.warning("reading run events from Redis failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            for key, entries in response or []:
                name = key.decode() if isinstance(key, bytes) else str(key)
                run_id = name.removeprefix(f"{self.prefix}:run:").removesuffix(":events")
                subs = self._subscribers.get(run_id)
                for entry_id, fields in entries:
                    envelope = _envelope(entry_id, fields)
                    if run_id in self._cursors:
                        self._cursors[run_id] = envelope.seq
                    for sub in subs or ():
                        sub.offer(envelope)

    async def close(self) -> None:
        """Stop the reader between two reads.

        Cancelling it inside a blocking XREAD leaves redis-py's connection half-read, and the
        client then drops that socket without closing it (a ResourceWarning at exit). The
        reader checks ``_closing`` after every read, so waiting one read block is enough;
        cancelling stays the fallback for a Redis that stopped answering."""
        self._closing = True
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._reader), _READ_BLOCK_MS / 1000 + 2)
            if not self._reader.done():
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._reader
            self._reader = None


def _envelope(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Envelope:
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return Envelope(int(raw.split("-", 1)[0]), fields[b"e"].decode(), fields[b"d"])
