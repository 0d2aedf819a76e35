"""The storage contract, run over SQLite and a real PostgreSQL: migrations, keyset pages."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from assistantd import ids
from assistantd.storage import migrate
from assistantd.storage.db import Database
from assistantd.storage.objects import PageQuery
from assistantd.storage.store import Store
from assistantd.storage.tables import metadata, projects
from tests.servers import BACKENDS, postgres_url


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'c.db'}"
    else:
        yield postgres_url()


@pytest.fixture(scope="module")
def store(db_url: str) -> Iterator[Store]:
    loop = asyncio.new_event_loop()
    db = Database(db_url)
    loop.run_until_complete(migrate.upgrade(db))
    s = Store(db)
    s._loop = loop  # type: ignore[attr-defined]
    yield s
    loop.run_until_complete(db.dispose())
    loop.close()


def run(store: Store, coro: object) -> object:
    return store._loop.run_until_complete(coro)  # type: ignore[attr-defined,arg-type]


def test_migrations_match_tables(store: Store) -> None:
    def diff(conn: Connection) -> list[object]:
        return compare_metadata(MigrationContext.configure(conn), metadata)

    async def go() -> list[object]:
        async with store.db.read() as conn:
            return await conn.run_sync(diff)

    assert run(store, go()) == []
    assert run(store, migrate.current_revision(store.db)) == migrate.head_revision()


def _seed(store: Store, n: int) -> tuple[str, list[str]]:
    thread_id = ids.new_id(ids.THREAD)
    objs = [
        {
            "id": ids.new_id(ids.MESSAGE),
            "created_at": 1_700_000_000,  # all tied: order must come from the id
            "thread_id": thread_id,
            "run_id": None,
        }
        for _ in range(n)
    ]

    async def go() -> None:
        async with store.db.write() as conn:
            thread = {"id": thread_id, "object": "thread", "created_at": 1_700_000_000}
            await store.threads.insert(conn, "proj", thread)
            await store.messages.insert_many(conn, "proj", objs)

    run(store, go())
    return thread_id, [o["id"] for o in objs]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(0, 30),
    limit=st.integers(1, 12),
    order=st.sampled_from(["asc", "desc"]),
    after=st.one_of(st.none(), st.integers(0, 29)),
    before=st.one_of(st.none(), st.integers(0, 29)),
)
def test_keyset_page_matches_a_model(
    store: Store, n: int, limit: int, order: str, after: int | None, before: int | None
) -> None:
    thread_id, made = _seed(store, n)
    seq = made if order == "asc" else list(reversed(made))
    a = seq[after] if after is not None and after < n else None
    b = seq[before] if before is not None and before < n else None
    # the model: filter by position in the requested order, then take the page
    pos = {x: i for i, x in enumerate(seq)}
    window = [x for x in seq if (a is None or pos[x] > pos[a]) and (b is None or pos[x] < pos[b])]
    if b is not None and a is None:
        expected, more = window[-limit:], len(window) > limit
    else:
        expected, more = window[:limit], len(window) > limit

    async def go() -> object:
        async with store.db.read() as conn:
            return await store.messages.page(
                conn,
                "proj",
                PageQuery(limit=limit, order=order, after=a, before=b),  # type: ignore[arg-type]
                thread_id=thread_id,
            )

    page = run(store, go())
    assert page.ids == expected  # type: ignore[attr-defined]
    assert page.has_more is more  # type: ignore[attr-defined]


def test_other_project_sees_nothing(store: Store) -> None:
    thread_id, _made = _seed(store, 3)

    async def go() -> object:
        async with store.db.read() as conn:
            return await store.messages.page(conn, "other", PageQuery(), thread_id=thread_id)

    assert run(store, go()).ids == []  # type: ignore[attr-defined]


def test_processes_starting_together_agree_on_one_project(db_url: str) -> None:
    """Every process ensures the default project at start-up; in the distributed mode several
    start at once on one database. Each must get the same id, none an error."""

    async def go() -> tuple[list[str], int]:
        name = f"race-{ids.new_id('p')}"
        dbs = [Database(db_url) for _ in range(6)]
        try:
            found = await asyncio.gather(*(Store(db).keys.ensure_project(name) for db in dbs))
            async with dbs[0].read() as conn:
                count = (
                    await conn.execute(
                        select(func.count()).select_from(projects).where(projects.c.name == name)
                    )
                ).scalar_one()
            return list(found), int(count)
        finally:
            for db in dbs:
                await db.dispose()

    loop = asyncio.new_event_loop()
    try:
        found, count = loop.run_until_complete(go())
    finally:
        loop.close()
    assert len(set(found)) == 1
    assert count == 1
