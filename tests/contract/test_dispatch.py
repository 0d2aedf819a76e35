"""The dispatch contract, over the embedded dispatcher and the task queue on a real Redis.

Both: ``run_ready`` reaches a consumer, ``wake_workers`` reaches every worker. The task queue
also: each job goes to exactly one of several consumers; a consumer holds at most its
concurrency; ``redispatch_run`` sends a run again only once per gate time; a thread pinned to
a consumer has its runs delivered to that consumer only.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from redis.asyncio import Redis

from assistantd.queue.base import LocalDispatcher
from assistantd.queue.taskiq import TaskiqDispatcher
from tests.redis_server import redis_server

pytestmark = [
    pytest.mark.asyncio(loop_scope="function"),
    # A consumer stopped while taskiq's receiver blocks in XREADGROUP leaves that connection to
    # the garbage collector (inside taskiq-redis); it is harmless, but must not fail a test.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


class Consumer:
    def __init__(self, dispatcher: TaskiqDispatcher, hold: float = 0.0) -> None:
        self.dispatcher = dispatcher
        self.hold = hold
        self.runs: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self.wakes = 0

    async def run(self, run_id: str) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.runs.append(run_id)
        await asyncio.sleep(self.hold)
        self.in_flight -= 1

    async def ingest(self) -> bool:
        return False

    def wake(self) -> None:
        self.wakes += 1


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[list[Consumer]]:
    """Two consumers (concurrency 2 each) and one producer-only dispatcher, on a clean Redis."""
    clients = [Redis.from_url(redis_url) for _ in range(3)]
    await clients[0].flushdb()
    dispatchers = [
        TaskiqDispatcher(
            redis_url, c, run_concurrency=2, ingest_concurrency=1, redispatch_seconds=2
        )
        for c in clients
    ]
    consumers = [Consumer(d, hold=0.2) for d in dispatchers[:2]]
    await dispatchers[2].start(runs=None, ingest=None, wake=None)
    for consumer in consumers:
        await consumer.dispatcher.start(
            runs=consumer.run, ingest=consumer.ingest, wake=consumer.wake
        )
    consumers.append(Consumer(dispatchers[2]))  # the producer, last
    await asyncio.sleep(0.3)
    yield consumers
    for d in dispatchers:
        await d.close()
    for c in clients:
        await c.aclose()
    # Let closing transports finish, then collect what the receiver left to the collector
    # here, where the warning is expected, rather than in whichever test runs next.
    await asyncio.sleep(0.1)
    gc.collect()


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)


async def test_each_job_reaches_exactly_one_consumer(queue: list[Consumer]) -> None:
    a, b, producer = queue
    ids = [f"run_{i}" for i in range(20)]
    for run_id in ids:
        await producer.dispatcher.run_ready(run_id)
    await until(lambda: len(a.runs) + len(b.runs) == 20)
    await asyncio.sleep(0.5)
    assert sorted(a.runs + b.runs) == sorted(ids)
    assert a.runs and b.runs, "jobs should spread over both consumers"
    assert a.peak <= 2 and b.peak <= 2


async def test_redispatch_is_gated(queue: list[Consumer]) -> None:
    a, b, producer = queue
    sent = [await producer.dispatcher.redispatch_run("run_gated") for _ in range(5)]
    assert sent == [True, False, False, False, False]
    await until(lambda: Counter(a.runs + b.runs)["run_gated"] == 1)
    await asyncio.sleep(2.2)  # the gate (2 s) has passed
    assert await producer.dispatcher.redispatch_run("run_gated")
    await until(lambda: Counter(a.runs + b.runs)["run_gated"] == 2)


async def test_run_ready_sets_the_gate(queue: list[Consumer]) -> None:
    _a, _b, producer = queue
    await producer.dispatcher.run_ready("run_fresh", "thread_x")
    assert not await producer.dispatcher.redispatch_run("run_fresh")


async def test_a_pinned_thread_goes_to_its_consumer(queue: list[Consumer]) -> None:
    a, b, producer = queue
    await b.dispatcher.pin_thread("thread_pinned", 30)
    ids = [f"run_p{i}" for i in range(8)]
    for run_id in ids:
        await producer.dispatcher.run_ready(run_id, "thread_pinned")
    await until(lambda: sum(r in ids for r in b.runs) == 8)
    assert not any(r in ids for r in a.runs)


async def test_a_leaving_consumer_drops_its_pins(queue: list[Consumer]) -> None:
    a, b, producer = queue
    await b.dispatcher.pin_thread("thread_gone", 30)
    await b.dispatcher._unpin_all()  # what close() does first when a worker leaves
    for n in range(6):
        await producer.dispatcher.run_ready(f"run_unpinned{n}", "thread_gone")
    await until(lambda: sum(r.startswith("run_unpinned") for r in a.runs + b.runs) == 6)
    assert any(r.startswith("run_unpinned") for r in a.runs)


async def test_wake_reaches_every_worker(queue: list[Consumer]) -> None:
    a, b, producer = queue
    await producer.dispatcher.wake_workers()
    await until(lambda: a.wakes >= 1 and b.wakes >= 1)


async def test_local_dispatcher_wakes_the_in_process_worker() -> None:
    wakes: Counter[str] = Counter()
    local = LocalDispatcher()
    local.bind(lambda: wakes.update(["runs"]), lambda: wakes.update(["ingest"]))
    await local.run_ready("run_1", "thread_1")
    await local.wake_workers()
    await local.ingestion_ready()
    assert wakes == Counter({"runs": 2, "ingest": 1})
    assert not local.queue_mode
    assert not await local.redispatch_run("run_1")
