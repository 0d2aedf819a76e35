"""A Chat Completions server for benchmarks: answers every request with a stream whose shape
is named by the model, ``bench-<chunks>-<interval ms>``. Each chunk's text carries the wall
time at which it was sent (``<unix time>|``), so a client in another process can measure how
long a token took to reach it through assistantd. Loopback only.

``benchtool-<chunks>-<interval ms>`` first calls the request's first tool (arguments
``{"queries": [...]}``, which suit ``file_search`` and any function), then, once the last
message is a tool result, answers like ``bench``: runs that go through ``requires_action`` or
a built-in tool.

    python -m bench.fake_upstream --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def _chunk(
    delta: dict[str, object] | None, finish: str | None = None, usage: bool = False
) -> bytes:
    body: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "bench",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _stream(chunks: int, interval: float) -> AsyncIterator[bytes]:
    yield _chunk({"role": "assistant", "content": ""})
    for _ in range(chunks):
        await asyncio.sleep(interval)
        yield _chunk({"content": f"{time.time():.6f}|"})
    yield _chunk({}, finish="stop")
    yield _chunk(None, usage=True)
    yield b"data: [DONE]\n\n"


async def _tool_call(name: str) -> AsyncIterator[bytes]:
    call = {"index": 0, "id": f"call_{time.time_ns()}", "type": "function"}
    arguments = json.dumps({"queries": ["soak"]})
    yield _chunk({"role": "assistant", "content": None})
    yield _chunk({"tool_calls": [{**call, "function": {"name": name, "arguments": ""}}]})
    yield _chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]})
    yield _chunk({}, finish="tool_calls")
    yield _chunk(None, usage=True)
    yield b"data: [DONE]\n\n"


async def chat(request: Request) -> Response:
    body = await request.json()
    shape, chunks, interval_ms = str(body.get("model", "bench-10-10")).split("-")
    messages = body.get("messages") or [{}]
    tools = body.get("tools") or []
    if shape == "benchtool" and tools and messages[-1].get("role") != "tool":
        return StreamingResponse(
            _tool_call(tools[0]["function"]["name"]), media_type="text/event-stream"
        )
    return StreamingResponse(
        _stream(int(chunks), int(interval_ms) / 1000), media_type="text/event-stream"
    )


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
