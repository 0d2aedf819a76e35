"""A scripted OpenAI-compatible Chat Completions server, over real HTTP, for deterministic
tests. It stands in for the model, the one part of the system the tests fake.

A test registers a script under a key and puts ``script:<key>`` in the run's instructions; each
model call that carries the key takes the next turn of its script. Calls without a key get an
echo of the last user message. Every request received is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.servers import free_port


@dataclass
class Text:
    chunks: list[str]
    usage: tuple[int, int] | None = (10, 5)
    delay: float = 0.0
    finish: str = "stop"
    before_finish: Callable[[], object] | None = None
    """Called (in a thread) after the last chunk, before the finish reason goes out."""


@dataclass
class ToolCalls:
    calls: list[tuple[str, str]]  # (name, arguments JSON)
    usage: tuple[int, int] | None = (12, 7)
    ids: list[str] | None = None


@dataclass
class Error:
    status: int
    message: str = "scripted failure"


@dataclass
class Garbage:
    """A 200 whose stream carries undecodable data."""


@dataclass
class Broken:
    """A stream that stops mid-answer, without a finish reason."""

    chunks: list[str] = field(default_factory=lambda: ["partial "])


@dataclass
class Hang:
    """Streams ``chunks`` then waits ``seconds`` before finishing (for cancel tests)."""

    chunks: list[str]
    seconds: float = 30.0


Turn = Text | ToolCalls | Error | Garbage | Broken | Hang


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None) -> bytes:
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "scripted",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class ScriptedUpstream:
    def __init__(self) -> None:
        self.scripts: dict[str, deque[Turn]] = defaultdict(deque)
        self.requests: list[dict[str, Any]] = []
        self.by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.aborted: list[str] = []
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ScriptedUpstream:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("scripted upstream did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def script(self, key: str, *turns: Turn) -> str:
        self.scripts[key].extend(turns)
        return f"script:{key}"

    @staticmethod
    def _key(body: dict[str, Any]) -> str | None:
        for message in body.get("messages", []):
            content = message.get("content")
            if (
                message.get("role") == "system"
                and isinstance(content, str)
                and "script:" in content
            ):
                return content.split("script:", 1)[1].split()[0]
        return None

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        key = self._key(body)
        if key is not None:
            self.by_key[key].append(body)
        if key is not None and self.scripts[key]:
            turn = self.scripts[key].popleft()
        else:
            turn = Text([f"echo: {self._last_user(body)}"])
        if isinstance(turn, Error):
            return JSONResponse(
                {
                    "error": {
                        "message": turn.message,
                        "type": "scripted",
                        "param": None,
                        "code": None,
                    }
                },
                status_code=turn.status,
            )
        return StreamingResponse(self._stream(turn, key or ""), media_type="text/event-stream")

    @staticmethod
    def _last_user(body: dict[str, Any]) -> str:
        for message in reversed(body.get("messages", [])):
            if message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else json.dumps(content)
        return ""

    async def _stream(self, turn: Turn, key: str) -> AsyncIterator[bytes]:
        try:
            async for piece in self._pieces(turn):
                yield piece
        except asyncio.CancelledError:
            self.aborted.append(key)
            raise

    async def _pieces(self, turn: Turn) -> AsyncIterator[bytes]:
        yield _chunk({"role": "assistant", "content": ""})
        if isinstance(turn, Text):
            for text in turn.chunks:
                if turn.delay:
                    await asyncio.sleep(turn.delay)
                yield _chunk({"content": text})
            if turn.before_finish is not None:
                await asyncio.to_thread(turn.before_finish)
            yield _chunk({}, finish=turn.finish)
            if turn.usage:
                yield _chunk(None, usage=turn.usage)
        elif isinstance(turn, ToolCalls):
            for i, (name, args) in enumerate(turn.calls):
                call_id = turn.ids[i] if turn.ids else f"call_scripted{i}"
                head = {
                    "index": i,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                yield _chunk({"tool_calls": [head]})
                half = len(args) // 2
                for part in (args[:half], args[half:]):
                    yield _chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
            yield _chunk({}, finish="tool_calls")
            if turn.usage:
                yield _chunk(None, usage=turn.usage)
        elif isinstance(turn, Garbage):
            yield b"data: {this is not json\n\n"
        elif isinstance(turn, Broken):
            for text in turn.chunks:
                yield _chunk({"content": text})
            return
        elif isinstance(turn, Hang):
            for text in turn.chunks:
                yield _chunk({"content": text})
            await asyncio.sleep(turn.seconds)
            yield _chunk({}, finish="stop")
        yield b"data: [DONE]\n\n"
