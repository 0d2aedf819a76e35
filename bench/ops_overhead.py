"""What the operations layer adds to every request: the request-id middleware as it was (an id
and a header), with Prometheus counting (route template, counter, histogram), and with a JSON
access line written (to /dev/null).

The middleware wraps a bare ASGI app that answers 200 at once, and is called directly (no
socket, no HTTP parsing), so the figures are the middleware's own cost per request, in
microseconds of this process's CPU time (``time.process_time``: other processes on a shared
machine inflate it far less than wall time). Before each round the bench waits (up to 60 s)
for other processes to use less than 0.3 cores. Several rounds; median and range.

    .venv/bin/python -m bench.ops_overhead [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable

from starlette.types import Message, Receive, Scope, Send

from assistantd.app import RequestIdMiddleware
from assistantd.observability import logs
from assistantd.observability.metrics import Metrics
from bench._support import print_variants, wait_until_quiet


class _Route:
    path = "/v1/threads/{thread_id}/runs/{run_id}"


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    scope["route"] = _Route()  # what the router sets once it matched
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(_message: Message) -> None:
    return None


def _scope() -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/v1/threads/thread_01/runs/run_01",
        "headers": [],
    }


async def _time(app: Callable[[Scope, Receive, Send], Awaitable[None]], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        await app(_scope(), _receive, _send)
    return (time.process_time() - started) / n * 1e6


def main(requests: int, rounds: int) -> None:
    access = logging.getLogger("assistantd.access")
    variants: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
        "bare app": bare,
        "request id only (metrics off, no access line)": RequestIdMiddleware(bare),
        "+ Prometheus counting": RequestIdMiddleware(bare, metrics=Metrics()),
        "+ Prometheus + JSON access line": RequestIdMiddleware(
            bare, metrics=Metrics(), access_level=logging.INFO
        ),
    }
    loop = asyncio.new_event_loop()
    results: dict[str, list[float]] = {name: [] for name in variants}
    loads = []
    with open(os.devnull, "w") as sink:
        handler = logging.StreamHandler(sink)
        handler.addFilter(logs.ContextFilter())
        handler.setFormatter(logs.JSONLineFormatter())
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False
        for app in variants.values():
            loop.run_until_complete(_time(app, requests // 10))  # warm up
        for _ in range(rounds):
            loads.append(wait_until_quiet(0.3, 60, []))
            for name, app in variants.items():
                results[name].append(loop.run_until_complete(_time(app, requests)))
    loop.close()
    print(f"{requests} requests x {rounds} rounds, CPU microseconds per request")
    print(f"other load before the rounds, in cores: {', '.join(f'{x:.2f}' for x in loads)}")
    print_variants(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    main(args.requests, args.rounds)
