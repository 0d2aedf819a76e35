"""What SQLite's per-connection page cache buys in read speed, and what it costs in memory.

    python -m bench.sqlite_cache [--sizes 64,256,1000,2000,8000] [--runs 100000] [--iterations 2000]

``ASSISTANTD_SQLITE_CACHE_KIB`` sets ``PRAGMA cache_size`` on every pooled connection. This
measures the choice on the database the list-runs benchmark uses (100 + 100,000 terminal runs
on two threads, seeded through the repository layer), with the SQL a list request really runs
(captured from ``services.runs.page`` and the key lookup, as ``bench.list_runs`` does), timed
on the stdlib ``sqlite3`` driver that aiosqlite wraps, one connection per cache size:

* **read-only**: the same page again and again, nothing written in between, so the connection's
  cache stays valid: the best case for a large cache;
* **after a write**: another connection commits one row before every read. In WAL mode a
  connection whose database changed since its last read transaction drops its whole cache, so
  this is what a server that is also executing runs sees;
* **memory**: 15 connections (the most SQLAlchemy's default pool holds for aiosqlite: 5 plus 10
  overflow) each read every row, so each fills its cache; the process's RSS is read before and
  after. The cache's memory stays allocated after a reset, which is why it shows in a server's
  RSS as the database grows.

Prints a markdown table and writes the figures as JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from assistantd.services import assistants as assistant_service
from assistantd.services import threads as thread_service
from assistantd.storage import migrate
from assistantd.storage.db import DEFAULT_SQLITE_CACHE_KIB, Database, sqlite_pragmas
from assistantd.storage.keys import DEFAULT_PROJECT
from assistantd.storage.objects import PageQuery
from assistantd.storage.store import Store
from bench._support import REPO, machine, percentile
from bench.list_runs import INSTRUCTIONS, Statements, explain, seed

RESULTS = REPO / "bench" / "results"
POOL_CONNECTIONS = 15


async def _prepare(path: Path, small: int, large: int) -> Statements:
    """Seed the database; return the SQL of each list case."""
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url)
    try:
        await migrate.upgrade(db)
        store = Store(db)
        project = await store.keys.ensure_project(DEFAULT_PROJECT)
        _info, secret = await store.keys.create(project)
        body = {"model": "gpt-4o", "instructions": INSTRUCTIONS}
        assistant = await assistant_service.create(store, project, body)
        small_tid = (await thread_service.create(store, project, {}))["id"]
        large_tid = (await thread_service.create(store, project, {}))["id"]
    finally:
        await db.dispose()
    ids = await seed(url, project, str(assistant["id"]), {small_tid: small, large_tid: large})
    cases: list[tuple[str, str, PageQuery]] = []
    for label, tid in ((f"{small:,} runs", small_tid), (f"{large:,} runs", large_tid)):
        middle = ids[tid][len(ids[tid]) // 2]
        cases += [
            (f"{label}, default", tid, PageQuery()),
            (f"{label}, limit=100", tid, PageQuery(limit=100)),
            (f"{label}, after=middle", tid, PageQuery(after=middle)),
        ]
    _plans, statements = await explain(url, project, secret, cases)
    return statements


def _connect(path: Path, cache_kib: int) -> sqlite3.Connection:
    """A connection set up as the server's are."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in sqlite_pragmas(cache_kib):
        conn.execute(pragma)
    return conn


