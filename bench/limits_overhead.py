"""What the limits add to every request: ``LimitsMiddleware`` (body and send timeouts, header
stamping, stream-slot release) around a bare ASGI app, and the per-key rate check the auth
dependency makes when ``ASSISTANTD_RATE_LIMIT`` is set, with the in-memory moving window and,
when ``redis-server`` is installed, with the Redis one.

The middleware and the rate check are called directly (no socket, no HTTP parsing). The
in-process variants are measured in this process's CPU time (``time.process_time``); the Redis
variant in wall time, since its cost is mostly waiting for Redis (two scripts per request:
count the hit, then read the window for the headers). Before each round the bench waits (up to
60 s) for other processes to use less than 0.3 cores. Several rounds; median and range.

    .venv/bin/python -m bench.limits_overhead [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from limits import RateLimitItem
from limits.aio import storage as aio_storage
from limits.aio import strategies as aio_strategies
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from assistantd.api.limits import Limits, LimitsMiddleware
from assistantd.config import Settings
from bench._support import print_variants, wait_until_quiet

# Keys within their budget: 100 keys, and a limit the rounds never reach.
RATE = "1000/minute"
KEYS = 100


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(_message: Message) -> None:
    return None


def _scope() -> Scope:
    return {"type": "http", "method": "GET", "path": "/v1/assistants", "headers": []}


async def _time_app(app: Callable[[Scope, Receive, Send], Awaitable[None]], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        await app(_scope(), _receive, _send)
    return (time.process_time() - started) / n * 1e6


def _rate_check(
    limits: Limits, items: list[RateLimitItem], keys: str
) -> Callable[[int], Awaitable[Any]]:
    async def run(n: int) -> None:
        for i in range(n):
            request = Request({**_scope(), "state": {}})
            await limits.check_rate(request, items, f"{keys}:{i % KEYS}", "requests")
            await asyncio.sleep(0)  # a server yields between requests: background work runs

    return run


def _asyncio_memory(items: list[RateLimitItem], keys: str) -> Callable[[int], Awaitable[Any]]:
    """The same two calls on the library's asyncio memory storage, which we do not use."""
    limiter = aio_strategies.MovingWindowRateLimiter(aio_storage.MemoryStorage())

    async def run(n: int) -> None:
        for i in range(n):
            await limiter.hit(items[0], f"{keys}:{i % KEYS}")
            await limiter.get_window_stats(items[0], f"{keys}:{i % KEYS}")
            await asyncio.sleep(0)

    return run


async def _time_check(check: Callable[[int], Awaitable[Any]], n: int, wall: bool) -> float:
    clock = time.perf_counter if wall else time.process_time
    started = clock()
    await check(n)
    return (clock() - started) / n * 1e6


def _start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        cwd=tempfile.mkdtemp(prefix="assistantd-bench-redis-"),
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.terminate()
    return None


def main(requests: int, rounds: int) -> None:
    loop = asyncio.new_event_loop()
    off = Limits(Settings())
    memory = Limits(Settings(rate_limit=RATE))
    redis = _start_redis()
    remote = Limits(Settings(rate_limit=RATE, redis_url=redis[1])) if redis else None
    results: dict[str, list[float]] = {}
    loads = []

    def measure(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    try:
        for round_ in range(rounds):
            keys = f"round{round_}"  # fresh keys each round: none reaches its limit
            loads.append(wait_until_quiet(0.3, 60, []))
            measure("bare app", loop.run_until_complete(_time_app(bare, requests)))
            measure(
                "LimitsMiddleware around it",
                loop.run_until_complete(_time_app(LimitsMiddleware(bare, off), requests)),
            )
            measure(
                "rate check, in memory (CPU)",
                loop.run_until_complete(
                    _time_check(_rate_check(memory, memory.requests, keys), requests, wall=False)
                ),
            )
            measure(
                "(not used: the library's asyncio memory storage, CPU)",
                loop.run_until_complete(
                    _time_check(_asyncio_memory(memory.requests, keys), requests, wall=False)
                ),
            )
            if remote is not None:
                measure(
                    "rate check, Redis on loopback (wall)",
                    loop.run_until_complete(
                        _time_check(_rate_check(remote, remote.requests, keys), requests // 4, True)
                    ),
                )
    finally:
        loop.run_until_complete(memory.close())
        if remote is not None:
            loop.run_until_complete(remote.close())
        loop.close()
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(timeout=10)
    print(f"{requests} requests x {rounds} rounds (Redis: a quarter of them), microseconds each")
    print(f"other load before the rounds, in cores: {', '.join(f'{x:.2f}' for x in loads)}")
    print_variants(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    main(args.requests, args.rounds)
