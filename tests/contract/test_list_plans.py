"""Every list page reads its page through its scope's key, whatever else the table holds.

For each list endpoint, the rows of the listed scope are loaded first and many rows of other
scopes after them (so they are newer in id order), and then the reverse. The page statement
the service really runs is captured and explained with its real parameters:

- PostgreSQL (``EXPLAIN (ANALYZE, FORMAT JSON)``): the listed table is read by an index scan
  of the expected index that touches at most the page (no sort, no filter that throws rows
  away), with no statistics, after ``ANALYZE``, and as a custom and as a generic plan (what
  a prepared statement may switch to after five executions);
- SQLite (``EXPLAIN QUERY PLAN``): a ``SEARCH`` of the expected index on the scope, and no
  ``USE TEMP B-TREE FOR ORDER BY``, without and with ``ANALYZE``.

With the runs table keyed by ``id`` alone, PostgreSQL after ``ANALYZE`` answers the first
page of the older thread by walking that key backwards past every run of the newer thread.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import event, insert

from assistantd import ids
from assistantd.services import assistants, files, threads, vector_stores
from assistantd.services import runs as run_service
from assistantd.storage import migrate, tables
from assistantd.storage.db import Database
from assistantd.storage.objects import PageQuery
from assistantd.storage.store import Store
from tests.servers import BACKENDS, postgres_url

N = 2000  # rows per block: enough for PostgreSQL's statistics to favour a walk of the id key
LIMIT = 20
TOUCHED = LIMIT + 1  # rows a keyset page may read: the page and the one that says has_more


@dataclass
class Data:
    p: str  # the project the lists are read in
    q: str  # another project
    thread_a: str  # older
    thread_b: str  # newer
    run_1: str  # older, on thread A
    run_2: str  # newer, on thread A
    store_1: str
    store_2: str
    batch_1: str  # in store 1, older
    batch_2: str  # in store 1, newer


def _rows(n: int, prefix: str, **columns: Any) -> list[dict[str, Any]]:
    """``n`` rows with new (ascending) ids; the body is the wire object's smallest form."""
    out = []
    for _ in range(n):
        object_id = ids.new_id(prefix)
        body = orjson.dumps({"id": object_id, "created_at": 0}).decode()
        out.append({"id": object_id, "created_at": 0, "body": body, **columns})
    return out


