"""One contract for every event bus: the in-process one and Redis Streams.

For Redis, "another process" is a second bus with its own connection: what one publishes,
the other must deliver, with the same sequence numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from assistantd.streaming.base import Envelope, EventBus, LogGap
from assistantd.streaming.memory import MemoryEventBus
from assistantd.streaming.redis import RedisEventBus
from tests.redis_server import redis_server

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


class Pair:
    """A publisher's bus and a reader's bus (the same object for the in-process bus)."""

    def __init__(self, writer: EventBus, reader: EventBus) -> None:
        self.writer = writer
        self.reader = reader


@pytest.fixture(params=["memory", "redis"])
async def buses(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Pair]:
    if request.param == "memory":
        bus = MemoryEventBus(max_events_per_run=50)
        yield Pair(bus, bus)
        await bus.close()
        return
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    await clients[0].flushdb()
    writer = RedisEventBus(clients[0], max_events_per_run=50)
    reader = RedisEventBus(clients[1], max_events_per_run=50)
    yield Pair(writer, reader)
    for bus in (writer, reader):
        await bus.close()
    for client in clients:
        await client.aclose()


async def take(bus: EventBus, run: str, after: int, n: int) -> list[Envelope]:
    out: list[Envelope] = []
    async with asyncio.timeout(5):
        async for envelope in bus.subscribe(run, after, idle_timeout=0.2):
            if envelope is not None:
                out.append(envelope)
                if len(out) == n:
                    break
    return out


async def test_sequence_numbers_start_at_one_and_increase(buses: Pair) -> None:
    seqs = [await buses.writer.publish("run_a", "e", {"i": i}) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert await buses.reader.last_seq("run_a") == 5
    assert await buses.reader.last_seq("run_unknown") == 0
    assert await buses.writer.publish("run_b", "e", {}) == 1


async def test_late_subscriber_replays_from_the_start_then_follows(buses: Pair) -> None:
    for i in range(3):
        await buses.writer.publish("run_c", f"e{i}", {"i": i})
    reader = asyncio.create_task(take(buses.reader, "run_c", 0, 6))
    await asyncio.sleep(0.3)
    for i in range(3, 6):
        await buses.writer.publish("run_c", f"e{i}", {"i": i})
    got = await reader
    assert [e.seq for e in got] == [1, 2, 3, 4, 5, 6]
    assert [e.event for e in got] == [f"e{i}" for i in range(6)]
    assert [e.data for e in got] == [f'{{"i":{i}}}'.encode() for i in range(6)]


async def test_subscribe_after_a_sequence_number_skips_what_was_seen(buses: Pair) -> None:
    for i in range(4):
        await buses.writer.publish("run_d", "e", {"i": i})
    got = await take(buses.reader, "run_d", 2, 2)
    assert [e.seq for e in got] == [3, 4]


async def test_many_subscribers_each_get_every_event_in_order(buses: Pair) -> None:
    readers = [asyncio.create_task(take(buses.reader, "run_e", 0, 30)) for _ in range(5)]
    await asyncio.sleep(0.2)
    for i in range(30):
        await buses.writer.publish("run_e", "e", {"i": i})
    for got in await asyncio.gather(*readers):
        assert [e.seq for e in got] == list(range(1, 31))


async def test_two_publishers_share_one_sequence(buses: Pair) -> None:
    async def burst(bus: EventBus, tag: str) -> list[int]:
        return [await bus.publish("run_f", tag, {}) for _ in range(20)]

    a, b = await asyncio.gather(burst(buses.writer, "a"), burst(buses.reader, "b"))
    assert sorted(a + b) == list(range(1, 41))
    got = await take(buses.reader, "run_f", 0, 40)
    assert [e.seq for e in got] == list(range(1, 41))


async def test_idle_subscription_yields_none(buses: Pair) -> None:
    seen: list[Any] = []
    async for envelope in buses.reader.subscribe("run_g", 0, idle_timeout=0.05):
        seen.append(envelope)
        break
    assert seen == [None]


async def test_a_reader_far_behind_a_bounded_log_learns_of_the_gap(buses: Pair) -> None:
    for i in range(400):
        await buses.writer.publish("run_h", "e", {"i": i})
    with pytest.raises(LogGap):
        await take(buses.reader, "run_h", 0, 400)


async def test_runs_are_independent(buses: Pair) -> None:
    await buses.writer.publish("run_i", "x", {})
    await buses.writer.publish("run_j", "y", {})
    got = await take(buses.reader, "run_j", 0, 1)
    assert [(e.seq, e.event) for e in got] == [(1, "y")]


async def test_redis_slow_reader_overflows_its_queue_and_refills_from_the_stream(
    redis_url: str,
) -> None:
    """The reader task never waits for a subscriber: one that stops reading loses its queued
    events and takes them again from the stream, in order, none missing."""
    from assistantd.streaming import redis as redis_bus

    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    writer = RedisEventBus(clients[0])
    reader = RedisEventBus(clients[1])
    total = redis_bus._QUEUE_BOUND + 500
    try:
        events = reader.subscribe("run_slow", 0, idle_timeout=0.2)
        first = await anext(events)  # subscribed; now stop reading for a while
        assert first is None
        for i in range(total):
            await writer.publish("run_slow", "e", {"i": i})
        await asyncio.sleep(0.5)  # the reader task delivers (and overflows) meanwhile
        seqs: list[int] = []
        async for envelope in events:
            if envelope is None:
                continue
            seqs.append(envelope.seq)
            if len(seqs) == total:
                break
        await events.aclose()
        assert seqs == list(range(1, total + 1))
    finally:
        for bus in (writer, reader):
            await bus.close()
        for client in clients:
            await client.aclose()
