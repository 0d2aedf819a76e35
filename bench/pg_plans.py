"""Which plan PostgreSQL picks for the list-runs page, and what it costs, per schema and state.

    python -m bench.pg_plans [--runs 100000]

On a fresh database (pgserver, as the tests use) it loads one thread of ``--runs`` old runs,
then 100 + ``--runs`` newer runs interleaved on two more threads, and runs the page query of
``ObjectRepo.page`` (default page, ``LIMIT 21``) on the three threads:

- on the schema of migration 0003 (runs keyed by ``id``, an index on ``(thread_id, id)``)
  with the query of that time (``project_id = ? AND thread_id = ?``), and on the schema of
  migration 0004 (``PRIMARY KEY (thread_id, id)``, ids unique through a
  ``varchar_pattern_ops`` index that cannot order) with today's query (``thread_id = ?``,
  the project checked on the thread row by ``EXISTS``);
- without statistics and after ``ANALYZE``;
- as a custom plan and as a generic plan (``plan_cache_mode = force_generic_plan``, what a
  prepared statement may switch to after five executions).

Prints one line per combination: the scan of runs chosen, the rows it read and removed by its
filter, and the execution time, and writes them as JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from assistantd import clock, ids
from assistantd.storage import migrate
from assistantd.storage.db import Database
from assistantd.storage.store import Store
from bench._support import REPO, machine
from bench.list_runs import seed

# The page statement of each schema's time, as ObjectRepo.page sent it ($1 project, $2 thread).
QUERIES = {
    "0003": (
        "SELECT runs.id, runs.body FROM runs WHERE runs.project_id = $1 AND runs.thread_id = $2 "
        "ORDER BY runs.id DESC LIMIT 21"
    ),
    "0004": (
        "SELECT runs.id, runs.body FROM runs WHERE (EXISTS (SELECT * FROM threads "
        "WHERE threads.id = $2 AND threads.project_id = $1)) AND runs.thread_id = $2 "
        "ORDER BY runs.id DESC LIMIT 21"
    ),
}
SCHEMAS = {
    "0003": "0003: PK (id), index (thread_id, id); project_id = ? AND thread_id = ?",
    "0004": "0004: PK (thread_id, id), unique (id varchar_pattern_ops); thread_id = ? + EXISTS",
}


async def _load(url: str, n: int, revision: str) -> tuple[str, dict[str, str]]:
    db = Database(url)
    await migrate.upgrade(db, revision)
    store = Store(db)
    project = await store.keys.ensure_project("bench")
    now = clock.now()
    assistant = {
        "id": ids.new_id(ids.ASSISTANT),
        "object": "assistant",
        "created_at": now,
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "tools": [],
        "metadata": {},
    }
    threads = {
        name: {"id": ids.new_id(ids.THREAD), "object": "thread", "created_at": now}
        for name in ("old", "small", "new")
    }
    async with db.write() as conn:
        await store.assistants.insert(conn, project, assistant)
        for t in threads.values():
            await store.threads.insert(conn, project, t)
    await db.dispose()
    tid = {name: str(t["id"]) for name, t in threads.items()}
    await seed(url, project, assistant["id"], {tid["old"]: n})
    await seed(url, project, assistant["id"], {tid["small"]: 100, tid["new"]: n})
    return project, tid


async def _plans(
    url: str, project: str, tid: dict[str, str], revision: str, label: str
) -> list[dict[str, Any]]:
    db = Database(url)
    out = []
    try:
        for mode in ("custom", "generic"):
            async with db.read() as conn:
                if mode == "generic":
                    await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
                for name, thread_id in tid.items():
                    stmt = "p" + ids.new_id("")
                    await conn.exec_driver_sql(
                        f"PREPARE {stmt}(varchar, varchar) AS {QUERIES[revision]}"
                    )
                    execute = f"EXECUTE {stmt}('{project}', '{thread_id}')"
                    rows = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {execute}")
                    plan = [str(r[0]) for r in rows]
                    rows = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {execute}")
                    tree = rows.scalar_one()
                    tree = json.loads(tree) if isinstance(tree, str) else tree
                    await conn.exec_driver_sql(f"DEALLOCATE {stmt}")
                    on_runs = [
                        n for n in _nodes(tree[0]["Plan"]) if n.get("Relation Name") == "runs"
                    ]
                    scan = on_runs[0] if on_runs else {}
                    text = "\n".join(plan)
                    out.append(
                        {
                            "state": label,
                            "plan_mode": mode,
                            "thread": name,
                            "scan": " ".join(
                                x for x in (scan.get("Node Type"), scan.get("Index Name")) if x
                            ),
                            "direction": scan.get("Scan Direction"),
                            "rows_read": scan.get("Actual Rows", 0) * scan.get("Actual Loops", 1),
                            "sorted": "Sort Method" in text,
                            "rows_removed_by_filter": scan.get("Rows Removed by Filter", 0),
                            "execution_ms": tree[0].get("Execution Time"),
                            "plan": plan,
                        }
                    )
                if mode == "generic":
                    await conn.exec_driver_sql("RESET plan_cache_mode")
    finally:
        await db.dispose()
    return out


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _nodes(child))]


async def _analyze(url: str) -> None:
    db = Database(url)
    try:
        async with db.write() as conn:
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await db.dispose()


async def run(n: int) -> list[dict[str, Any]]:
    from tests.servers import postgres_url

    results = []
    for revision in ("0003", "0004"):
        schema = SCHEMAS[revision]
        url = postgres_url()
        project, tid = await _load(url, n, revision)
        results += await _plans(url, project, tid, revision, f"{schema}; no statistics")
        await _analyze(url)
        results += await _plans(url, project, tid, revision, f"{schema}; after ANALYZE")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_plans", description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000, help="runs on each big thread")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.runs))
    threads = {
        "old": f"{args.runs:,} old runs",
        "small": "100 runs",
        "new": f"{args.runs:,} new runs",
    }
    lines = [
        "| schema, statistics | plan | thread | scan of runs | sort | read | filtered out | ms |",
        "|---|---|---|---|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['state']} | {r['plan_mode']} | {threads[r['thread']]} | {r['scan']} "
            f"| {'yes' if r['sorted'] else 'no'} | {r['rows_read']:,.0f} "
            f"| {r['rows_removed_by_filter']:,.0f} | {r['execution_ms']} |"
        )
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"pg_plans-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "command": "python -m bench.pg_plans " + " ".join(argv or sys.argv[1:]),
                "machine": machine(),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")
    return 0


RESULTS = REPO / "bench" / "results"

if __name__ == "__main__":
    sys.exit(main())
