"""The worker: claims runs, drives them with the executor, and enforces cancel and expiry.

A run is claimed by writing this worker's id and a lease deadline on its row; a heartbeat
extends the lease while the run executes. A run whose lease ran out (its worker died) is
claimed again by whichever worker looks next and resumed from its last finished step. Runs
that nobody holds (queued, waiting for tool outputs, or orphaned while cancelling) are moved
to ``cancelled`` or ``expired`` here.

How a worker finds runs depends on the dispatcher (``queue/``). Embedded, the worker claims
claimable runs from the database itself, woken by the API in the same process. Distributed,
runs arrive as jobs (``take``) and the sweep dispatches again any run that nobody holds (its
worker died, or its job was lost); an API-only process runs the sweep too (``janitor``), so
cancels and expiry of unheld runs happen whichever processes are alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

import orjson
from sqlalchemy import or_, select, update

from assistantd import clock
from assistantd.config import Settings
from assistantd.queue.base import Dispatcher, LocalDispatcher
from assistantd.runs import state
from assistantd.runs.events import RunEvents
from assistantd.runs.executor import RunExecutor
from assistantd.runs.records import usage_of
from assistantd.storage import tables
from assistantd.storage.db import CancelGuard, connection_lost, guard_current_task, log_failure
from assistantd.storage.objects import JSONObject, PageQuery
from assistantd.storage.store import Store

log = logging.getLogger("assistantd.worker")

_ALL = PageQuery(limit=100, order="asc")


class Worker:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        executor: RunExecutor,
        events: RunEvents,
        *,
        dispatch: Dispatcher | None = None,
        interval: float = 1.0,
    ) -> None:
        self.store = store
        self.settings = settings
        self.executor = executor
        self.events = events
        self.dispatch: Dispatcher = dispatch or LocalDispatcher()
        self.interval = interval
        self.executes = True
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._guards: dict[str, CancelGuard] = {}
        self._stop_reason: dict[str, str] = {}
        self._last_heartbeat = 0.0

    async def start(self, *, execute: bool = True) -> None:
        """Start the sweep; ``execute=False`` makes this process a janitor only (distributed
        API processes): it settles unheld runs and dispatches orphans, but executes nothing."""
        self.executes = execute
        self._loop_task = asyncio.create_task(self._loop(), name="assistantd-worker")

    async def stop(self) -> None:
        """Stop claiming, hand back the runs in flight (another worker resumes them)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for run_id in list(self._runs):
            self._stop_reason[run_id] = "shutdown"
            self._cancel(run_id)
        handed_back = list(self._runs)
        if self._runs:
            await asyncio.gather(*self._runs.values(), return_exceptions=True)
        if self.dispatch.queue_mode:
            # Let another worker resume them now, rather than when the sweep finds them.
            for run_id in handed_back:
                with contextlib.suppress(Exception):
                    await self.dispatch.run_ready(run_id)

    def _cancel(self, run_id: str) -> None:
        guard = self._guards.get(run_id)
        if guard is not None:
            guard.cancel()
        elif run_id in self._runs:
            self._runs[run_id].cancel()

    def notify(self) -> None:
        """Something changed (a new run, a cancel, tool outputs): look now."""
        self._wake.set()

    @property
    def held(self) -> int:
        return len(self._runs)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.sweep()
            except Exception as exc:  # a failed sweep must not kill the worker; the next retries
                log_failure(log, "worker sweep failed", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def sweep(self) -> None:
        await self._interrupt_held()
        await self._settle_unheld()
        if self.dispatch.queue_mode:
            await self._redispatch_orphans()
        elif self.executes:
            await self._claim()
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._last_heartbeat >= self.settings.run_lease_seconds / 3:
            self._last_heartbeat = loop_now
            await self._heartbeat()

    # -- claiming ------------------------------------------------------------------------------

    async def _claim(self, run_id: str | None = None) -> None:
        room = self.settings.run_concurrency - len(self._runs)
        if room <= 0 and run_id is None:
            return
        now = clock.now()
        t = tables.runs
        stmt = (
            select(t.c.project_id, t.c.id)
            .where(
                t.c.status.in_(("queued", "in_progress")),
                or_(t.c.lease_owner.is_(None), t.c.lease_expires_at < now),
            )
            .order_by(t.c.id)
            .limit(max(room, 1))
        )
        if run_id is not None:
            stmt = stmt.where(t.c.id == run_id)
        if not self.store.db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        async with self.store.db.write() as conn:
            rows = [r for r in (await conn.execute(stmt)).all() if r.id not in self._runs]
            if not rows:
                return
            await conn.execute(
                update(t)
                .where(t.c.id.in_([r.id for r in rows]))
                .values(
                    lease_owner=self.owner, lease_expires_at=now + self.settings.run_lease_seconds
                )
            )
        for project_id, run_id in rows:
            self._runs[run_id] = asyncio.create_task(
                self._drive(project_id, run_id), name=f"run-{run_id}"
            )

    async def take(self, run_id: str) -> None:
        """Execute the run a job named, if it can be claimed; return when done with it."""
        if not self.executes or run_id in self._runs:
            return
        await self._claim(run_id)
        task = self._runs.get(run_id)
        if task is not None:
            # wait() rather than await: a cancelled job (consumer shutting down) must not
            # cancel the run, which stop() hands back in order.
            await asyncio.wait({task})

    async def _redispatch_orphans(self) -> None:
        """Dispatch again the runs that should be executing but that no live worker holds."""
        now = clock.now()
        t = tables.runs
        stmt = (
            select(t.c.id)
            .where(
                t.c.status.in_(("queued", "in_progress")),
                or_(t.c.lease_owner.is_(None), t.c.lease_expires_at < now),
            )
            .order_by(t.c.id)
            .limit(200)
        )
        async with self.store.db.read() as conn:
            orphans = [r.id for r in (await conn.execute(stmt)).all()]
        for run_id in orphans:
            if run_id not in self._runs and await self.dispatch.redispatch_run(run_id):
                log.info("run %s dispatched again (no live worker held it)", run_id)

    async def _drive(self, project: str, run_id: str) -> None:
        self._guards[run_id] = guard_current_task()
        try:
            await self.executor.execute(project, run_id, owner=self.owner)
        except asyncio.CancelledError:
            reason = self._stop_reason.pop(run_id, "shutdown")
            if reason in ("cancel", "expire"):
                await asyncio.shield(self._settle(project, run_id))
        except Exception as exc:
            if connection_lost(exc):
                # Not the run's fault: released below, it is claimed again (here or by another
                # worker) and resumes from its last finished step once the database answers.
                log.warning(
                    "run %s lost the database (%s); it will resume", run_id, exc.__cause__ or exc
                )
            else:
                log.exception("run %s crashed", run_id)
                await self._fail_crashed(project, run_id)
        finally:
            self._runs.pop(run_id, None)
            self._guards.pop(run_id, None)
            self._stop_reason.pop(run_id, None)
            await asyncio.shield(self._release(run_id))
            # A freed slot, or a run that went back to the queue: look again.
            if not self.dispatch.queue_mode:
                self.notify()

    async def _release(self, run_id: str) -> None:
        t = tables.runs
        try:
            async with self.store.db.write() as conn:
                await conn.execute(
                    update(t)
                    .where(t.c.id == run_id, t.c.lease_owner == self.owner)
                    .values(lease_owner=None, lease_expires_at=None)
                )
        except Exception as exc:
            log_failure(log, f"could not release run {run_id}", exc)

    async def _heartbeat(self) -> None:
        if not self._runs:
            return
        t = tables.runs
        async with self.store.db.write() as conn:
            await conn.execute(
                update(t)
                .where(t.c.id.in_(list(self._runs)), t.c.lease_owner == self.owner)
                .values(lease_expires_at=clock.now() + self.settings.run_lease_seconds)
            )

    # -- cancel and expiry ---------------------------------------------------------------------

    async def _interrupt_held(self) -> None:
        """Stop the executors of held runs that were cancelled or ran out of time."""
        if not self._runs:
            return
        now = clock.now()
        t = tables.runs
        stmt = select(t.c.id, t.c.status, t.c.expires_at, t.c.lease_owner).where(
            t.c.id.in_(list(self._runs))
        )
        async with self.store.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        for run_id, status, expires_at, lease_owner in rows:
            task = self._runs.get(run_id)
            if task is None or run_id in self._stop_reason:
                continue
            if lease_owner is not None and lease_owner != self.owner:
                # This process stalled past its lease and another worker took the run over:
                # stop at once (its writes are fenced off anyway) and leave the run alone.
                log.warning("lost the lease on run %s to %s; stopping", run_id, lease_owner)
                self._stop_reason[run_id] = "lost"
                self._cancel(run_id)
            elif expires_at is not None and expires_at <= now and status in state.ACTIVE:
                self._stop_reason[run_id] = "expire"
                self._cancel(run_id)
            elif status == "cancelling":
                self._stop_reason[run_id] = "cancel"
                self._cancel(run_id)

    async def _settle_unheld(self) -> None:
        now = clock.now()
        t = tables.runs
        unheld = or_(t.c.lease_owner.is_(None), t.c.lease_expires_at < now)
        stmt = select(t.c.project_id, t.c.id).where(
            t.c.status.in_(tables.ACTIVE_RUN_STATUSES),
            unheld,
            or_(t.c.expires_at <= now, t.c.status == "cancelling"),
        )
        async with self.store.db.read() as conn:
            due = (await conn.execute(stmt.limit(500))).all()
        for project_id, run_id in due:
            if run_id not in self._runs:
                await self._settle(project_id, run_id)

    async def _settle(self, project: str, run_id: str) -> None:
        """Move a cancelling or overdue run to its end, with its steps and message."""
        now = clock.now()
        published: list[tuple[str, JSONObject]] = []
        async with self.store.db.write() as conn:
            run = await self.store.runs.find_raw(conn, project, run_id, for_update=True)
            if run is None:
                return
            current: JSONObject = orjson.loads(run)
            if current["status"] not in state.ACTIVE:
                return
            if current["expires_at"] is not None and current["expires_at"] <= now:
                target, step_status, stamp, reason = (
                    "expired",
                    "expired",
                    "expired_at",
                    "run_expired",
                )
            elif current["status"] == "cancelling":
                target, step_status, stamp, reason = (
                    "cancelled",
                    "cancelled",
                    "cancelled_at",
                    "run_cancelled",
                )
            else:
                return
            messages = await self.store.messages.page(
                conn, project, _ALL, thread_id=current["thread_id"], run_id=run_id
            )
            for message in messages.objects():
                if message["status"] == "in_progress":
                    message.update(
                        status="incomplete",
                        incomplete_at=now,
                        incomplete_details={"reason": reason},
                    )
                    await self.store.messages.save(conn, project, message)
                    published.append(("thread.message.incomplete", message))
            steps = await self.store.steps.page(conn, project, _ALL, run_id=run_id)
            for step in steps.objects():
                if step["status"] == "in_progress":
                    step["status"] = step_status
                    step[stamp] = now
                    await self.store.steps.save(conn, project, step)
                    published.append((f"thread.run.step.{step_status}", step))
            totals = await self.store.runs.columns(
                conn, run_id, "prompt_tokens", "completion_tokens"
            )
            current = state.transition(current, target, now)
            current["usage"] = usage_of(totals["prompt_tokens"], totals["completion_tokens"])
            await self.store.runs.save(conn, project, current)
            published.append((f"thread.run.{target}", current))
        for name, data in published:
            await self.events.publish(run_id, name, data)
        self.executor.record_end(current)  # observability: runs_finished_total, log line

    async def _fail_crashed(self, project: str, run_id: str) -> None:
        """A bug in the executor must still end the run, never leave it stuck."""
        try:
            async with self.store.db.write() as conn:
                raw = await self.store.runs.find_raw(conn, project, run_id, for_update=True)
                if raw is None:
                    return
                run: JSONObject = orjson.loads(raw)
                if run["status"] not in ("in_progress", "queued"):
                    return
                run = state.transition(run, "failed", clock.now())
                run["last_error"] = {
                    "code": "server_error",
                    "message": "The server had an error while processing the run.",
                }
                await self.store.runs.save(conn, project, run)
            await self.events.publish(run_id, "thread.run.failed", run)
            self.executor.record_end(run)  # observability: runs_finished_total, log line
        except Exception:
            log.exception("could not fail run %s", run_id)
