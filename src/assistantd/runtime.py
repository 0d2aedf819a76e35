"""The shared services of one server process, built at start-up and closed in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis

from assistantd.config import Settings
from assistantd.errors import ConfigError
from assistantd.providers import tokens
from assistantd.providers.router import Router
from assistantd.queue.base import Dispatcher, LocalDispatcher
from assistantd.queue.taskiq import TaskiqDispatcher
from assistantd.retrieval import embedders
from assistantd.retrieval import index as retrieval_index
from assistantd.retrieval.ingest import Ingestor
from assistantd.retrieval.search import Searcher
from assistantd.runs.executor import RunExecutor
from assistantd.runs.tools.base import ToolBox
from assistantd.runs.tools.code_interpreter import CodeInterpreterTool
from assistantd.runs.tools.file_search import FileSearchTool
from assistantd.runs.worker import Worker
from assistantd.sandbox.base import Limits
from assistantd.sandbox.bwrap import BwrapSandbox, default_env
from assistantd.services import files
from assistantd.storage import migrate
from assistantd.storage.blobs import LocalBlobStore
from assistantd.storage.db import Database, log_failure
from assistantd.storage.keys import DEFAULT_PROJECT
from assistantd.storage.store import Store
from assistantd.streaming.base import EventBus
from assistantd.streaming.memory import MemoryEventBus
from assistantd.streaming.redis import RedisEventBus

log = logging.getLogger("assistantd")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(
            settings.resolved_database_url(), sqlite_cache_kib=settings.sqlite_cache_kib
        )
        self.store = Store(self.db)
        self.blobs = LocalBlobStore(settings.data_dir / "blobs")
        self.router = Router(settings)
        self.redis: Redis | None = None
        """The Redis client of the distributed mode (``None`` when embedded)."""
        self.bus: EventBus
        self.dispatch: Dispatcher
        if settings.redis_url:
            if self.db.is_sqlite:
                raise ConfigError(
                    "ASSISTANTD_REDIS_URL (the distributed mode) needs a PostgreSQL "
                    "ASSISTANTD_DATABASE_URL: SQLite cannot be shared between machines."
                )
            self.redis = Redis.from_url(settings.redis_url)
            self.bus = RedisEventBus(self.redis)
            self.dispatch = TaskiqDispatcher(
                settings.redis_url,
                self.redis,
                run_concurrency=settings.run_concurrency,
                ingest_concurrency=settings.ingest_concurrency,
                redispatch_seconds=settings.run_lease_seconds,
            )
        else:
            self.bus = MemoryEventBus()
            self.dispatch = LocalDispatcher()
        self.index = retrieval_index.build(self.db)
        self.embedder = embedders.build(settings)
        self.searcher = Searcher(self.index, self.embedder)
        self.ingestor = Ingestor(
            self.store,
            self.blobs,
            self.index,
            self.embedder,
            concurrency=settings.ingest_concurrency,
            dispatch=self.dispatch,
        )
        self.tools = ToolBox([FileSearchTool(self.store, self.searcher)])
        self.executor = RunExecutor(self.store, self.router, settings, self.bus, self.tools)
        self.worker = Worker(self.store, settings, self.executor, self.bus, dispatch=self.dispatch)
        if isinstance(self.dispatch, LocalDispatcher):
            self.dispatch.bind(self.worker.notify, self.ingestor.notify)
        self.default_project_id: str | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self.sandbox: BwrapSandbox | None = None

    async def start(self, *, run_worker: bool = True) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate.upgrade(self.db)
        await self.index.start()
        self.default_project_id = await self.store.keys.ensure_project(DEFAULT_PROJECT)
        log.info("%s", self.router.describe())
        await self._start_sandbox()
        if run_worker:
            # The tokenizer tables take seconds to load: load them now, not in the first run.
            await asyncio.to_thread(tokens.count, "warm up")
            await self.worker.start()
            await self.ingestor.start()
            self._maintenance = asyncio.create_task(self._maintain(), name="assistantd-maintenance")
            await self.dispatch.start(
                runs=self.worker.take, ingest=self.ingestor.drain, wake=self.worker.notify
            )
        else:
            if self.dispatch.queue_mode:
                # An API-only process of the distributed mode still settles cancelled and
                # expired runs nobody holds, and dispatches orphans: whoever is alive does.
                await self.worker.start(execute=False)
            await self.dispatch.start(runs=None, ingest=None, wake=None)

    async def _start_sandbox(self) -> None:
        """Offer code_interpreter only where the operating system can isolate it."""
        env = self.settings.sandbox_python_env or default_env()
        limits = Limits(wall_seconds=self.settings.code_interpreter_timeout_seconds)
        sandbox = BwrapSandbox(env, limits=limits)
        reason = await asyncio.to_thread(sandbox.available)
        if reason is not None:
            self.tools.unavailable["code_interpreter"] = reason
            log.warning("code_interpreter is disabled: %s", reason)
            await sandbox.close()
            return
        self.sandbox = sandbox
        self.tools.register(
            CodeInterpreterTool(
                sandbox, self.store, self.blobs, self.tools, pin=self.dispatch.pin_thread
            )
        )

    def models(self) -> list[dict[str, object]]:
        """The models this server routes to, as ``GET /v1/models`` lists them."""
        names = self.router.model_ids()
        return [
            {"id": name, "object": "model", "created": 0, "owned_by": "assistantd"}
            for name in names
        ]

    async def _maintain(self) -> None:
        """Housekeeping that no request waits for: expired files go, every minute."""
        while True:
            try:
                await files.purge_expired(self.store, self.blobs)
            except Exception as exc:
                log_failure(log, "maintenance failed", exc)
            await asyncio.sleep(60)

    async def close(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self.dispatch.stop_consuming()
        await self.worker.stop()
        await self.ingestor.stop()
        await self.dispatch.close()
        if self.sandbox is not None:
            await self.sandbox.close()
        await self.router.close()
        await self.bus.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.index.close()
        closer = getattr(self.embedder, "close", None)
        if closer is not None:
            await closer()
        await self.db.dispose()
