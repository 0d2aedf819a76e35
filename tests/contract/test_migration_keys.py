"""Migration 0004 re-keys tables that hold data, on both databases, and keeps every rule.

A database at 0003 with rows in every re-keyed table is upgraded: the rows are all there and
list in order through their new keys, ids stay unique across scopes, a thread still takes one
active run only, and the schema equals the table definitions. Down to 0003 and up again keeps
the rows too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from assistantd import ids
from assistantd.storage import migrate, tables
from assistantd.storage.db import Database
from assistantd.storage.objects import PageQuery
from assistantd.storage.store import Store
from tests.servers import BACKENDS, postgres_url

P = "proj_migration"
REKEYED = (
    tables.assistants,
    tables.messages,
    tables.runs,
    tables.run_steps,
    tables.files,
    tables.vector_stores,
)


def _row(prefix: str, **columns: Any) -> dict[str, Any]:
    object_id = ids.new_id(prefix)
    body = f'{{"id": "{object_id}"}}'
    return {"id": object_id, "project_id": P, "created_at": 0, "body": body, **columns}


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'm.db'}"
    else:
        yield postgres_url()


async def _fill(db: Database) -> dict[str, list[dict[str, Any]]]:
    threads = [_row(ids.THREAD), _row(ids.THREAD)]
    t1, t2 = threads[0]["id"], threads[1]["id"]
    run = {"assistant_id": "asst_x", "status": "completed"}
    runs = [_row(ids.RUN, thread_id=t, **run) for t in (t1, t2, t1, t2)]
    runs.append(_row(ids.RUN, thread_id=t1, assistant_id="asst_x", status="in_progress"))
    stores = [_row(ids.VECTOR_STORE, last_active_at=0) for _ in range(3)]
    batch = _row(ids.FILE_BATCH, vector_store_id=stores[0]["id"])
    rows = {
        "threads": threads,
        "assistants": [_row(ids.ASSISTANT) for _ in range(3)],
        "runs": runs,
        "messages": [_row(ids.MESSAGE, thread_id=t, run_id=None) for t in (t1, t2, t1)],
        "run_steps": [_row(ids.STEP, thread_id=t1, run_id=runs[0]["id"]) for _ in range(3)],
        "files": [_row(ids.FILE, purpose="assistants", blob_key="k") for _ in range(3)],
        "vector_stores": stores,
        "vector_store_file_batches": [batch],
        "vector_store_files": [
            _row(
                ids.FILE,
                vector_store_id=stores[0]["id"],
                batch_id=batch["id"] if i % 2 else None,
                status="completed",
                generation="g",
            )
            for i in range(4)
        ],
    }
    async with db.write() as conn:
        for name, batch_rows in rows.items():
            await conn.execute(insert(tables.metadata.tables[name]), batch_rows)
    return rows


async def _ids(db: Database, table: Table) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(select(table.c.id).order_by(table.c.id))).scalars())


async def _upgrade_keeps_everything(db: Database) -> None:
    await migrate.upgrade(db, "0003")
    rows = await _fill(db)
    await migrate.upgrade(db)
    for name, written in rows.items():
        assert await _ids(db, tables.metadata.tables[name]) == sorted(r["id"] for r in written)

    def diff(conn: Connection) -> list[object]:
        return compare_metadata(MigrationContext.configure(conn), tables.metadata)

    async with db.read() as conn:
        assert await conn.run_sync(diff) == []

    # Lists go through the new keys and still find exactly their rows, in id order.
    store = Store(db)
    t1 = rows["threads"][0]["id"]
    async with db.read() as conn:
        page = await store.runs.page(conn, P, PageQuery(order="asc"), thread_id=t1)
        assert page.ids == sorted(r["id"] for r in rows["runs"] if r["thread_id"] == t1)
        page = await store.vector_store_files.page(
            conn,
            P,
            PageQuery(order="asc"),
            vector_store_id=rows["vector_stores"][0]["id"],
            batch_id=rows["vector_store_file_batches"][0]["id"],
        )
        assert page.ids == sorted(
            r["id"] for r in rows["vector_store_files"] if r["batch_id"] is not None
        )
        page = await store.assistants.page(conn, P, PageQuery(order="desc"))
        assert page.ids == sorted((r["id"] for r in rows["assistants"]), reverse=True)

    # An id stays unique across scopes: the same run id on another thread is refused.
    for table in REKEYED:
        existing = rows[table.name][0]
        scope = {"thread_id": "thread_other", "run_id": "run_other", "project_id": "proj_other"}
        copy = existing | {k: v for k, v in scope.items() if k in existing}
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await conn.execute(insert(table), [copy])

    # One active run per thread is still a database rule.
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            second = _row(ids.RUN, thread_id=t1, assistant_id="asst_x", status="queued")
            await conn.execute(insert(tables.runs), [second])

    # Down and up again: the rows survive both ways.
    await migrate.downgrade(db, "0003")
    for table in REKEYED:
        assert await _ids(db, table) == sorted(r["id"] for r in rows[table.name])
    await migrate.upgrade(db)
    async with db.read() as conn:
        assert await conn.run_sync(diff) == []
        counts = {
            t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
            for t in REKEYED
        }
    assert counts == {t.name: len(rows[t.name]) for t in REKEYED}


async def test_upgrade_from_0003_with_data(url: str) -> None:
    db = Database(url)
    try:
        await _upgrade_keeps_everything(db)
    finally:
        await db.dispose()
