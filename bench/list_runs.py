"""List runs on a thread with 100 runs vs one with 100,000, and against a bare endpoint.

    python -m bench.list_runs [--backend sqlite|postgres] [--requests N] [--concurrency C]

What it does, in one run (see docs/benchmarks.md for the figures and how to read them):

1. creates an API key with ``assistantd keys create --project bench`` and starts a real
   ``assistantd serve`` subprocess (worker on) on a fresh SQLite file or PostgreSQL database;
2. creates an assistant and two threads over HTTP, then seeds their runs straight through the
   repository layer (``Store.runs.insert_many`` with ``services.runs.new_run`` bodies moved to
   a terminal state), 100 on one thread and 100,000 on the other, interleaved in id order so a
   plan that scanned by id instead of by thread would show;
3. prints the query plans of every statement a list request runs;
4. fetches one real page per case and starts a bare FastAPI app on uvicorn that serves those
   same bytes from memory (``bench/bare_app.py``);
5. times the service call in-process (no HTTP) to split database/handler time from the rest;
6. drives each case from a separate load-generator process (``bench/loadgen.py``) with a fixed
   number of requests over keep-alive connections at a fixed concurrency, in ``--rounds``
   rounds with the case order rotated, and reports latency p50/p99 and requests/s;
7. prints markdown tables and writes everything as JSON to ``bench/results/``.

The machine this was written for has two cores. By default the servers are pinned to the first
usable CPU and the load generator to the second, so neither steals the other's core; the
PostgreSQL processes (``--backend postgres``) are not pinned and share both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import event

from assistantd import clock
from assistantd.runs import state
from assistantd.services import runs as run_service
from assistantd.services.runs import new_run
from assistantd.storage.db import DEFAULT_SQLITE_CACHE_KIB, Database
from assistantd.storage.objects import PageQuery
from assistantd.storage.store import Store
from bench._support import (
    REPO,
    Proc,
    busy_cpu_seconds,
    children_cpu_seconds,
    cpus,
    free_port,
    machine,
    percentile,
    postgres_cpu_seconds,
    python,
    self_cpu_seconds,
    wait_until_quiet,
)

T = TypeVar("T")
RESULTS = REPO / "bench" / "results"
INSTRUCTIONS = (
    "You are a support assistant for an online bookshop. Answer in two or three sentences, "
    "cite the order number when the customer gives one, and never invent delivery dates."
)


@dataclass
class Case:
    name: str
    target: str  # "assistantd" or "bare"
    path: str
    runs: int | None  # runs on the thread, None when not a thread
    kind: str  # default / limit100 / middle / bare20 / bare100 / auth
    expect_length: int = 0


def _run_async(factory: Callable[[], Awaitable[T]]) -> T:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    with runner:
        return runner.run(factory())  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- seeding


def _terminal(run: dict[str, Any], i: int, now: int) -> dict[str, Any]:
    """Move a fresh (queued) run to a terminal state as the worker would: mostly completed."""
    if i % 10 == 8:
        return state.transition(state.transition(run, "cancelling", now), "cancelled", now)
    run = state.transition(run, "in_progress", now)
    if i % 10 == 9:
        run = state.transition(run, "failed", now)
        run["last_error"] = {"code": "server_error", "message": "Upstream model timed out."}
        return run
    run = state.transition(run, "completed", now)
    run["usage"] = {"prompt_tokens": 412, "completion_tokens": 57, "total_tokens": 469}
    return run


async def seed(
    url: str,
    project: str,
    assistant_id: str,
    threads: dict[str, int],
    batch: int = 2000,
) -> dict[str, list[str]]:
    """Insert ``threads[tid]`` terminal runs on each thread, interleaved in id (= time) order.

    Returns each thread's run ids in ascending order."""
    db = Database(url)
    store = Store(db)
    try:
        async with db.read() as conn:
            assistant = await store.assistants.get(conn, project, assistant_id)
        # Spread each thread's runs evenly over the whole id range.
        spread = sorted(((k + 0.5) / n, tid) for tid, n in threads.items() for k in range(n))
        ids: dict[str, list[str]] = {tid: [] for tid in threads}
        body = {"assistant_id": assistant_id}
        pending: list[dict[str, Any]] = []
        now = clock.now()
        for n, (_key, tid) in enumerate(spread):
            run = _terminal(new_run(tid, assistant, body, 600), n, now)
            ids[tid].append(run["id"])
            pending.append(run)
            if len(pending) >= batch:
                async with db.write() as conn:
                    await store.runs.insert_many(conn, project, pending)
                pending = []
        if pending:
            async with db.write() as conn:
                await store.runs.insert_many(conn, project, pending)
        return ids
    finally:
        await db.dispose()


