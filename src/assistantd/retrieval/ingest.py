"""Ingestion: the background worker that turns attached files into indexed chunks.

Jobs are rows: a vector store file that is ``in_progress``. The worker claims a few at a time
(``ASSISTANTD_INGEST_CONCURRENCY``) by writing its id and a lease deadline on the row (``SKIP
LOCKED`` on PostgreSQL), renews the leases while it works, and writes the outcome only if the
row is still its own and still ``in_progress`` (a cancel, a detach or a deleted store wins). A
job whose worker died is claimed again once its lease runs out; a clean shutdown hands its jobs
back at once. Nothing of this runs inside a request.

One job is one pipeline in a thread of the worker's own pool: blob pieces -> text segments
(``extract``) -> token windows (``chunking``) -> batches of ``BATCH`` chunks -> embeddings ->
the index. Memory stays bounded by a batch, whatever the file's size. Chunks only become
searchable when the row turns ``completed`` (searches ask the database which files are).
The worker also carries out index purges (detached files, deleted stores).

Distributed (``queue/taskiq.py``), files are claimed when an ingestion job arrives (``drain``),
and the loop only dispatches a job when it sees claimable files that nobody works on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy import delete, or_, select, update

from assistantd import clock
from assistantd.queue.base import Dispatcher, LocalDispatcher
from assistantd.retrieval.chunking import Strategy, chunk_texts
from assistantd.retrieval.embedders import Embedder, EmbeddingError, LocalEmbedder
from assistantd.retrieval.extract import ExtractionError, segments
from assistantd.retrieval.index.base import Chunk, Index
from assistantd.storage import tables
from assistantd.storage.blobs import BlobStore
from assistantd.storage.db import connection_lost, log_failure
from assistantd.storage.store import Store

log = logging.getLogger("assistantd.ingest")

BATCH = 64
MAX_ATTEMPTS = 3


class _Stopped(Exception):
    """The worker is shutting down: leave the job for the next one."""


@dataclass
class Job:
    project: str
    vector_store_id: str
    file_id: str
    generation: str
    attempts: int
    strategy: Strategy
    stop: threading.Event = field(default_factory=threading.Event)


class Ingestor:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        index: Index,
        embedder: Embedder | None,
        *,
        concurrency: int = 2,
        lease_seconds: int = 30,
        interval: float = 1.0,
        dispatch: Dispatcher | None = None,
    ) -> None:
        self.dispatch: Dispatcher = dispatch or LocalDispatcher()
        self.store = store
        self.blobs = blobs
        self.index = index
        self.embedder = embedder
        self.concurrency = max(1, concurrency)
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._jobs: dict[tuple[str, str], tuple[Job, asyncio.Task[None]]] = {}
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ingest")
        self._last_heartbeat = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="assistantd-ingest")

    def notify(self) -> None:
        self._wake.set()

    async def stop(self, grace: float = 30.0) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for job, _task in self._jobs.values():
            job.stop.set()
        tasks = [task for _job, task in self._jobs.values()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
        await self._release()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _release(self) -> None:
        """Hand unfinished jobs back, so the next worker need not wait for the leases."""
        t = tables.vector_store_files
        try:
            async with self.store.db.write() as conn:
                await conn.execute(
                    update(t)
                    .where(t.c.lease_owner == self.owner, t.c.status == "in_progress")
                    .values(lease_owner=None, lease_expires_at=None)
                )
        except Exception as exc:
            log_failure(log, "could not release ingestion leases", exc)

    async def _loop(self) -> None:
        while True:
            try:
                await self._purge()
                await self._heartbeat()
                if self.dispatch.queue_mode:
                    await self._redispatch()
                else:
                    self._start(await self._claim(self.concurrency - len(self._jobs)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(log, "ingestion loop failed", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    def _start(self, jobs: list[Job]) -> list[asyncio.Task[None]]:
        tasks = []
        for job in jobs:
            task = asyncio.create_task(self._run(job), name=f"ingest-{job.file_id}")
            self._jobs[(job.vector_store_id, job.file_id)] = (job, task)
            tasks.append(task)
        return tasks

    async def drain(self) -> bool:
        """An ingestion job: claim what fits, work it off; True if there may be more."""
        room = self.concurrency - len(self._jobs)
        if room <= 0:
            return True
        tasks = self._start(await self._claim(room))
        if tasks:
            await asyncio.wait(tasks)
        return len(tasks) == room

    async def _redispatch(self) -> None:
        """Dispatch a job when files wait that nobody holds (a lost job, a dead worker)."""
        if self._jobs:
            return
        t = tables.vector_store_files
        now = clock.now()
        async with self.store.db.read() as conn:
            waiting = (
                await conn.execute(
                    select(t.c.id)
                    .where(
                        t.c.status == "in_progress",
                        or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at < now),
                    )
                    .limit(1)
                )
            ).first()
        if waiting is not None:
            await self.dispatch.redispatch_ingestion()

    # -- claiming ----------------------------------------------------------------------------

    async def _claim(self, n: int) -> list[Job]:
        if n <= 0:
            return []
        t = tables.vector_store_files
        now = clock.now()
        async with self.store.db.write() as conn:
            rows = (
                await conn.execute(
                    select(
                        t.c.vector_store_id,
                        t.c.id,
                        t.c.project_id,
                        t.c.generation,
                        t.c.attempts,
                        t.c.body,
                    )
                    .where(
                        t.c.status == "in_progress",
                        or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at < now),
                    )
                    .order_by(t.c.created_at, t.c.id)
                    .limit(n)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await conn.execute(
                    update(t)
                    .where(
                        t.c.vector_store_id == row.vector_store_id,
                        t.c.id == row.id,
                        t.c.generation == row.generation,
                    )
                    .values(
                        lease_owner=self.owner,
                        lease_expires_at=now + self.lease_seconds,
                        attempts=row.attempts + 1,
                    )
                )
        return [
            Job(
                r.project_id,
                r.vector_store_id,
                r.id,
                r.generation,
                r.attempts + 1,
                Strategy.from_wire(orjson.loads(r.body).get("chunking_strategy")),
            )
            for r in rows
        ]

    async def _heartbeat(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if not self._jobs or loop_time - self._last_heartbeat < self.lease_seconds / 3:
            return
        self._last_heartbeat = loop_time
        t = tables.vector_store_files
        async with self.store.db.write() as conn:
            await conn.execute(
                update(t)
                .where(t.c.lease_owner == self.owner, t.c.status == "in_progress")
                .values(lease_expires_at=clock.now() + self.lease_seconds)
            )

    async def _purge(self) -> None:
        t = tables.index_purges
        async with self.store.db.read() as conn:
            rows = (await conn.execute(select(t).order_by(t.c.id).limit(100))).all()
        if not rows:
            return
        for row in rows:
            if row.generation is None:
                await self.index.delete_store(row.vector_store_id)
            else:
                await self.index.delete_generation(row.generation)
        async with self.store.db.write() as conn:
            await conn.execute(delete(t).where(t.c.id.in_([r.id for r in rows])))

    # -- one job -----------------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        key = (job.vector_store_id, job.file_id)
        try:
            if job.attempts > MAX_ATTEMPTS:
                await self._finish(
                    job,
                    "failed",
                    0,
                    {"code": "server_error", "message": "The file could not be processed."},
                )
                return
            usage = await self._ingest(job)
            if usage is not None:
                await self._finish(job, "completed", usage, None)
        except _Stopped:
            pass
        except ExtractionError as exc:
            await self._finish(job, "failed", 0, {"code": exc.code, "message": str(exc)})
        except EmbeddingError as exc:
            log.warning("file %s: %s", job.file_id, exc)
            await self._finish(
                job, "failed", 0, {"code": "server_error", "message": "Embedding failed."}
            )
        except Exception as exc:
            log_failure(log, f"file {job.file_id} in {job.vector_store_id} failed", exc)
            if connection_lost(exc):
                return  # its lease runs out and the file is tried again (one attempt spent)
            await self._finish(
                job,
                "failed",
                0,
                {"code": "server_error", "message": "The file could not be processed."},
            )
        finally:
            self._jobs.pop(key, None)
            if not self.dispatch.queue_mode:
                self.notify()

    async def _ingest(self, job: Job) -> int | None:
        f = tables.files
        async with self.store.db.read() as conn:
            row = (
                await conn.execute(
                    select(f.c.blob_key, f.c.body).where(
                        f.c.id == job.file_id, f.c.project_id == job.project
                    )
                )
            ).one_or_none()
        if row is None:
            return None  # the file is gone; its store rows went with it
        filename = str(orjson.loads(row.body)["filename"])
        # A previous attempt may have left some chunks of this generation.
        await self.index.delete_generation(job.generation)
        loop = asyncio.get_running_loop()
        source = self.blobs.read(str(row.blob_key))
        try:
            return await loop.run_in_executor(
                self._pool, self._pipeline, job, filename, source, loop
            )
        finally:
            closer = getattr(source, "aclose", None)
            if closer is not None:
                await closer()

    def _pipeline(
        self,
        job: Job,
        filename: str,
        source: AsyncIterator[bytes],
        loop: asyncio.AbstractEventLoop,
    ) -> int:
        """Runs in a pool thread; async work (blob reads, index writes) goes back to the loop."""

        def on_loop(coro: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(coro, loop).result()

        async def next_piece() -> bytes | None:
            try:
                return await anext(source)
            except StopAsyncIteration:
                return None

        def pieces() -> Iterator[bytes]:
            while (piece := on_loop(next_piece())) is not None:
                if job.stop.is_set():
                    raise _Stopped
                yield piece

        embedder = self.embedder if self.index.vectors else None
        usage = 0
        seq = 0
        batch: list[str] = []

        def flush() -> None:
            nonlocal usage, seq
            if not batch:
                return
            if job.stop.is_set():
                raise _Stopped
            vectors: Any = [None] * len(batch)
            if isinstance(embedder, LocalEmbedder):
                vectors = embedder.encode(batch)
            elif embedder is not None:
                vectors = on_loop(embedder.embed(batch))
            chunks = [
                Chunk(seq + i, t, v) for i, (t, v) in enumerate(zip(batch, vectors, strict=True))
            ]
            model = embedder.name if embedder is not None else None
            on_loop(self.index.add(job.vector_store_id, job.file_id, job.generation, chunks, model))
            usage += sum(len(t.encode()) for t in batch)
            if embedder is not None:
                usage += int(np.asarray(vectors).nbytes)
            seq += len(batch)
            batch.clear()

        for text in chunk_texts(segments(filename, pieces()), job.strategy):
            batch.append(text)
            if len(batch) >= BATCH:
                flush()
        flush()
        return usage

    async def _finish(
        self, job: Job, status: str, usage: int, error: dict[str, str] | None
    ) -> None:
        t = tables.vector_store_files
        dead = False  # this generation will never be searched: its chunks can go
        async with self.store.db.write() as conn:
            row = (
                await conn.execute(
                    select(t.c.body, t.c.generation, t.c.status, t.c.lease_owner)
                    .where(t.c.vector_store_id == job.vector_store_id, t.c.id == job.file_id)
                    .with_for_update()
                )
            ).one_or_none()
            if row is None or row.generation != job.generation or row.status == "cancelled":
                dead = True
            elif row.status == "in_progress" and row.lease_owner == self.owner:
                obj = orjson.loads(row.body)
                obj.update(status=status, usage_bytes=usage, last_error=error)
                await self.store.vector_store_files.save(
                    conn, job.project, obj, extra={"lease_owner": None, "lease_expires_at": None}
                )
                dead = status != "completed"
            # else another worker took the job over: its chunks are its business.
        if dead:
            await self.index.delete_generation(job.generation)
