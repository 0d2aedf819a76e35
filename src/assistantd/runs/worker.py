"""The embedded worker: moves runs that no request is waiting on to their next state.

Today it resolves cancellations of runs that no executor holds and expires runs whose
``expires_at`` has passed (a ``requires_action`` run nobody answered, a queued run nobody took).
The executor that claims queued runs plugs in here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import or_, select

from assistantd import clock
from assistantd.config import Settings
from assistantd.runs import state
from assistantd.storage import tables
from assistantd.storage.objects import JSONObject, PageQuery
from assistantd.storage.store import Store

log = logging.getLogger("assistantd.worker")

_ALL = PageQuery(limit=100, order="asc")


class Worker:
    def __init__(self, store: Store, settings: Settings, *, interval: float = 1.0) -> None:
        self.store = store
        self.settings = settings
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="assistantd-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def notify(self) -> None:
        """Something changed (a cancel, a new run): look now rather than at the next tick."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # a failed sweep must not kill the worker; the next one retries
                log.exception("worker sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def sweep(self) -> None:
        now = clock.now()
        t = tables.runs
        unheld = or_(t.c.lease_owner.is_(None), t.c.lease_expires_at < now)
        stmt = select(t.c.project_id, t.c.id).where(
            t.c.status.in_(tables.ACTIVE_RUN_STATUSES),
            or_(t.c.expires_at <= now, (t.c.status == "cancelling") & unheld),
        )
        async with self.store.db.read() as conn:
            due = (await conn.execute(stmt.limit(500))).all()
        for project_id, run_id in due:
            await self._settle(project_id, run_id)

    async def _settle(self, project: str, run_id: str) -> None:
        now = clock.now()
        async with self.store.db.write() as conn:
            run = await self.store.runs.get(conn, project, run_id, for_update=True)
            if run["status"] not in state.ACTIVE:
                return
            if run["expires_at"] is not None and run["expires_at"] <= now:
                target, step_status, stamp, reason = (
                    "expired",
                    "expired",
                    "expired_at",
                    "run_expired",
                )
            elif run["status"] == "cancelling":
                target, step_status, stamp = "cancelled", "cancelled", "cancelled_at"
                reason = "run_cancelled"
            else:
                return
            page = await self.store.steps.page(conn, project, _ALL, run_id=run_id)
            for step in page.objects():
                if step["status"] == "in_progress":
                    step["status"] = step_status
                    step[stamp] = now
                    await self.store.steps.save(conn, project, step)
            messages = await self.store.messages.page(
                conn, project, _ALL, thread_id=run["thread_id"], run_id=run_id
            )
            for message in messages.objects():
                if message["status"] == "in_progress":
                    _mark_incomplete(message, reason, now)
                    await self.store.messages.save(conn, project, message)
            run = state.transition(run, target, now)
            await self.store.runs.save(conn, project, run)


def _mark_incomplete(message: JSONObject, reason: str, now: int) -> None:
    message["status"] = "incomplete"
    message["incomplete_at"] = now
    message["incomplete_details"] = {"reason": reason}
