"""The SQLite page cache is a setting (``ASSISTANTD_SQLITE_CACHE_KIB``) that every pooled
connection gets, including the ones the pool opens past its size under load, and that the
server's runtime passes down; a value SQLite would misread is refused before start-up."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from assistantd.config import Settings
from assistantd.runtime import Runtime
from assistantd.storage.db import DEFAULT_SQLITE_CACHE_KIB, Database


async def _cache_sizes(db: Database, connections: int) -> list[int]:
    """``PRAGMA cache_size`` on that many connections held open at once."""
    async with AsyncExitStack() as stack:
        conns = await asyncio.gather(
            *(stack.enter_async_context(db.read()) for _ in range(connections))
        )
        return [(await conn.execute(text("PRAGMA cache_size"))).scalar_one() for conn in conns]


async def test_every_pooled_connection_gets_the_configured_cache(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", sqlite_cache_kib=300)
    try:
        # 12 at once: past the pool's 5 kept connections, into its overflow.
        assert await _cache_sizes(db, 12) == [-300] * 12
    finally:
        await db.dispose()


async def test_the_default_is_stated_in_kib(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    try:
        assert await _cache_sizes(db, 1) == [-DEFAULT_SQLITE_CACHE_KIB]
    finally:
        await db.dispose()


async def test_the_server_runtime_uses_the_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, sqlite_cache_kib=123, embeddings="none")
    runtime = Runtime(settings)
    try:
        assert await _cache_sizes(runtime.db, 2) == [-123, -123]
    finally:
        await runtime.db.dispose()


@pytest.mark.parametrize("value", [0, 15, -2000])
def test_a_cache_too_small_to_mean_anything_is_refused(value: int) -> None:
    with pytest.raises(ValidationError, match="sqlite_cache_kib"):
        Settings(sqlite_cache_kib=value)
