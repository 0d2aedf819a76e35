"""Which plan PostgreSQL picks for the list-runs page, and what it costs, per schema and state.

    python -m bench.pg_plans [--runs 100000]

On a fresh database (pgserver, as the tests use) it loads one thread of ``--runs`` old runs,
then 100 + ``--runs`` newer runs interleaved on two more threads, and runs the page query of
``ObjectRepo.page`` (default page, ``LIMIT 21``) on the three threads:

- with the schema as migrated, and with a candidate schema in which the runs table is keyed
  ``PRIMARY KEY (thread_id, id)`` with a hash index on ``id`` (so no b-tree can order by
  ``id`` alone);
- without statistics and after ``ANALYZE``;
- as a custom plan and as a generic plan (``plan_cache_mode = force_generic_plan``, what a
  prepared statement may switch to after five executions).

Prints one line per combination: the scan chosen, rows removed by its filter and execution
time, and writes them as JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from typing import Any

from assistantd import clock, ids
from assistantd.storage import migrate
from assistantd.storage.db import Database
from assistantd.storage.store import Store
from bench._support import REPO, machine
from bench.list_runs import seed

QUERY = (
    "SELECT runs.id, runs.body FROM runs WHERE runs.project_id = $1 AND runs.thread_id = $2 "
    "ORDER BY runs.id DESC LIMIT 21"
)
CANDIDATE = (
    "ALTER TABLE runs DROP CONSTRAINT pk_runs",
    "ALTER TABLE runs ADD CONSTRAINT pk_runs PRIMARY KEY (thread_id, id)",
    "CREATE INDEX ix_runs_id_hash ON runs USING hash (id)",
    "DROP INDEX ix_runs_thread_id_id",
)


async def _load(url: str, n: int, candidate: bool) -> tuple[str, dict[str, str]]:
    db = Database(url)
    await migrate.upgrade(db)
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
        if candidate:
            for ddl in CANDIDATE:
                await conn.exec_driver_sql(ddl)
    await db.dispose()
    tid = {name: str(t["id"]) for name, t in threads.items()}
    await seed(url, project, assistant["id"], {tid["old"]: n})
    await seed(url, project, assistant["id"], {tid["small"]: 100, tid["new"]: n})
    return project, tid


async def _plans(url: str, project: str, tid: dict[str, str], label: str) -> list[dict[str, Any]]:
    db = Database(url)
    out = []
    try:
        for mode in ("custom", "generic"):
            async with db.read() as conn:
                if mode == "generic":
                    await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
                for name, thread_id in tid.items():
                    stmt = "p" + ids.new_id("")
                    await conn.exec_driver_sql(f"PREPARE {stmt}(varchar, varchar) AS {QUERY}")
                    rows = await conn.exec_driver_sql(
                        f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE {stmt}('{project}', '{thread_id}')"
                    )
                    plan = [str(r[0]) for r in rows]
                    await conn.exec_driver_sql(f"DEALLOCATE {stmt}")
                    text = "\n".join(plan)
                    scan = re.search(
                        r"(Index Scan Backward using \w+|Bitmap Heap Scan|Seq Scan)", text
                    )
                    removed = re.search(r"Rows Removed by Filter: (\d+)", text)
                    ms = re.search(r"Execution Time: ([\d.]+) ms", text)
                    out.append(
                        {
                            "state": label,
                            "plan_mode": mode,
                            "thread": name,
                            "scan": scan.group(1) if scan else "?",
                            "sorted": "Sort Method" in text,
                            "rows_removed_by_filter": int(removed.group(1)) if removed else 0,
                            "execution_ms": float(ms.group(1)) if ms else None,
                            "plan": plan,
                        }
                    )
                if mode == "generic":
                    await conn.exec_driver_sql("RESET plan_cache_mode")
    finally:
        await db.dispose()
    return out


async def _analyze(url: str) -> None:
    db = Database(url)
    try:
        async with db.write() as conn:
            await conn.exec_driver_sql("ANALYZE runs")
    finally:
        await db.dispose()


async def run(n: int) -> list[dict[str, Any]]:
    from tests.servers import postgres_url

    results = []
    for candidate in (False, True):
        schema = "PK (thread_id, id) + hash(id)" if candidate else "as migrated"
        url = postgres_url()
        project, tid = await _load(url, n, candidate)
        results += await _plans(url, project, tid, f"{schema}, no statistics")
        await _analyze(url)
        results += await _plans(url, project, tid, f"{schema}, after ANALYZE")
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
        "| schema, statistics | plan | thread | scan | sort | rows filtered out | ms |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['state']} | {r['plan_mode']} | {threads[r['thread']]} | {r['scan']} "
            f"| {'yes' if r['sorted'] else 'no'} | {r['rows_removed_by_filter']:,} "
            f"| {r['execution_ms']} |"
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