async def _seed(db: Database) -> Data:
    """Blocks of rows in id order: each list's rows, then other scopes' rows after them."""
    p, q = ids.new_id(ids.PROJECT), ids.new_id(ids.PROJECT)
    threads_ = _rows(2, ids.THREAD, project_id=p)
    thread_a, thread_b = threads_[0]["id"], threads_[1]["id"]
    run = {"project_id": p, "assistant_id": "asst_x", "status": "completed"}
    runs_a = _rows(N, ids.RUN, thread_id=thread_a, **run)
    run_1, run_2 = runs_a[0]["id"], runs_a[1]["id"]
    stores_p = _rows(N, ids.VECTOR_STORE, project_id=p, last_active_at=0)
    store_1, store_2 = stores_p[-2]["id"], stores_p[-1]["id"]
    batches = _rows(2, ids.FILE_BATCH, project_id=p, vector_store_id=store_1)
    batch_1, batch_2 = batches[0]["id"], batches[1]["id"]
    message = {"project_id": p}
    step = {"project_id": p, "thread_id": thread_a}
    file = {"blob_key": "k"}
    vsf = {"project_id": p, "generation": "g", "usage_bytes": 1}
    blocks = [
        (tables.threads, threads_),
        (tables.vector_store_file_batches, batches),
        (tables.assistants, _rows(N, ids.ASSISTANT, project_id=p)),
        (tables.assistants, _rows(N, ids.ASSISTANT, project_id=q)),
        (tables.vector_stores, stores_p),
        (tables.vector_stores, _rows(N, ids.VECTOR_STORE, project_id=q, last_active_at=0)),
        (tables.runs, runs_a),
        (tables.runs, _rows(N, ids.RUN, thread_id=thread_b, **run)),
        (tables.messages, _rows(N, ids.MESSAGE, thread_id=thread_a, run_id=run_1, **message)),
        (tables.messages, _rows(N, ids.MESSAGE, thread_id=thread_a, run_id=run_2, **message)),
        (tables.messages, _rows(2 * N, ids.MESSAGE, thread_id=thread_b, run_id=None, **message)),
        (tables.run_steps, _rows(N, ids.STEP, run_id=run_1, **step)),
        (tables.run_steps, _rows(N, ids.STEP, run_id=run_2, **step)),
        (tables.files, _rows(N, ids.FILE, project_id=p, purpose="assistants", **file)),
        (tables.files, _rows(N, ids.FILE, project_id=p, purpose="batch", **file)),
        (tables.files, _rows(2 * N, ids.FILE, project_id=q, purpose="assistants", **file)),
        (
            tables.vector_store_files,
            _rows(
                N, ids.FILE, vector_store_id=store_1, batch_id=batch_1, status="completed", **vsf
            ),
        ),
        (
            tables.vector_store_files,
            _rows(N, ids.FILE, vector_store_id=store_1, batch_id=batch_2, status="failed", **vsf),
        ),
        (
            tables.vector_store_files,
            _rows(
                2 * N, ids.FILE, vector_store_id=store_2, batch_id=None, status="completed", **vsf
            ),
        ),
    ]
    async with db.write() as conn:
        if not db.is_sqlite:
            # "No statistics" must stay so until the test runs ANALYZE itself.
            for table in tables.metadata.sorted_tables:
                await conn.exec_driver_sql(
                    f"ALTER TABLE {table.name} SET (autovacuum_enabled = false)"
                )
        for table, rows in blocks:
            await conn.execute(insert(table), rows)
    return Data(p, q, thread_a, thread_b, run_1, run_2, store_1, store_2, batch_1, batch_2)


@dataclass
class Case:
    name: str
    table: str
    index: str  # the index the page must be read from
    call: Callable[[Store, Data], Awaitable[Any]]


DESC, ASC = PageQuery(limit=LIMIT, order="desc"), PageQuery(limit=LIMIT, order="asc")

