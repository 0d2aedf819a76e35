"""What the database says about searchable chunks: the completed files of a store (as index
generations), their names, and the stores' activity. Shared by the search endpoint and the
``file_search`` tool."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistantd import clock
from assistantd.retrieval.search import matches
from assistantd.storage import tables
from assistantd.storage.objects import JSONObject
from assistantd.storage.store import Store

DAY = 86_400
# Activity is recorded at most this often per store: searches should not all be writes.
TOUCH_EVERY_SECONDS = 60


def expiry(expires_after: dict[str, Any] | None, last_active_at: int) -> int | None:
    return last_active_at + int(expires_after["days"]) * DAY if expires_after else None


async def searchable(
    conn: AsyncConnection, vs_id: str, filters: dict[str, Any] | None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """generation -> (file id, attributes) of the store's completed files that pass ``filters``."""
    t = tables.vector_store_files
    rows = (
        await conn.execute(
            select(t.c.generation, t.c.id, t.c.body).where(
                t.c.vector_store_id == vs_id, t.c.status == "completed"
            )
        )
    ).all()
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for row in rows:
        attributes = orjson.loads(row.body).get("attributes") or {}
        if matches(filters, attributes):
            out[row.generation] = (row.id, attributes)
    return out


async def filenames(conn: AsyncConnection, project: str, file_ids: Iterable[str]) -> dict[str, str]:
    f = tables.files
    wanted = list(set(file_ids))
    if not wanted:
        return {}
    rows = (
        await conn.execute(
            select(f.c.id, f.c.body).where(f.c.id.in_(wanted), f.c.project_id == project)
        )
    ).all()
    return {r.id: orjson.loads(r.body)["filename"] for r in rows}


async def touch(store: Store, vs_ids: Sequence[str]) -> None:
    """Record activity: ``last_active_at`` moves, and with it ``expires_at``."""
    now = clock.now()
    t = tables.vector_stores
    async with store.db.read() as conn:
        rows = (
            await conn.execute(
                select(t.c.id, t.c.body, t.c.last_active_at, t.c.expires_at).where(
                    t.c.id.in_(list(vs_ids)), t.c.last_active_at < now - TOUCH_EVERY_SECONDS
                )
            )
        ).all()
    stale = [r for r in rows if r.expires_at is None or r.expires_at > now]
    if not stale:
        return
    async with store.db.write() as conn:
        for row in stale:
            after = orjson.loads(row.body).get("expires_after")
            await conn.execute(
                update(t)
                .where(t.c.id == row.id)
                .values(last_active_at=now, expires_at=expiry(after, now))
            )


def file_search_ids(holder: JSONObject) -> list[str]:
    resources = holder.get("tool_resources") or {}
    return list((resources.get("file_search") or {}).get("vector_store_ids") or [])


async def pending_files(store: Store, vs_ids: Sequence[str]) -> int:
    t = tables.vector_store_files
    async with store.db.read() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count()).where(
                        t.c.vector_store_id.in_(list(vs_ids)), t.c.status == "in_progress"
                    )
                )
            ).scalar_one()
        )
