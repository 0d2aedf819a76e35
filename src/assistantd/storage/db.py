"""The database handle: one async engine, read and write transactions.

SQLite allows one writer at a time. Rather than let concurrent writers collide and spin on
``SQLITE_BUSY``, every write transaction in this process takes one asyncio lock and opens with
``BEGIN IMMEDIATE`` (which also serialises against other processes, such as ``assistantd keys``
run beside a live server, through ``busy_timeout``). Readers never wait: WAL lets them read the
last committed state while a write is in flight. On PostgreSQL, writes are ordinary
transactions and row locks (``SELECT ... FOR UPDATE``) guard the few read-modify-write paths.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_IMMEDIATE = "assistantd_begin_immediate"

DEFAULT_SQLITE_CACHE_KIB = 1000
"""Page cache of each SQLite connection (see ``Settings.sqlite_cache_kib``)."""


class CancelGuard:
    """Defers cancelling a task while it is inside a write transaction.

    Run executors are stopped by cancelling their tasks. A cancellation that lands in the
    middle of a driver call can leave a connection mid-transaction (on SQLite, holding the
    write lock for everyone), so a task that registers a guard is only cancelled between
    transactions: ``cancel()`` during one takes effect as the transaction ends.
    """

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.depth = 0
        self.pending = False

    def cancel(self) -> None:
        if self.depth:
            self.pending = True
        else:
            self.task.cancel()

    def leave(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.pending:
            self.pending = False
            self.task.cancel()


class DatabaseUnavailable(Exception):
    """No connection to the database could be made."""


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or dropped the connection
    (a restart, a failover, a network cut) rather than that a statement was wrong."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """A background task's failure: one warning line when the database is out of reach (a
    restart; the task tries again), the traceback for anything else."""
    if connection_lost(exc):
        logger.warning("%s: the database is unreachable (%s)", what, exc.__cause__ or exc)
    else:
        logger.error("%s", what, exc_info=exc)


_guard: ContextVar[CancelGuard | None] = ContextVar("assistantd_cancel_guard", default=None)


def guard_current_task() -> CancelGuard:
    """Protect the running task's write transactions from its own cancellation."""
    task = asyncio.current_task()
    assert task is not None
    guard = CancelGuard(task)
    _guard.set(guard)
    return guard


class Database:
    def __init__(
        self, url: str, *, echo: bool = False, sqlite_cache_kib: int = DEFAULT_SQLITE_CACHE_KIB
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # No pool_pre_ping: with asyncpg it costs three round trips (BEGIN, a ping,
            # ROLLBACK) on every checkout, more than a list page's own query. A connection
            # that died (a database restart) fails the one statement that meets it; the
            # pool then drops every connection older than that and reconnects.
            kwargs.update(pool_size=10, max_overflow=20)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine, sqlite_cache_kib)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; ``DatabaseUnavailable`` when none can be had."""
        conn = self.engine.connect()
        try:
            await conn.start()
        except Exception as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {exc!r}") from exc
        try:
            yield conn
        finally:
            # As AsyncConnection.__aexit__ does: a cancelled task still returns its connection.
            await asyncio.shield(conn.close())

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._connection() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on any exception."""
        guard = _guard.get()
        if guard is None:
            async with self._transaction() as conn:
                yield conn
            return
        guard.depth += 1
        try:
            async with self._transaction() as conn:
                yield conn
        finally:
            guard.leave()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        if self._write_lock is None:
            async with self._connection() as conn, conn.begin():
                yield conn
            return
        async with self._write_lock, self._connection() as conn:
            conn = await conn.execution_options(**{_IMMEDIATE: True})
            async with conn.begin():
                yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


def sqlite_pragmas(cache_kib: int) -> list[str]:
    """How every SQLite connection is set up."""
    return [
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=30000",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA cache_size=-{int(cache_kib)}",  # negative: KiB, not pages
    ]


def _install_sqlite_hooks(engine: AsyncEngine, cache_kib: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to choose.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in sqlite_pragmas(cache_kib):
            cur.execute(pragma)
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