# Each list twice: its rows older than the others' (first page, newest first), and newer
# (first page, oldest first). Either way, a walk of the wrong index meets the others' rows
# before its own.
CASES = [
    Case(
        "assistants, P desc",
        "assistants",
        "pk_assistants",
        lambda s, d: assistants.page(s, d.p, DESC),
    ),
    Case(
        "assistants, Q asc",
        "assistants",
        "pk_assistants",
        lambda s, d: assistants.page(s, d.q, ASC),
    ),
    Case(
        "vector stores, P desc",
        "vector_stores",
        "pk_vector_stores",
        lambda s, d: vector_stores.page(s, d.p, DESC),
    ),
    Case(
        "vector stores, Q asc",
        "vector_stores",
        "pk_vector_stores",
        lambda s, d: vector_stores.page(s, d.q, ASC),
    ),
    Case(
        "runs, thread A desc",
        "runs",
        "pk_runs",
        lambda s, d: run_service.page(s, d.p, d.thread_a, DESC),
    ),
    Case(
        "runs, thread B asc",
        "runs",
        "pk_runs",
        lambda s, d: run_service.page(s, d.p, d.thread_b, ASC),
    ),
    Case(
        "messages, thread A desc",
        "messages",
        "pk_messages",
        lambda s, d: threads.page_messages(s, d.p, d.thread_a, DESC, None),
    ),
    Case(
        "messages, thread B asc",
        "messages",
        "pk_messages",
        lambda s, d: threads.page_messages(s, d.p, d.thread_b, ASC, None),
    ),
    Case(
        "messages, run 1 desc",
        "messages",
        "ix_messages_thread_id_run_id_id",
        lambda s, d: threads.page_messages(s, d.p, d.thread_a, DESC, d.run_1),
    ),
    Case(
        "messages, run 2 asc",
        "messages",
        "ix_messages_thread_id_run_id_id",
        lambda s, d: threads.page_messages(s, d.p, d.thread_a, ASC, d.run_2),
    ),
    Case(
        "run steps, run 1 desc",
        "run_steps",
        "pk_run_steps",
        lambda s, d: run_service.page_steps(s, d.p, d.thread_a, d.run_1, DESC, []),
    ),
    Case(
        "run steps, run 2 asc",
        "run_steps",
        "pk_run_steps",
        lambda s, d: run_service.page_steps(s, d.p, d.thread_a, d.run_2, ASC, []),
    ),
    Case("files, P desc", "files", "pk_files", lambda s, d: files.page(s, d.p, DESC, None)),
    Case("files, Q asc", "files", "pk_files", lambda s, d: files.page(s, d.q, ASC, None)),
    Case(
        "files, P purpose=assistants desc",
        "files",
        "ix_files_project_id_purpose_id",
        lambda s, d: files.page(s, d.p, DESC, "assistants"),
    ),
    Case(
        "files, P purpose=batch asc",
        "files",
        "ix_files_project_id_purpose_id",
        lambda s, d: files.page(s, d.p, ASC, "batch"),
    ),
    Case(
        "store files, store 1 desc",
        "vector_store_files",
        "pk_vector_store_files",
        lambda s, d: vector_stores.page_files(s, d.p, d.store_1, DESC, None),
    ),
    Case(
        "store files, store 2 asc",
        "vector_store_files",
        "pk_vector_store_files",
        lambda s, d: vector_stores.page_files(s, d.p, d.store_2, ASC, None),
    ),
    Case(
        "store files, store 1 completed desc",
        "vector_store_files",
        "ix_vector_store_files_vector_store_id_status_id",
        lambda s, d: vector_stores.page_files(s, d.p, d.store_1, DESC, "completed"),
    ),
    Case(
        "store files, store 1 failed asc",
        "vector_store_files",
        "ix_vector_store_files_vector_store_id_status_id",
        lambda s, d: vector_stores.page_files(s, d.p, d.store_1, ASC, "failed"),
    ),
    Case(
        "batch files, batch 1 desc",
        "vector_store_files",
        "ix_vector_store_files_batch_id_id",
        lambda s, d: vector_stores.page_files(s, d.p, d.store_1, DESC, None, d.batch_1),
    ),
    Case(
        "batch files, batch 2 asc",
        "vector_store_files",
        "ix_vector_store_files_batch_id_id",
        lambda s, d: vector_stores.page_files(s, d.p, d.store_1, ASC, None, d.batch_2),
    ),
    Case(
        "batch files, batch 1 completed desc",
        "vector_store_files",
        "ix_vector_store_files_batch_id_status_id",
        lambda s, d: vector_stores.page_files(s, d.p, d.store_1, DESC, "completed", d.batch_1),
    ),
    Case(
        "batch files, batch 2 failed asc",
        "vector_store_files",
        "ix_vector_store_files_batch_id_status_id",
        lambda s, d: vector_stores.page_files(s, d.p, d.store_1, ASC, "failed", d.batch_2),
    ),
]