async def _analyze(url: str) -> None:
    db = Database(url)
    try:
        async with db.write() as conn:
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await db.dispose()


# ------------------------------------------------------------------------------ plans, in-process


async def _captured(db: Database, call: Callable[[], Awaitable[Any]]) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def hook(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(db.engine.sync_engine, "before_cursor_execute", hook)
    try:
        await call()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", hook)
    return seen


Statements = dict[str, list[tuple[str, Any]]]


async def explain(
    url: str, project: str, secret: str, cases: list[tuple[str, str, PageQuery]]
) -> tuple[list[dict[str, Any]], Statements]:
    """The plan of every SELECT one list request runs (auth lookup, thread lookup, page),
    captured from the real code path and explained with the real parameters. Also returns
    the captured statements per case, for timing them on the bare driver."""
    db = Database(url)
    store = Store(db)
    out = []
    statements: Statements = {}
    try:
        for name, thread_id, query in cases:

            async def request(tid: str = thread_id, q: PageQuery = query) -> None:
                await store.keys.project_for(secret)
                await run_service.page(store, project, tid, q)

            statements[name] = await _captured(db, request)
            for statement, params in statements[name]:
                async with db.read() as conn:
                    if db.is_sqlite:
                        rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
                        plan = [str(r[-1]) for r in rows]
                    else:
                        rows = await conn.exec_driver_sql(
                            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                            + statement,
                            params,
                        )
                        plan = [str(r[0]) for r in rows]
                out.append(
                    {
                        "case": name,
                        "sql": " ".join(statement.split()),
                        "params": [str(p) for p in params],
                        "plan": plan,
                    }
                )
    finally:
        await db.dispose()
    return out, statements


async def in_process(
    url: str,
    project: str,
    secret: str,
    cases: list[tuple[str, str, PageQuery]],
    statements: Statements,
    iterations: int,
    sqlite_cache_kib: int,
) -> list[dict[str, Any]]:
    """Time the work behind one request without HTTP or the framework: the key lookup, and
    ``services.runs.page`` (thread lookup + keyset page) plus ``Page.to_json``; then the same
    SQL statements on the bare driver (stdlib ``sqlite3``, or ``asyncpg`` without SQLAlchemy),
    which is what the database itself costs."""
    db = Database(url, sqlite_cache_kib=sqlite_cache_kib)
    store = Store(db)
    out = []

    async def timed(name: str, call: Callable[[], Awaitable[Any]]) -> None:
        for _ in range(max(10, iterations // 10)):
            await call()
        samples = []
        for _ in range(iterations):
            t0 = time.perf_counter_ns()
            await call()
            samples.append((time.perf_counter_ns() - t0) // 1000)
        samples.sort()
        out.append(
            {
                "name": name,
                "p50_us": percentile(samples, 50),
                "p99_us": percentile(samples, 99),
                "mean_us": round(statistics.fmean(samples)),
            }
        )

    try:
        await timed("auth: keys.project_for", lambda: store.keys.project_for(secret))
        for name, thread_id, query in cases:

            async def page(tid: str = thread_id, q: PageQuery = query) -> bytes:
                return (await run_service.page(store, project, tid, q)).to_json()

            await timed(f"services.runs.page + to_json: {name}", page)
        await db.dispose()
        if db.is_sqlite:
            raw = sqlite3.connect(url.split(":///", 1)[1])
            try:
                for name, stmts in statements.items():

                    async def sync_sql(todo: list[tuple[str, Any]] = stmts) -> None:
                        for statement, params in todo:
                            raw.execute(statement, params).fetchall()

                    await timed(f"sqlite3 (sync), its {len(stmts)} SELECTs: {name}", sync_sql)
            finally:
                raw.close()
        else:
            import asyncpg

            pg = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                for name, stmts in statements.items():

                    async def pg_sql(todo: list[tuple[str, Any]] = stmts) -> None:
                        for statement, params in todo:
                            await pg.fetch(statement, *params)

                    await timed(
                        f"asyncpg (no SQLAlchemy), its {len(stmts)} SELECTs: {name}", pg_sql
                    )
            finally:
                await pg.close()
    finally:
        await db.dispose()
    return out


# ------------------------------------------------------------------------------------------- load


def drive(
    case: Case,
    port: int,
    headers: dict[str, str],
    args: argparse.Namespace,
    server: Proc,
    load_cpu: int | None,
) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "path": case.path,
        "headers": headers,
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "expect_length": case.expect_length,
        "cpu": load_cpu,
    }
    pg_dir = args.pg_dir

    def pg() -> float:
        return postgres_cpu_seconds(pg_dir) if pg_dir else 0.0

    server_cpu0, pg_cpu0 = server.cpu_seconds(), pg()
    busy0, kids0, self0, t0 = (
        busy_cpu_seconds(),
        children_cpu_seconds(),
        self_cpu_seconds(),
        time.perf_counter(),
    )
    out = subprocess.run(
        python("-m", "bench.loadgen", json.dumps(spec)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    server_cpu, pg_cpu = server.cpu_seconds() - server_cpu0, pg() - pg_cpu0
    elapsed = time.perf_counter() - t0
    ours = server_cpu + pg_cpu + children_cpu_seconds() - kids0 + self_cpu_seconds() - self0
    # Whatever else ran on the machine meanwhile (another test suite, a build...), in cores.
    background = max(0.0, busy_cpu_seconds() - busy0 - ours) / elapsed
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed on {case.name}:\n{out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout)
    # The server was idle apart from the warm-up and the measured phase; both are counted.
    result["server_cpu_s"] = server_cpu
    result["server_requests"] = args.requests + args.warmup
    result["postgres_cpu_s"] = pg_cpu
    result["background_cores"] = background
    return result


def round_order(cases: list[Case], r: int) -> list[Case]:
    """Round ``r``'s order: the two threads' runs of one page kind back to back (so a slow
    minute of the machine hits both halves of a ratio alike), the groups rotated by one each
    round and each pair's order flipped every other round."""
    groups: list[list[Case]] = []
    for case in cases:
        pair = next((g for g in groups if g[0].kind == case.kind and case.runs), None)
        if pair is not None:
            pair.append(case)
        else:
            groups.append([case])
    shift = r % len(groups)
    groups = groups[shift:] + groups[:shift]
    return [c for g in groups for c in (reversed(g) if r % 2 else g)]


def quiet(args: argparse.Namespace, ours: list[int]) -> None:
    if args.max_background > 0:
        load = wait_until_quiet(args.max_background, args.quiet_timeout, ours)
        if load >= args.max_background:
            print(f"warning: {load:.2f} cores busy with other work", flush=True)


def wrk_check(
    case: Case, port: int, headers: dict[str, str], args: argparse.Namespace, cpu: int | None
) -> dict[str, Any]:
    """Cross-check with wrk (duration-bound): same connections, same core, same headers."""
    cmd = ["wrk", "-t1", f"-c{args.concurrency}", f"-d{args.wrk_duration}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(f"http://127.0.0.1:{port}{case.path}")
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.wrk_duration + 60)
    text_out = out.stdout

    def ms(value: str) -> float:
        m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
        if not m:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    found = {
        p: ms(m.group(1))
        for p in ("50", "99")
        if (m := re.search(rf"^\s+{p}%\s+(\S+)", text_out, re.M))
    }
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text_out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text_out)
    return {
        "p50_ms": found.get("50"),
        "p99_ms": found.get("99"),
        "rps": float(rps.group(1)) if rps else None,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "raw": text_out,
    }


def summarize(case: Case, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    lat = sorted(x for r in rounds for x in r["latencies_us"])
    n = sum(r["requests"] for r in rounds)
    wall = sum(r["wall_s"] for r in rounds)
    served = sum(r["server_requests"] for r in rounds)
    return {
        "case": case.name,
        "target": case.target,
        "kind": case.kind,
        "runs_on_thread": case.runs,
        "path": case.path,
        "response_bytes": case.expect_length,
        "requests": n,
        "p50_ms": percentile(lat, 50) / 1000,
        "p90_ms": percentile(lat, 90) / 1000,
        "p99_ms": percentile(lat, 99) / 1000,
        "max_ms": (lat[-1] if lat else 0) / 1000,
        "rps": n / wall if wall else 0.0,
        "rounds": [
            {
                "rps": r["requests"] / r["wall_s"],
                "p50_ms": percentile(sorted(r["latencies_us"]), 50) / 1000,
                "p99_ms": percentile(sorted(r["latencies_us"]), 99) / 1000,
                "other_load_cores": r["background_cores"],
                "attempt": r.get("attempt", 1),
            }
            for r in rounds
        ],
        "server_cpu_us_per_req": 1e6 * sum(r["server_cpu_s"] for r in rounds) / served,
        "postgres_cpu_us_per_req": 1e6 * sum(r["postgres_cpu_s"] for r in rounds) / served,
        "client_cpu_us_per_req": 1e6 * sum(r["client_cpu_s"] for r in rounds) / n,
        # CPU per request (warm-up included) times the measured rate: the busy share of a core.
        "server_cpu_util": sum(r["server_cpu_s"] for r in rounds) / served * n / wall,
        "client_cpu_util": sum(r["client_cpu_s"] for r in rounds) / wall,
        "background_cores": max(r["background_cores"] for r in rounds),
        "errors": sum(r["error_count"] for r in rounds),
    }


# ----------------------------------------------------------------------------------------- output


def render(report: dict[str, Any]) -> str:
    rows = report["results"]
    by = {r["case"]: r for r in rows}
    n_small, n_large = report["args"]["small"], report["args"]["large"]
    out = [
        f"Backend: {report['backend']}; {report['args']['requests']} measured requests per case"
        f" per round x {report['args']['rounds']} rounds, concurrency"
        f" {report['args']['concurrency']}, keep-alive; pinning: {report['pinning']}.",
        f"Data: {report['database_state']}.",
        "",
        "| case | path | bytes | p50 ms | p99 ms | req/s | req/s by round | server CPU us/req"
        + (" | postgres CPU us/req" if report["backend"] == "postgres" else "")
        + " | server CPU % | loadgen CPU % | other load (cores) |",
        "|---|---|---:|---:|---:|---:|---:|---:|"
        + ("---:|" if report["backend"] == "postgres" else "")
        + "---:|---:|---:|",
    ]
    for r in rows:
        path = re.sub(r"thread_\w+", "{id}", r["path"])
        path = re.sub(r"after=run_\w+", "after={middle}", path)
        out.append(
            f"| {r['case']} | `{path}` | {r['response_bytes']} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['rps']:.0f} "
            f"| {min(rr['rps'] for rr in r['rounds']):.0f}"
            f" - {max(rr['rps'] for rr in r['rounds']):.0f} "
            f"| {r['server_cpu_us_per_req']:.0f}"
            + (f" | {r['postgres_cpu_us_per_req']:.0f}" if report["backend"] == "postgres" else "")
            + f" | {100 * r['server_cpu_util']:.0f} | {100 * r['client_cpu_util']:.0f}"
            + f" | {r['background_cores']:.2f} |"
        )
    threshold = report["args"]["max_background"] or 0.2
    noisy = [r["case"] for r in rows if r["background_cores"] >= threshold]
    if noisy:
        out += [
            "",
            "WARNING: other processes used CPU during: " + "; ".join(noisy) + ". Re-run those"
            " figures on a quiet machine.",
        ]
    out += ["", f"Ratio {n_large:,} runs / {n_small:,} runs (1.00 = no difference):", ""]
    out += [
        "| page | p50 | p99 | req/s | req/s, per round: median (min - max) |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, label in (("default", "default"), ("limit100", "limit=100"), ("middle", "after=")):
        small = next(
            (r for r in rows if r["kind"] == kind and r["runs_on_thread"] == n_small), None
        )
        large = next(
            (r for r in rows if r["kind"] == kind and r["runs_on_thread"] == n_large), None
        )
        if small and large:
            per_round = sorted(
                lr["rps"] / sr["rps"]
                for lr, sr in zip(large["rounds"], small["rounds"], strict=True)
            )
            out.append(
                f"| {label} | {large['p50_ms'] / small['p50_ms']:.2f} "
                f"| {large['p99_ms'] / small['p99_ms']:.2f} | {large['rps'] / small['rps']:.2f} "
                f"| {statistics.median(per_round):.2f} ({per_round[0]:.2f} - {per_round[-1]:.2f}) |"
            )
    out += ["", f"assistantd (thread with {n_large:,} runs) vs the bare endpoint, same bytes:", ""]
    out += [
        "| page | p50 ms real / bare | req/s real / bare | server CPU us/req real - bare |",
        "|---|---:|---:|---:|",
    ]
    for real_kind, bare_kind, label in (
        ("default", "bare20", "limit 20"),
        ("limit100", "bare100", "limit 100"),
    ):
        real = next(
            (r for r in rows if r["kind"] == real_kind and r["runs_on_thread"] == n_large), None
        )
        bare = next((r for r in rows if r["kind"] == bare_kind), None)
        if real and bare:
            out.append(
                f"| {label} | {real['p50_ms']:.2f} / {bare['p50_ms']:.2f} "
                f"| {real['rps']:.0f} / {bare['rps']:.0f} "
                f"| {real['server_cpu_us_per_req'] - bare['server_cpu_us_per_req']:.0f} |"
            )
    if report.get("in_process"):
        out += ["", "In-process (no HTTP, no framework; one call at a time):", ""]
        out += ["| call | p50 us | p99 us |", "|---|---:|---:|"]
        for r in report["in_process"]:
            out.append(f"| {r['name']} | {r['p50_us']} | {r['p99_us']} |")
    if report.get("wrk"):
        out += ["", f"wrk cross-check ({report['args']['wrk_duration']} s per case):", ""]
        out += ["| case | wrk p50 ms | wrk p99 ms | wrk req/s | loadgen req/s |"]
        out += ["|---|---:|---:|---:|---:|"]
        for name, w in report["wrk"].items():
            out.append(
                f"| {name} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {w['rps']:.0f} "
                f"| {by[name]['rps']:.0f} |"
            )
    out += ["", "Query plans (one list request = these statements):", ""]
    seen: set[tuple[str, str]] = set()
    for e in report["explain"]:
        sql = re.sub(r"\s+", " ", e["sql"])
        key = (sql, "\n".join(e["plan"]))
        if key in seen:
            continue
        seen.add(key)
        out += [f"- {e['case']}: `{sql}`", "", "  ```"]
        out += [f"  {line}" for line in e["plan"]]
        out += ["  ```", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.list_runs", description=__doc__.split("\n")[0]
    )
    p.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--requests", type=int, default=1000, help="measured requests per case/round")
    p.add_argument("--warmup", type=int, default=100, help="unmeasured requests first, per case")
    p.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    p.add_argument("--rounds", type=int, default=6, help="rounds over all cases, order rotated")
    p.add_argument("--small", type=int, default=100, help="runs on the small thread")
    p.add_argument("--large", type=int, default=100_000, help="runs on the large thread")
    p.add_argument(
        "--filler",
        type=int,
        default=0,
        help="then add this many runs on a third thread, newer than all measured runs",
    )
    p.add_argument(
        "--no-analyze",
        action="store_true",
        help="postgres: skip ANALYZE after seeding (measure the plans of a table without stats)",
    )
    p.add_argument("--in-process", type=int, default=1000, help="iterations; 0 to skip")
    p.add_argument(
        "--max-background",
        type=float,
        default=0.2,
        help="before each case, wait until other processes use fewer cores than this (0: don't)",
    )
    p.add_argument(
        "--quiet-timeout", type=float, default=900, help="longest wait for that, per case (s)"
    )
    p.add_argument(
        "--retries", type=int, default=2, help="re-measure a round disturbed by other load"
    )
    p.add_argument("--no-pin", action="store_true", help="let the OS place every process")
    p.add_argument(
        "--sqlite-cache-kib",
        type=int,
        default=DEFAULT_SQLITE_CACHE_KIB,
        help="page cache per SQLite connection (the server's ASSISTANTD_SQLITE_CACHE_KIB)",
    )
    p.add_argument("--wrk", action="store_true", help="also cross-check every case with wrk")
    p.add_argument("--wrk-duration", type=int, default=5, help="seconds per case for --wrk")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON results")
    return p


def _stop(_signum: int, _frame: Any) -> None:
    raise SystemExit(143)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Stop the servers on SIGTERM/SIGINT too (a background shell may have ignored SIGINT).
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.wrk and shutil.which("wrk") is None:
        print(
            "--wrk needs the wrk load generator, which is not installed.\n"
            "Install it with:  sudo apt-get install -y wrk   (Debian/Ubuntu; brew install wrk"
            " on macOS), or run without --wrk.",
            file=sys.stderr,
        )
        return 2
    usable = cpus()
    pin = not args.no_pin and len(usable) >= 2
    server_cpu, load_cpu = (usable[0], usable[1]) if pin else (None, None)
    tmp = Path(tempfile.mkdtemp(prefix="assistantd-listruns-"))
    args.pg_dir = None
    if args.backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'assistantd.db'}"
    else:
        from tests.servers import postgres_url

        url = postgres_url()
        # ...?host=<socket dir>, which pgserver also uses as the data directory
        args.pg_dir = url.rsplit("host=", 1)[1].split("&", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTD_")}
    env.update(
        ASSISTANTD_DATA_DIR=str(tmp / "data"),
        ASSISTANTD_DATABASE_URL=url,
        ASSISTANTD_LOG_LEVEL="warning",
        ASSISTANTD_SQLITE_CACHE_KIB=str(args.sqlite_cache_kib),
    )
    report: dict[str, Any] = {
        "benchmark": "list_runs",
        "command": "python -m bench.list_runs "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": args.backend,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine(),
        "pinning": (
            f"servers on CPU {server_cpu}, load generator on CPU {load_cpu}"
            + (", PostgreSQL unpinned" if args.backend == "postgres" else "")
            if pin
            else "none"
        ),
    }
    report["database_state"] = (
        f"{args.small:,} + {args.large:,} terminal runs on two threads, interleaved in id order"
        + (f", then {args.filler:,} newer runs on a third thread" if args.filler else "")
        + (
            "; SQLite, no ANALYZE (the server never runs it)"
            if args.backend == "sqlite"
            else ("; no ANALYZE (no statistics)" if args.no_analyze else "; ANALYZE after seeding")
        )
    )
    print(f"# {report['command']}  (work dir {tmp})", flush=True)

    # 1. key, project id, server
    key_out = subprocess.run(
        python("-m", "assistantd", "keys", "create", "--project", "bench"),
        env=env,
        cwd=tmp,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    secret = key_out.strip().splitlines()[-1]

    async def _project() -> str:
        db = Database(url)
        try:
            found = await Store(db).keys.project_for(secret)
        finally:
            await db.dispose()
        assert found is not None, "the key just created has no project"
        return found

    project = _run_async(_project)
    port, bare_port = free_port(), free_port()
    server = Proc(
        "assistantd serve",
        python("-m", "assistantd", "serve", "--port", str(port)),
        env,
        tmp,
        tmp / "server.log",
        server_cpu,
    ).start()
    bare: Proc | None = None
    try:
        base = f"http://127.0.0.1:{port}"
        server.wait_http(base + "/healthz")
        headers = {"Authorization": f"Bearer {secret}", "OpenAI-Beta": "assistants=v2"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            assistant = (
                http.post("/v1/assistants", json={"model": "gpt-4o", "instructions": INSTRUCTIONS})
                .raise_for_status()
                .json()
            )
            small_tid = http.post("/v1/threads", json={}).raise_for_status().json()["id"]
            large_tid = http.post("/v1/threads", json={}).raise_for_status().json()["id"]

            # 2. seed through the repository layer, beside the live server (SQLite WAL)
            t0 = time.perf_counter()
            ids = _run_async(
                lambda: seed(
                    url, project, assistant["id"], {small_tid: args.small, large_tid: args.large}
                )
            )
            if args.filler:
                # Newer runs on a third thread: every run of the measured threads is now older
                # than the newest `filler` rows of the table.
                filler_tid = http.post("/v1/threads", json={}).raise_for_status().json()["id"]
                _run_async(lambda: seed(url, project, assistant["id"], {filler_tid: args.filler}))
            report["seed_seconds"] = round(time.perf_counter() - t0, 1)
            print(
                f"seeded {args.small} + {args.large} (+ {args.filler} filler) runs"
                f" in {report['seed_seconds']} s",
                flush=True,
            )
            if args.backend == "postgres" and not args.no_analyze:
                # Autovacuum (on in pgserver) would analyze within a minute of such a load;
                # doing it now makes the plans deterministic for the whole measurement.
                _run_async(lambda: _analyze(url))

            # 3. the cases, and one real page of each
            def middle(tid: str) -> str:
                return ids[tid][len(ids[tid]) // 2]

            cases: list[Case] = []
            queries: list[tuple[str, str, PageQuery]] = []
            for tid, n in ((small_tid, args.small), (large_tid, args.large)):
                label = f"{n:,} runs"
                cases += [
                    Case(
                        f"{label}, default", "assistantd", f"/v1/threads/{tid}/runs", n, "default"
                    ),
                    Case(
                        f"{label}, limit=100",
                        "assistantd",
                        f"/v1/threads/{tid}/runs?limit=100",
                        n,
                        "limit100",
                    ),
                    Case(
                        f"{label}, after=middle",
                        "assistantd",
                        f"/v1/threads/{tid}/runs?after={middle(tid)}",
                        n,
                        "middle",
                    ),
                ]
                queries += [
                    (f"{label}, default", tid, PageQuery()),
                    (f"{label}, limit=100", tid, PageQuery(limit=100)),
                    (f"{label}, after=middle", tid, PageQuery(after=middle(tid))),
                ]
            cases.append(
                Case("auth only: GET /v1/models", "assistantd", "/v1/models", None, "auth")
            )
            pages_dir = tmp / "pages"
            pages_dir.mkdir()
            for case in cases:
                resp = http.get(case.path).raise_for_status()
                case.expect_length = len(resp.content)
                if case.kind in ("default", "limit100") and case.runs == args.large:
                    limit = "100" if case.kind == "limit100" else "20"
                    (pages_dir / f"{limit}.json").write_bytes(resp.content)
                    cases.append(
                        Case(
                            f"bare FastAPI, same bytes as limit {limit}",
                            "bare",
                            f"/v1/threads/{large_tid}/runs"
                            + ("?limit=100" if limit == "100" else ""),
                            None,
                            f"bare{limit}",
                            len(resp.content),
                        )
                    )
                if case.kind == "middle":
                    page = resp.json()
                    assert page["has_more"] and len(page["data"]) == 20, case.name

        bare = Proc(
            "bare app",
            python("-m", "bench.bare_app", "--port", str(bare_port), "--pages", str(pages_dir)),
            env,
            REPO,
            tmp / "bare.log",
            server_cpu,
        ).start()
        bare.wait_http(f"http://127.0.0.1:{bare_port}/healthz")

        # 4. plans and in-process timings (servers idle)
        report["explain"], statements = _run_async(lambda: explain(url, project, secret, queries))
        if args.in_process:
            quiet(args, [server.pid, bare.pid])
            print("timing the service calls in-process ...", flush=True)
            report["in_process"] = _run_async(
                lambda: in_process(
                    url,
                    project,
                    secret,
                    queries,
                    statements,
                    args.in_process,
                    args.sqlite_cache_kib,
                )
            )

        # 5. load, in rounds with the case order rotated
        per_case: dict[str, list[dict[str, Any]]] = {c.name: [] for c in cases}
        threshold = args.max_background or 0.2
        for r in range(args.rounds):
            for case in round_order(cases, r):
                target, p = (server, port) if case.target == "assistantd" else (bare, bare_port)
                assert target is not None and bare is not None
                # A round during which something else used the CPU is measured again, after
                # waiting for quiet, up to --retries times; the last attempt is kept.
                for attempt in range(args.retries + 1):
                    quiet(args, [server.pid, bare.pid])
                    res = drive(case, p, headers, args, target, load_cpu)
                    res["attempt"] = attempt + 1
                    clean = not args.max_background or res["background_cores"] < threshold
                    print(
                        f"round {r + 1}/{args.rounds} {case.name}: "
                        f"{res['requests'] / res['wall_s']:.0f} req/s"
                        + ("" if clean else f" (other load {res['background_cores']:.2f} cores)"),
                        flush=True,
                    )
                    if clean:
                        break
                per_case[case.name].append(res)
        report["results"] = [summarize(c, per_case[c.name]) for c in cases]
        if args.wrk:
            report["wrk"] = {}
            for case in cases:
                target, p = (server, port) if case.target == "assistantd" else (bare, bare_port)
                quiet(args, [server.pid, bare.pid])
                report["wrk"][case.name] = wrk_check(case, p, headers, args, load_cpu)
    finally:
        if bare is not None:
            bare.stop()
        server.stop()

    md = render(report)
    print()
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"list_runs-{args.backend}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    (path.with_suffix(".md")).write_text(md + "\n")
    print(f"\nwrote {path} and {path.with_suffix('.md').name}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
