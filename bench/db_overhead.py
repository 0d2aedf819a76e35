"""What one indexed read costs at each layer between a request handler and the database.

    python -m bench.db_overhead [--backend sqlite|postgres] [--iterations N]

The statement is the API-key lookup every authenticated request makes (``KeyStore.project_for``:
one SELECT on a unique index). It is timed, one call at a time on uvloop, through:

1. the bare driver, synchronously (stdlib ``sqlite3``) or asyncpg without SQLAlchemy;
2. aiosqlite without SQLAlchemy (SQLite only): one thread per connection;
3. a plain SQLAlchemy async engine: pool checkout, the SELECT, pool return;
4. ``Database.read()`` as the server uses it (SQLite: explicit ``BEGIN``; PostgreSQL:
   ``pool_pre_ping``);
5. ``KeyStore.project_for`` itself (adds the SHA-256 of the secret).

On SQLite it also counts the hand-offs to aiosqlite's connection thread per call. Nothing runs
besides this process (and, with ``--backend postgres``, a local PostgreSQL on a Unix socket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from assistantd.storage import migrate
from assistantd.storage.db import Database
from assistantd.storage.keys import KeyStore, hash_secret
from assistantd.storage.tables import api_keys
from bench._support import (
    REPO,
    busy_cpu_seconds,
    machine,
    percentile,
    self_cpu_seconds,
    wait_until_quiet,
)

RESULTS = REPO / "bench" / "results"


async def _timed(name: str, call: Callable[[], Awaitable[Any]], n: int) -> dict[str, Any]:
    for _ in range(max(20, n // 10)):
        await call()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await call()
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return {
        "layer": name,
        "p50_us": round(percentile(samples, 50) / 1000, 1),
        "p99_us": round(percentile(samples, 99) / 1000, 1),
        "mean_us": round(statistics.fmean(samples) / 1000, 1),
    }


async def run(backend: str, n: int) -> dict[str, Any]:
    if backend == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="assistantd-dbo-")) / "assistantd.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        from tests.servers import postgres_url

        url = postgres_url()
    db = Database(url)
    await migrate.upgrade(db)
    keys = KeyStore(db)
    _info, secret = await keys.create("bench")
    digest = hash_secret(secret)
    stmt = select(api_keys.c.project_id).where(
        api_keys.c.secret_hash == digest, api_keys.c.revoked_at.is_(None)
    )
    sql = "SELECT project_id FROM api_keys WHERE secret_hash = {p} AND revoked_at IS NULL"
    rows: list[dict[str, Any]] = []
    plain = create_async_engine(url)
    extra: dict[str, Any] = {}
    try:
        if backend == "sqlite":
            import aiosqlite
            import aiosqlite.core

            raw = sqlite3.connect(path)

            async def sync_driver() -> None:
                raw.execute(sql.format(p="?"), (digest,)).fetchall()

            rows.append(await _timed("stdlib sqlite3 (sync)", sync_driver, n))
            raw.close()
            adb = await aiosqlite.connect(path)

            async def aio() -> None:
                cur = await adb.execute(sql.format(p="?"), (digest,))
                await cur.fetchall()
                await cur.close()

            rows.append(await _timed("aiosqlite, no SQLAlchemy", aio, n))
            await adb.close()

            # Hand-offs to the connection thread for one project_for call.
            original = aiosqlite.core.Connection._execute
            count = 0

            async def counting(self: Any, fn: Any, *a: Any, **k: Any) -> Any:
                nonlocal count
                count += 1
                return await original(self, fn, *a, **k)

            aiosqlite.core.Connection._execute = counting  # type: ignore[method-assign]
            try:
                await keys.project_for(secret)
                count = 0
                await keys.project_for(secret)
            finally:
                aiosqlite.core.Connection._execute = original  # type: ignore[method-assign]
            extra["aiosqlite_handoffs_per_project_for"] = count
        else:
            import asyncpg

            pg = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))

            async def pg_driver() -> None:
                await pg.fetch(sql.format(p="$1"), digest)

            rows.append(await _timed("asyncpg, no SQLAlchemy", pg_driver, n))
            await pg.close()

        async def sa_plain() -> None:
            async with plain.connect() as conn:
                (await conn.execute(stmt)).all()

        rows.append(await _timed("SQLAlchemy async engine, defaults", sa_plain, n))

        async def sa_project() -> None:
            async with db.read() as conn:
                (await conn.execute(stmt)).all()

        rows.append(await _timed("Database.read() (assistantd's engine)", sa_project, n))
        rows.append(
            await _timed("KeyStore.project_for (+ SHA-256)", lambda: keys.project_for(secret), n)
        )
    finally:
        await plain.dispose()
        await db.dispose()
        if backend == "sqlite":
            shutil.rmtree(path.parent, ignore_errors=True)
    return {"backend": backend, "iterations": n, "rows": rows, **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.db_overhead", description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args(argv)
    import uvloop

    # Wait for a quiet machine (up to 15 min), then report what else ran meanwhile.
    wait_until_quiet(0.2, 900, [])
    busy0, self0, t0 = busy_cpu_seconds(), self_cpu_seconds(), time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(args.backend, args.iterations))
    other = busy_cpu_seconds() - busy0 - (self_cpu_seconds() - self0)
    result["other_load_cores"] = round(max(0.0, other) / (time.perf_counter() - t0), 2)
    result["machine"] = machine()
    result["command"] = "python -m bench.db_overhead " + " ".join(argv or sys.argv[1:])
    lines = [
        f"{result['command']}: one key lookup, {args.iterations} calls one at a time"
        f" (other processes meanwhile: {result['other_load_cores']} cores"
        + (", including PostgreSQL)" if args.backend == "postgres" else ")"),
        "",
        "| layer | p50 us | p99 us | mean us |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['layer']} | {r['p50_us']} | {r['p99_us']} | {r['mean_us']} |" for r in result["rows"]
    ]
    if "aiosqlite_handoffs_per_project_for" in result:
        lines += [
            "",
            "hand-offs to aiosqlite's connection thread per project_for call: "
            f"{result['aiosqlite_handoffs_per_project_for']}",
        ]
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"db_overhead-{args.backend}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