class Harness:
    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.db = Database(url)
        self.store = Store(self.db)
        self.run(migrate.upgrade(self.db))
        self.data = self.run(_seed(self.db))

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)

    async def page_statement(self, case: Case) -> tuple[str, Any]:
        """The one SELECT ... ORDER BY ... LIMIT the list request runs, with its parameters."""
        seen: list[tuple[str, Any]] = []

        def hook(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
            if " ORDER BY " in sql and " LIMIT " in sql:
                seen.append((sql, params))

        engine = self.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", hook)
        try:
            await case.call(self.store, self.data)
        finally:
            event.remove(engine, "before_cursor_execute", hook)
        assert len(seen) == 1, seen
        return seen[0]

    async def problems(self, case: Case, generic: bool, analyzed: bool) -> list[str]:
        sql, params = await self.page_statement(case)
        async with self.db.read() as conn:
            if self.db.is_sqlite:
                rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                return _sqlite_problems(case, [str(r[-1]) for r in rows])
            await conn.exec_driver_sql(
                f"SET plan_cache_mode = {'force_generic_plan' if generic else 'force_custom_plan'}"
            )
            await conn.exec_driver_sql(f"PREPARE page_plan AS {sql}")
            try:
                args = ", ".join(_literal(p) for p in params)
                rows = await conn.exec_driver_sql(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page_plan({args})"
                )
                value = rows.scalar_one()
                plan = orjson.loads(value) if isinstance(value, str) else value
            finally:
                await conn.exec_driver_sql("DEALLOCATE page_plan")
                await conn.exec_driver_sql("RESET plan_cache_mode")
        return _postgres_problems(case, plan[0]["Plan"], analyzed)

    def close(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()


def _literal(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _postgres_problems(case: Case, root: dict[str, Any], analyzed: bool) -> list[str]:
    """With statistics: an index scan of the case's index that reads the page and no more.

    Without (a bulk load that autovacuum has not reached yet), PostgreSQL guesses that a
    scope holds 0.5% of the table; when that guess is under a page it may read the whole
    scope through a bitmap of the same index and sort it. That reads only the scope's own
    rows (through any index that starts with the scope), so it is accepted then; a filter
    that throws other scopes' rows away never is."""
    problems = []
    for node in _nodes(root):
        kind = node["Node Type"]
        if "Sort" in kind and analyzed:
            problems.append(f"{kind} on {node.get('Sort Key')}")
        if node.get("Relation Name") != case.table:
            continue
        where = f"{kind} using {node.get('Index Name')}"
        allowed = ("Index Scan", "Index Only Scan") + (() if analyzed else ("Bitmap Heap Scan",))
        if kind not in allowed or node.get("Index Name", case.index) != case.index:
            problems.append(f"{where}, expected an index scan using {case.index}")
        removed = node.get("Rows Removed by Filter", 0) + node.get(
            "Rows Removed by Index Recheck", 0
        )
        if removed:
            problems.append(f"{where} filtered {removed:g} rows out ({node.get('Filter')})")
        touched = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
        if analyzed and touched > TOUCHED:
            problems.append(f"{where} read {touched:g} rows for a page of {LIMIT}")
    return problems


def _sqlite_problems(case: Case, plan: list[str]) -> list[str]:
    index = case.index
    if index.startswith("pk_"):
        index = f"sqlite_autoindex_{case.table}_1"  # the key of a rowid table
    mine = [line for line in plan if f" {case.table} " in f" {line} "]
    ok = len(mine) == 1 and mine[0].startswith(f"SEARCH {case.table} USING INDEX {index} (")
    problems = [] if ok else [f"{mine}, expected SEARCH {case.table} USING INDEX {index}"]
    problems += [line for line in plan if "TEMP B-TREE" in line]
    return problems


@pytest.fixture(scope="module", params=BACKENDS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'plans.db'}"
    else:
        url = postgres_url()
    h = Harness(url)
    yield h
    h.close()


def _check(h: Harness, analyzed: bool) -> None:
    modes = [False] if h.db.is_sqlite else [False, True]
    found = []
    for case in CASES:
        for generic in modes:
            for problem in h.run(h.problems(case, generic, analyzed)):
                mode = " (generic plan)" if generic else ""
                found.append(f"{case.name}{mode}: {problem}")
    assert not found, "\n".join(found)


def test_without_statistics(harness: Harness) -> None:
    _check(harness, analyzed=False)


def test_after_analyze(harness: Harness) -> None:
    async def analyze() -> None:
        async with harness.db.write() as conn:
            await conn.exec_driver_sql("ANALYZE")

    harness.run(analyze())
    _check(harness, analyzed=True)
