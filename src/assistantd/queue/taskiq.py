"""The distributed dispatcher: run and ingestion jobs on taskiq's Redis Streams broker.

Why taskiq (``docs/architecture.md``): asyncio-native, typed, maintained, and its Redis
Streams broker gives at-least-once delivery with consumer-group acknowledgements on the same
Redis the event bus uses. A job only names work; the database row is the truth and the lease
on it is the lock, so a job delivered twice (redelivery after a crash, a sweep that dispatched
again) is harmless: the second worker fails to claim the row and acknowledges the job.

- ``assistantd.run`` (run id): one per run that can be executed. The handler claims the run
  and executes it; the job is acknowledged when the worker is done with the run, so
  ``ASSISTANTD_RUN_CONCURRENCY`` jobs per worker process is the bound on runs in flight.
- ``assistantd.ingest``: "files wait". The handler claims up to the ingestion concurrency and
  works them off; when it took a full batch it enqueues another job so other workers help.
- Affinity: a worker that holds a thread's code_interpreter session pins the thread to itself
  (a key with the session's idle time); the thread's next runs go to that worker's own stream,
  which only it reads. If it died, the sweep dispatches the run to everyone after the gate
  time, and the run starts a new session (as when a session times out).
- Cancel: a Redis pub/sub broadcast wakes every worker, and the one holding the run stops it.
- A run nobody holds (its worker died, or a job was lost) is dispatched again by the workers'
  sweep, at most once per ``redispatch_seconds`` (a ``SET NX`` gate).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AsyncTaskiqDecoratedTask
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from assistantd.queue.base import IngestHandler, RunHandler, WakeHandler

log = logging.getLogger("assistantd.queue")


class TaskiqDispatcher:
    queue_mode = True

    def __init__(
        self,
        redis_url: str,
        redis: Redis,
        *,
        run_concurrency: int,
        ingest_concurrency: int,
        redispatch_seconds: int,
        prefix: str = "assistantd",
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.redispatch_seconds = max(1, redispatch_seconds)
        self.run_concurrency = run_concurrency
        self.ingest_concurrency = ingest_concurrency
        self._wake_channel = f"{prefix}:wake"
        # One stream per job kind, so a backlog of files never delays runs (and each kind has
        # its own concurrency). xread_count=1: a worker takes a job only when it has room,
        # so jobs spread over workers instead of piling up in one worker's pending list.
        common = {
            "consumer_group_name": f"{prefix}-workers",
            "xread_count": 1,
            "xread_block": 1000,
            "idle_timeout": redispatch_seconds * 4 * 1000,
            "maxlen": 1_000_000,
            "unacknowledged_lock_timeout": 5.0,
        }
        self._runs_broker = RedisStreamBroker(
            redis_url,
            queue_name=f"{prefix}:jobs:runs",
            **common,  # type: ignore[arg-type]
        )
        self._ingest_broker = RedisStreamBroker(
            redis_url,
            queue_name=f"{prefix}:jobs:ingest",
            **common,  # type: ignore[arg-type]
        )
        self._run_handler: RunHandler | None = None
        self._ingest_handler: IngestHandler | None = None

        # taskiq renames the functions it registers, so they are plain closures.
        async def execute_run(run_id: str) -> None:
            await self._execute_run(run_id)

        async def ingest() -> None:
            await self._ingest()

        self._run_task: AsyncTaskiqDecoratedTask[[str], Coroutine[Any, Any, None]] = (
            self._runs_broker.register_task(execute_run, task_name="assistantd.run")
        )
        self._ingest_task: AsyncTaskiqDecoratedTask[[], Coroutine[Any, Any, None]] = (
            self._ingest_broker.register_task(ingest, task_name="assistantd.ingest")
        )
        self._consumers: list[asyncio.Task[None]] = []
        self.node = uuid.uuid4().hex[:12]
        self._own_stream = f"{prefix}:jobs:runs:node:{self.node}"
        self._pinned: set[str] = set()
        self._closed = False

    # -- the jobs ----------------------------------------------------------------------------

    async def _execute_run(self, run_id: str) -> None:
        if self._run_handler is not None:
            await self._run_handler(run_id)

    async def _ingest(self) -> None:
        if self._ingest_handler is not None and await self._ingest_handler():
            await self.ingestion_ready()

    # -- producing ---------------------------------------------------------------------------

    def _gate(self, run_id: str) -> str:
        return f"{self.prefix}:dispatched:{run_id}"

    def _pin(self, thread_id: str) -> str:
        return f"{self.prefix}:pinned:{thread_id}"

    async def run_ready(self, run_id: str, thread_id: str | None = None) -> None:
        await self.redis.set(self._gate(run_id), 1, ex=self.redispatch_seconds)
        stream = await self.redis.get(self._pin(thread_id)) if thread_id else None
        if stream is not None:
            name = stream.decode() if isinstance(stream, bytes) else str(stream)
            await self._run_task.kicker().with_labels(queue_name=name).kiq(run_id)
        else:
            await self._run_task.kiq(run_id)

    async def pin_thread(self, thread_id: str, seconds: float) -> None:
        await self.redis.set(self._pin(thread_id), self._own_stream, ex=max(1, int(seconds)))
        self._pinned.add(thread_id)

    async def _unpin_all(self) -> None:
        """Leaving: this worker's sessions die with it, so its pins must not keep runs."""
        for thread_id in self._pinned:
            with contextlib.suppress(RedisError, OSError):
                key = self._pin(thread_id)
                if (await self.redis.get(key)) == self._own_stream.encode():
                    await self.redis.delete(key)
        self._pinned.clear()

    async def redispatch_run(self, run_id: str) -> bool:
        if not await self.redis.set(self._gate(run_id), 1, ex=self.redispatch_seconds, nx=True):
            return False
        await self._run_task.kiq(run_id)
        return True

    async def wake_workers(self) -> None:
        await self.redis.publish(self._wake_channel, b"wake")

    async def ingestion_ready(self) -> None:
        await self._ingest_task.kiq()

    async def redispatch_ingestion(self) -> None:
        gate = f"{self.prefix}:dispatched:ingest"
        if await self.redis.set(gate, 1, ex=self.redispatch_seconds, nx=True):
            await self._ingest_task.kiq()

    # -- consuming ---------------------------------------------------------------------------

    async def start(
        self, *, runs: RunHandler | None, ingest: IngestHandler | None, wake: WakeHandler | None
    ) -> None:
        consuming = runs is not None or ingest is not None
        if runs is not None:
            # Read this worker's own stream too (runs of threads pinned here).
            self._runs_broker.additional_streams = {self._own_stream: ">"}
        for broker in (self._runs_broker, self._ingest_broker):
            broker.is_worker_process = consuming
            await broker.startup()
        self._run_handler = runs
        self._ingest_handler = ingest
        if runs is not None:
            self._consumers.append(
                asyncio.create_task(
                    self._consume(self._runs_broker, self.run_concurrency), name="jobs-runs"
                )
            )
        if ingest is not None:
            self._consumers.append(
                asyncio.create_task(
                    self._consume(self._ingest_broker, self.ingest_concurrency),
                    name="jobs-ingest",
                )
            )
        if wake is not None:
            self._consumers.append(asyncio.create_task(self._listen(wake), name="jobs-wake"))

    async def _consume(self, broker: RedisStreamBroker, concurrency: int) -> None:
        await run_receiver_task(
            broker,
            max_async_tasks=max(1, concurrency),
            max_prefetch=0,
            ack_time=AcknowledgeType.WHEN_EXECUTED,
            propagate_exceptions=False,
        )

    async def _listen(self, wake: WakeHandler) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                async with pubsub:
                    await pubsub.subscribe(self._wake_channel)
                    async for _message in pubsub.listen():
                        wake()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                log.warning("wake-up channel lost; resubscribing", exc_info=True)
                await asyncio.sleep(0.5)

    async def stop_consuming(self) -> None:
        """Take no more jobs (jobs in flight are the worker's to finish or hand back)."""
        consumers, self._consumers = self._consumers, []
        for task in consumers:
            task.cancel()
        for task in consumers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.stop_consuming()
        await self._unpin_all()
        if self._runs_broker.additional_streams:
            # Jobs left in it are runs nobody holds now: the sweep dispatches them again.
            with contextlib.suppress(RedisError, OSError):
                await self.redis.delete(self._own_stream)
        for broker in (self._runs_broker, self._ingest_broker):
            with contextlib.suppress(Exception):
                await broker.shutdown()