def _time_reads(
    path: Path,
    sizes: list[int],
    statements: Statements,
    iterations: int,
    rounds: int,
    write_between: bool,
) -> dict[int, dict[str, dict[str, float]]]:
    """p50/p99/mean µs per cache size and case. One reader per size, all open at once; the
    sizes take turns in every round (order rotated), so a slow spell of the machine falls on
    all of them alike."""
    readers = {kib: _connect(path, kib) for kib in sizes}
    writer = _connect(path, DEFAULT_SQLITE_CACHE_KIB)
    writer.execute("CREATE TABLE IF NOT EXISTS bench_tick (n INTEGER)")
    samples: dict[tuple[int, str], list[int]] = {(k, c): [] for k in sizes for c in statements}
    per_round = max(1, iterations // rounds)
    tick = 0
    try:
        for r in range(rounds):
            order = sizes[r % len(sizes) :] + sizes[: r % len(sizes)]
            for case, stmts in statements.items():
                for kib in order:
                    reader = readers[kib]
                    for i in range(per_round + 5):  # the first 5 warm the cache up
                        if write_between:
                            tick += 1
                            writer.execute("INSERT INTO bench_tick VALUES (?)", (tick,))
                        start = time.perf_counter_ns()
                        reader.execute("BEGIN")
                        for statement, params in stmts:
                            reader.execute(statement, params).fetchall()
                        reader.execute("COMMIT")
                        if i >= 5:
                            samples[kib, case].append((time.perf_counter_ns() - start) // 1000)
    finally:
        for reader in readers.values():
            reader.close()
        writer.close()
    out: dict[int, dict[str, dict[str, float]]] = {kib: {} for kib in sizes}
    for (kib, case), values in samples.items():
        values.sort()
        out[kib][case] = {
            "p50_us": percentile(values, 50),
            "p99_us": percentile(values, 99),
            "mean_us": round(statistics.fmean(values), 1),
        }
    return out


def _memory(path: Path, cache_kib: int) -> dict[str, float]:
    """RSS growth of a fresh process when 15 connections each read the whole runs table
    (fresh, so no memory freed by an earlier measurement is reused)."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
        return child.submit(_memory_here, path, cache_kib).result()


def _memory_here(path: Path, cache_kib: int) -> dict[str, float]:
    me = psutil.Process()
    before = me.memory_info().rss
    conns = [_connect(path, cache_kib) for _ in range(POOL_CONNECTIONS)]
    try:
        opened = me.memory_info().rss
        for conn in conns:
            conn.execute("SELECT count(*), sum(length(body)) FROM runs").fetchone()
        filled = me.memory_info().rss
    finally:
        for conn in conns:
            conn.close()
    return {
        "opened_mb": round((opened - before) / 2**20, 1),
        "filled_mb": round((filled - before) / 2**20, 1),
        "per_connection_mb": round((filled - opened) / 2**20 / POOL_CONNECTIONS, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sqlite_cache", description=__doc__)
    p.add_argument("--sizes", default="64,256,1000,2000,8000", help="cache sizes in KiB")
    p.add_argument("--small", type=int, default=100, help="runs on the small thread")
    p.add_argument("--runs", type=int, default=100_000, help="runs on the large thread")
    p.add_argument("--iterations", type=int, default=2000, help="timed reads per case and size")
    p.add_argument("--rounds", type=int, default=10, help="the sizes take turns this many times")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="assistantd-sqlitecache-"))
    path = tmp / "assistantd.db"
    command = "python -m bench.sqlite_cache " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    print(f"# {command}  (database {path})", flush=True)
    statements = asyncio.run(_prepare(path, args.small, args.runs))
    size = path.stat().st_size
    print(f"seeded {args.small:,} + {args.runs:,} runs: database {size / 2**20:.0f} MB", flush=True)

    report: dict[str, Any] = {
        "benchmark": "sqlite_cache",
        "command": command,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "sqlite": sqlite3.sqlite_version,
        "database_mb": round(size / 2**20, 1),
        "sizes": {},
    }
    timed = {}
    for regime, write_between in (("read_only", False), ("after_write", True)):
        print(f"timing reads, {regime.replace('_', ' ')} ...", flush=True)
        timed[regime] = _time_reads(
            path, sizes, statements, args.iterations, args.rounds, write_between
        )
    for kib in sizes:
        print(f"memory of 15 connections with {kib} KiB caches ...", flush=True)
        report["sizes"][str(kib)] = {
            "read_only": timed["read_only"][kib],
            "after_write": timed["after_write"][kib],
            "memory": _memory(path, kib),
        }

    cases = list(statements)
    lines = [
        f"SQLite {sqlite3.sqlite_version}, database {report['database_mb']} MB; p50 / p99 µs of"
        " one list request's SELECTs in one read transaction.",
        "",
        "| cache KiB | " + " | ".join(cases) + " | RSS of 15 full caches |",
        "|---:|" + "---:|" * len(cases) + "---:|",
    ]
    for kib in sizes:
        figures = report["sizes"][str(kib)]
        for regime in ("read_only", "after_write"):
            cells = [
                f"{figures[regime][c]['p50_us']:.0f} / {figures[regime][c]['p99_us']:.0f}"
                for c in cases
            ]
            memory = (
                f"{figures['memory']['filled_mb']} MB"
                f" ({figures['memory']['per_connection_mb']} MB each)"
                if regime == "read_only"
                else ""
            )
            label = f"{kib}, {regime.replace('_', ' ')}"
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {memory} |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"sqlite_cache-{stamp}.json").write_text(json.dumps(report, indent=2))
    (args.out / f"sqlite_cache-{stamp}.md").write_text(table + "\n")
    print(f"wrote {args.out / f'sqlite_cache-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
