"""Server-sent events for a run: the bus's events as ``event:``/``data:`` frames.

A stream ends after the run pauses (``thread.run.requires_action``) or ends, with
``event: done`` / ``data: [DONE]``. A failed run's stream carries ``thread.run.failed`` (with
``last_error``) and then an ``error`` event, so both handler-based and raw-iterating SDK clients
learn of the failure. While nothing happens, keep-alive comments flow; on each quiet period the
run is re-read from the database, so a stream never outlives its run even if events were lost.
When the process is told to stop (SIGTERM), open streams end with an ``error`` event
(``server_shutting_down``) and ``done`` instead of a cut connection: the run goes on elsewhere,
and the SDK raises an error the client handles by polling the run.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent

from assistantd.runs import state
from assistantd.streaming.base import EventBus, LogGap
from assistantd.streaming.memory import TERMINAL_EVENTS

KEEPALIVE_SECONDS = 15.0
SHUTDOWN_CHECK_SECONDS = 1.0
SHUTDOWN_GRACE_SECONDS = 3.0
"""On SIGTERM a stream gets this long to say goodbye (well within uvicorn's 10 s)."""
SHUTDOWN_MESSAGE = (
    "This server process is shutting down; the run goes on. Retrieve the run to follow it."
)
SEND_TIMEOUT_SECONDS = 60.0
STOP_EVENTS = TERMINAL_EVENTS | {"thread.run.requires_action"}

RunLoader = Callable[[], Awaitable[dict[str, Any] | None]]


def _frame(**fields: Any) -> ServerSentEvent:
    # OpenAI frames end lines with a bare LF; sse-starlette defaults to CRLF.
    return ServerSentEvent(sep="\n", **fields)


def _error_event(code: str | None, message: str) -> ServerSentEvent:
    body = {"code": code, "message": message, "param": None, "type": "server_error"}
    return _frame(event="error", data=orjson.dumps(body).decode())


async def run_events(
    bus: EventBus,
    run_id: str,
    after_seq: int,
    load_run: RunLoader,
    shutdown: anyio.Event | None = None,
) -> AsyncIterator[ServerSentEvent]:
    quiet_since = time.monotonic()
    try:
        async for envelope in bus.subscribe(run_id, after_seq, idle_timeout=SHUTDOWN_CHECK_SECONDS):
            if shutdown is not None and shutdown.is_set():
                # This process is going away, the run is not: say so, and end the stream
                # properly so the client polls the run (through another process) instead of
                # seeing a cut connection.
                yield _error_event("server_shutting_down", SHUTDOWN_MESSAGE)
                break
            if envelope is None:
                if time.monotonic() - quiet_since < KEEPALIVE_SECONDS:
                    continue
                quiet_since = time.monotonic()
                run = await load_run()
                if run is None:
                    yield _error_event("server_error", "The run no longer exists.")
                    break
                if run["status"] in state.TERMINAL or run["status"] == "requires_action":
                    # The run ended and its events are gone: report the state it ended in.
                    event = f"thread.run.{run['status']}"
                    yield _frame(event=event, data=orjson.dumps(run).decode())
                    if run["status"] == "failed" and run.get("last_error"):
                        yield _error_event(run["last_error"]["code"], run["last_error"]["message"])
                    break
                yield _frame(comment="keep-alive")
                continue
            quiet_since = time.monotonic()
            yield _frame(event=envelope.event, data=envelope.data.decode())
            if envelope.event in STOP_EVENTS:
                if envelope.event == "thread.run.failed":
                    error = orjson.loads(envelope.data).get("last_error") or {}
                    yield _error_event(error.get("code"), error.get("message", "The run failed."))
                break
    except LogGap as exc:
        yield _error_event("server_error", f"The stream fell behind the run: {exc}")
    yield _frame(event="done", data="[DONE]")


def stream_response(
    bus: EventBus,
    run_id: str,
    after_seq: int,
    load_run: RunLoader,
    send_timeout: float = SEND_TIMEOUT_SECONDS,
) -> EventSourceResponse:
    """``send_timeout``: a frame that cannot be written for this long (the client stopped
    reading) ends the stream, and the request's stream slot is given back."""
    shutdown = anyio.Event()
    return EventSourceResponse(
        run_events(bus, run_id, after_seq, load_run, shutdown),
        sep="\n",
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
        send_timeout=send_timeout,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
