"""Distributed-mode figures (docs/benchmarks.md, "Scale-out"):

- the scaling curve: runs/s with N concurrent runs, and many concurrent streaming runs at a
  fixed token rate (delivery delay p50/p99, errors), with 1, 2 and 4 worker processes behind
  two API processes and nginx, on PostgreSQL + Redis;
- takeover: a worker is killed with SIGKILL while it executes a run; the time until another
  worker holds the run (its lease in the database changes hands), and until the run completes.

Everything runs on loopback: the fake upstream (``bench.fake_upstream``), the cluster of
``tests/cluster.py`` (the same one the tests use), and an asyncio client in this process.

    python -m bench.cluster --workers 1,2,4 --concurrent 200 --streams 500 --takeovers 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx

from bench.runs import concurrent, free_port, make_assistant, pct, wait_http
from tests.cluster import Cluster, running_cluster


@contextmanager
def fake_upstream() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.fake_upstream", "--port", str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/chat/completions")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class ClusterStack:
    """What ``bench.runs.concurrent`` needs: a client factory and a process to sample."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        import psutil

        assert cluster.apis[0].process is not None
        self.server = psutil.Process(cluster.apis[0].process.pid)

    def client(self, connections: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self.cluster.base_url}/v1",
            headers={
                "Authorization": f"Bearer {self.cluster.keys['alpha']}",
                "OpenAI-Beta": "assistants=v2",
            },
            timeout=httpx.Timeout(600.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )


def scaling(upstream: str, workers: int, n_concurrent: int, n_streams: int) -> dict[str, Any]:
    with running_cluster(
        apis=2,
        workers=workers,
        upstream_base_url=upstream,
        run_concurrency=str(max(n_concurrent, n_streams)),
    ) as cluster:
        stack = ClusterStack(cluster)
        return {
            "workers": workers,
            "concurrent": asyncio.run(concurrent(stack, n_concurrent, 10, 20)),  # type: ignore[arg-type]
            "streams": asyncio.run(concurrent(stack, n_streams, 40, 50)),  # type: ignore[arg-type]
        }


async def _lease_owner(db: asyncpg.Connection, run_id: str) -> str | None:
    row = await db.fetchrow("SELECT lease_owner FROM runs WHERE id = $1", run_id)
    return None if row is None else row["lease_owner"]


async def _takeover_once(cluster: Cluster, dsn: str) -> dict[str, float]:
    db = await asyncpg.connect(dsn)
    stack = ClusterStack(cluster)
    try:
        async with stack.client(4) as client:
            assistant = await make_assistant(client)
            # A 10 s answer (100 tokens, 100 ms apart): long enough to kill it midway.
            body = {
                "assistant_id": assistant,
                "model": "bench-100-100",
                "thread": {"messages": [{"role": "user", "content": "go"}]},
            }
            run = (await client.post("/threads/runs", json=body)).json()
            owner = None
            while owner is None:
                owner = await _lease_owner(db, run["id"])
                await asyncio.sleep(0.02)
            await asyncio.sleep(2)  # midway
            pid = int(owner.split(":")[1])
            victim = next(w for w in cluster.workers if w.process and w.process.pid == pid)
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            victim.process.wait()  # type: ignore[union-attr]
            while True:
                new_owner = await _lease_owner(db, run["id"])
                if new_owner not in (owner, None):
                    break
                await asyncio.sleep(0.05)
            taken = time.monotonic() - killed_at
            while True:
                got = (await client.get(f"/threads/{run['thread_id']}/runs/{run['id']}")).json()
                if got["status"] in ("completed", "failed", "expired", "cancelled", "incomplete"):
                    break
                await asyncio.sleep(0.1)
            finished = time.monotonic() - killed_at
            victim.start()  # back to full strength for the next round
            return {
                "taken_over_s": taken,
                "completed_s": finished,
                "status": got["status"],
                "new_owner_differs": float(new_owner != owner),
            }
    finally:
        await db.close()


def takeover(upstream: str, rounds: int, lease: int) -> dict[str, Any]:
    with running_cluster(
        apis=1, workers=2, upstream_base_url=upstream, run_lease_seconds=str(lease)
    ) as cluster:
        dsn = cluster.env["ASSISTANTD_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
        results = []
        for _ in range(rounds):
            results.append(asyncio.run(_takeover_once(cluster, dsn)))
            time.sleep(3)  # let the restarted worker come up
    taken = [r["taken_over_s"] for r in results]
    return {
        "lease_seconds": lease,
        "rounds": rounds,
        "taken_over_p50_s": pct(taken, 50),
        "taken_over_max_s": max(taken),
        "completed_p50_s": pct([r["completed_s"] for r in results], 50),
        "statuses": [r["status"] for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--takeovers", type=int, default=5)
    args = parser.parse_args()
    report: dict[str, Any] = {"cpus": os.cpu_count(), "scaling": [], "takeover": []}
    with fake_upstream() as upstream:
        for w in [int(x) for x in args.workers.split(",") if x]:
            report["scaling"].append(scaling(upstream, w, args.concurrent, args.streams))
            print(json.dumps(report["scaling"][-1]), file=sys.stderr, flush=True)
        if args.takeovers:
            for lease in (15, 5):
                report["takeover"].append(takeover(upstream, args.takeovers, lease))
                print(json.dumps(report["takeover"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
