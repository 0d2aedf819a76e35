"""Run-engine and streaming figures (docs/benchmarks.md):

- orchestration overhead: run created -> completed, minus the upstream's own time, p50/p99;
- runs completed per second with N concurrent runs on one server process;
- added time to first token: first ``thread.message.delta`` at the client minus the moment the
  upstream sent that token, p50/p99;
- many concurrent streaming runs at a fixed token rate: delivery delay p50/p99, errors, peak
  server memory.

Everything runs on loopback: the fake upstream (``bench.fake_upstream``), one ``assistantd
serve`` process on SQLite, and an asyncio client in this process.

    python -m bench.runs --sequential 200 --concurrent 200 --streams 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Stack:
    """The fake upstream and one assistantd process, with a key."""

    def __init__(self, concurrency: int, **settings: str) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="assistantd-bench-"))
        self.db_path = self.tmp / "bench.db"
        self.log_path = self.tmp / "server.log"
        self.up_port, self.port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTD_")}
        self.env.update(
            ASSISTANTD_DATA_DIR=str(self.tmp / "data"),
            ASSISTANTD_DATABASE_URL=f"sqlite+aiosqlite:///{self.db_path}",
            ASSISTANTD_UPSTREAM_BASE_URL=f"http://127.0.0.1:{self.up_port}/v1",
            ASSISTANTD_RUN_CONCURRENCY=str(concurrency),
            ASSISTANTD_LOG_LEVEL="warning",
        )
        self.env.update({f"ASSISTANTD_{k.upper()}": v for k, v in settings.items()})
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Stack:
        py = sys.executable
        self.procs.append(
            subprocess.Popen([py, "-m", "bench.fake_upstream", "--port", str(self.up_port)])
        )
        out = subprocess.run(
            [py, "-m", "assistantd", "keys", "create", "--project", "bench"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        self.key = out.stdout.strip().splitlines()[-1]
        with open(self.log_path, "wb") as log:
            server = subprocess.Popen(
                [py, "-m", "assistantd", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(server)
        self.server = psutil.Process(server.pid)
        wait_http(f"http://127.0.0.1:{self.port}/healthz")
        return self

    def __exit__(self, *exc: object) -> None:
        for p in reversed(self.procs):
            p.terminate()
            p.wait(timeout=20)

    def client(self, connections: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.port}/v1",
            headers={"Authorization": f"Bearer {self.key}", "OpenAI-Beta": "assistants=v2"},
            timeout=httpx.Timeout(600.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )


async def streamed_run(client: httpx.AsyncClient, assistant_id: str, model: str) -> dict[str, Any]:
    """One streaming create-thread-and-run; returns its timings."""
    started = time.time()
    first_delta: float | None = None
    first_sent: float | None = None
    delays: list[float] = []
    ended: str | None = None
    body = {
        "assistant_id": assistant_id,
        "model": model,
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": "go"}]},
    }
    async with client.stream("POST", "/threads/runs", json=body) as resp:
        resp.raise_for_status()
        event = ""
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "thread.message.delta":
                now = time.time()
                value = json.loads(line[6:])["delta"]["content"][0]["text"]["value"]
                sent = float(value.rstrip("|"))
                delays.append(now - sent)
                if first_delta is None:
                    first_delta, first_sent = now, sent
            elif (
                line.startswith("data: ")
                and event.startswith("thread.run.")
                and event
                in (
                    "thread.run.completed",
                    "thread.run.failed",
                    "thread.run.cancelled",
                    "thread.run.expired",
                    "thread.run.incomplete",
                )
            ):
                ended = event
    return {
        "total": time.time() - started,
        "first_delta": first_delta,
        "first_sent": first_sent,
        "delays": delays,
        "ended": ended,
    }


async def make_assistant(client: httpx.AsyncClient) -> str:
    resp = await client.post("/assistants", json={"model": "bench-1-0"})
    resp.raise_for_status()
    return str(resp.json()["id"])


async def sequential(stack: Stack, n: int, chunks: int, interval_ms: int) -> dict[str, Any]:
    async with stack.client(4) as client:
        assistant = await make_assistant(client)
        model = f"bench-{chunks}-{interval_ms}"
        for _ in range(5):  # warm up
            await streamed_run(client, assistant, model)
        results = [await streamed_run(client, assistant, model) for _ in range(n)]
    upstream = chunks * interval_ms / 1000
    overhead = [(r["total"] - upstream) * 1000 for r in results]
    ttft = [(r["first_delta"] - r["first_sent"]) * 1000 for r in results]
    return {
        "runs": n,
        "upstream_ms": upstream * 1000,
        "overhead_p50_ms": pct(overhead, 50),
        "overhead_p99_ms": pct(overhead, 99),
        "added_ttft_p50_ms": pct(ttft, 50),
        "added_ttft_p99_ms": pct(ttft, 99),
        "failed": sum(r["ended"] != "thread.run.completed" for r in results),
    }


async def concurrent(stack: Stack, n: int, chunks: int, interval_ms: int) -> dict[str, Any]:
    async with stack.client(n + 10) as client:
        assistant = await make_assistant(client)
        model = f"bench-{chunks}-{interval_ms}"
        peak = 0
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, stack.server.memory_info().rss)
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        rss_before = stack.server.memory_info().rss
        started = time.time()
        results = await asyncio.gather(
            *(streamed_run(client, assistant, model) for _ in range(n)), return_exceptions=True
        )
        elapsed = time.time() - started
        done.set()
        await sampler
    ok = [r for r in results if isinstance(r, dict) and r["ended"] == "thread.run.completed"]
    delays = [d * 1000 for r in ok for d in r["delays"]]
    return {
        "runs": n,
        "tokens_per_run": chunks,
        "token_interval_ms": interval_ms,
        "elapsed_s": elapsed,
        "runs_per_s": len(ok) / elapsed,
        "errors": n - len(ok),
        "delivery_p50_ms": pct(delays, 50) if delays else None,
        "delivery_p99_ms": pct(delays, 99) if delays else None,
        "server_rss_before_mb": rss_before / 2**20,
        "server_rss_peak_mb": peak / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    report: dict[str, Any] = {"cpus": os.cpu_count()}
    with Stack(concurrency=max(args.concurrent, args.streams) + 10) as stack:
        # 10 tokens 20 ms apart: a 200 ms upstream answer.
        report["sequential"] = asyncio.run(sequential(stack, args.sequential, 10, 20))
        # The same answer, many runs at once.
        report["concurrent"] = asyncio.run(concurrent(stack, args.concurrent, 10, 20))
        # 20 tokens/s for 2 s per stream.
        report["streams"] = asyncio.run(concurrent(stack, args.streams, 40, 50))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
