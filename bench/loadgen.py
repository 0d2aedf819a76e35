"""A small closed-loop HTTP/1.1 load generator: ``python -m bench.loadgen SPEC_JSON``.

It keeps ``concurrency`` keep-alive connections busy until a fixed number of requests has been
answered, one request in flight per connection, and prints one JSON object on stdout: the
latency of every measured request (microseconds), the wall time of the measured phase and the
CPU time this process spent in it, so the caller can show that the generator is not the
bottleneck.

Why not httpx: its per-request overhead (~100+ us of Python) would be of the same order as the
server's, on a machine with only two cores. This client is an ``asyncio.Protocol`` on uvloop
(already installed with ``uvicorn[standard]``) that writes one pre-built request and parses
only the status line and ``content-length``, so it costs a few microseconds per request. It is
meant for the endpoints of this benchmark (fixed-length responses), not as a general client.

SPEC_JSON keys: host, port, path, headers (dict), requests, warmup, concurrency,
expect_length (bytes of the body, checked on every response), cpu (optional CPU to pin to).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from array import array
from typing import Any, cast


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class _Shared:
    def __init__(self, total: int, record: bool, expect_length: int | None) -> None:
        self.remaining = total
        self.outstanding = 0
        self.record = record
        self.expect_length = expect_length
        self.latencies = array("q")
        self.errors: list[str] = []
        self.done = asyncio.get_running_loop().create_future()

    def finished_one(self) -> None:
        self.outstanding -= 1
        if self.remaining == 0 and self.outstanding == 0 and not self.done.done():
            self.done.set_result(None)


class _Conn(asyncio.Protocol):
    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.started = 0
        self.shared: _Shared | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        shared = self.shared
        if shared is not None and self.started:
            shared.errors.append(f"connection lost mid-request: {exc!r}")
            self.started = 0
            shared.finished_one()

    def start(self, shared: _Shared) -> None:
        self.shared = shared
        self._next()

    def _next(self) -> None:
        shared = self.shared
        assert shared is not None and self.transport is not None
        if shared.remaining <= 0 or self.lost:
            return
        shared.remaining -= 1
        shared.outstanding += 1
        self.started = time.perf_counter_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self.buf[:head_end]).lower()
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            self._fail("response without content-length")
            return
        line_end = head.find(b"\r\n", start + 2)
        length = int(head[start + 17 : line_end if line_end > 0 else len(head)])
        end = head_end + 4 + length
        if len(self.buf) < end:
            return
        elapsed = time.perf_counter_ns() - self.started
        shared = self.shared
        assert shared is not None
        status = head[9:12]
        if status != b"200":
            shared.errors.append(f"status {status.decode()}: {bytes(self.buf[:end])[:300]!r}")
        elif shared.expect_length is not None and length != shared.expect_length:
            shared.errors.append(f"body of {length} bytes, expected {shared.expect_length}")
        elif shared.record:
            shared.latencies.append(elapsed // 1000)
        del self.buf[:end]
        self.started = 0
        shared.finished_one()
        self._next()

    def _fail(self, why: str) -> None:
        if self.shared is not None:
            self.shared.errors.append(why)
        if self.transport is not None:
            self.transport.close()


async def _phase(conns: list[_Conn], total: int, record: bool, expect: int | None) -> _Shared:
    shared = _Shared(total, record, expect)
    if total == 0:
        return shared
    for c in conns:
        c.start(shared)
    # A stuck connection must fail the case, never hang the benchmark.
    await asyncio.wait_for(shared.done, timeout=max(60.0, total / 50))
    return shared


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    headers = {"Host": f"{spec['host']}:{spec['port']}", **spec.get("headers", {})}
    request = (
        f"GET {spec['path']} HTTP/1.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    ).encode()
    conns: list[_Conn] = []
    for _ in range(int(spec["concurrency"])):
        _t, proto = await loop.create_connection(
            lambda: _Conn(request), spec["host"], int(spec["port"])
        )
        await asyncio.wait_for(proto.ready, timeout=10)
        conns.append(proto)
    expect = spec.get("expect_length")
    warm = await _phase(conns, int(spec.get("warmup", 0)), False, expect)
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    measured = await _phase(conns, int(spec["requests"]), True, expect)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    for c in conns:
        assert c.transport is not None
        c.transport.close()
    return {
        "requests": len(measured.latencies),
        "wall_s": wall,
        "client_cpu_s": cpu,
        "errors": (warm.errors + measured.errors)[:20],
        "error_count": len(warm.errors) + len(measured.errors),
        "latencies_us": measured.latencies.tolist(),
    }


def main() -> int:
    spec = json.loads(sys.argv[1])
    if spec.get("cpu") is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(spec["cpu"])})
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.Runner()
    with runner:
        result = runner.run(run(spec))
    sys.stdout.write(json.dumps(result))
    return 0 if result["error_count"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
