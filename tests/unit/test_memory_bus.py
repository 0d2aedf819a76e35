"""How long the in-process bus keeps a run's events: a reader never loses its log, however
far behind it is; an ended run's log nobody reads goes after the retention time."""

from __future__ import annotations

import asyncio
import time

import pytest

from assistantd.streaming.memory import MemoryEventBus

pytestmark = pytest.mark.asyncio(loop_scope="function")


def _collect_now(bus: MemoryEventBus) -> None:
    bus._last_gc = time.monotonic() - 10  # the collector runs at most every 5 s
    bus._collect_garbage()


async def test_an_ended_log_nobody_reads_goes_after_the_retention_time() -> None:
    bus = MemoryEventBus(retention_seconds=0.05)
    await bus.publish("run_a", "thread.run.created", {})
    await bus.publish("run_a", "thread.run.completed", {})
    await bus.publish("run_b", "thread.run.created", {})  # not ended: kept
    await asyncio.sleep(0.1)
    _collect_now(bus)
    assert await bus.last_seq("run_a") == 0
    assert await bus.last_seq("run_b") == 1


async def test_a_lagging_reader_keeps_its_log_past_the_retention_time() -> None:
    bus = MemoryEventBus(retention_seconds=0.05)
    for i in range(5):
        await bus.publish("run_a", "thread.message.delta", {"i": i})
    reader = bus.subscribe("run_a")
    first = await anext(reader)
    assert first is not None and first.seq == 1
    await bus.publish("run_a", "thread.run.completed", {})
    await asyncio.sleep(0.1)
    _collect_now(bus)
    rest = [await anext(reader) for _ in range(5)]
    assert [e.seq for e in rest if e is not None] == [2, 3, 4, 5, 6]
    await reader.aclose()
    await asyncio.sleep(0.1)
    _collect_now(bus)
    assert await bus.last_seq("run_a") == 0
