"""The shared services of one server process, built at start-up and closed in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from assistantd.config import Settings
from assistantd.providers.router import Router
from assistantd.runs.executor import RunExecutor
from assistantd.runs.tools.base import ToolBox
from assistantd.runs.worker import Worker
from assistantd.services import files
from assistantd.storage import migrate
from assistantd.storage.blobs import LocalBlobStore
from assistantd.storage.db import Database
from assistantd.storage.keys import DEFAULT_PROJECT
from assistantd.storage.store import Store
from assistantd.streaming.base import EventBus
from assistantd.streaming.memory import MemoryEventBus

log = logging.getLogger("assistantd")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.resolved_database_url())
        self.store = Store(self.db)
        self.blobs = LocalBlobStore(settings.data_dir / "blobs")
        self.router = Router(settings)
        self.bus: EventBus = MemoryEventBus()
        self.tools = ToolBox()
        self.executor = RunExecutor(self.store, self.router, settings, self.bus, self.tools)
        self.worker = Worker(self.store, settings, self.executor, self.bus)
        self.default_project_id: str | None = None
        self._maintenance: asyncio.Task[None] | None = None

    async def start(self, *, run_worker: bool = True) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate.upgrade(self.db)
        self.default_project_id = await self.store.keys.ensure_project(DEFAULT_PROJECT)
        log.info("%s", self.router.describe())
        if run_worker:
            await self.worker.start()
            self._maintenance = asyncio.create_task(self._maintain(), name="assistantd-maintenance")

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
            except Exception:
                log.exception("maintenance failed")
            await asyncio.sleep(60)

    async def close(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self.worker.stop()
        await self.router.close()
        await self.bus.close()
        await self.db.dispose()
