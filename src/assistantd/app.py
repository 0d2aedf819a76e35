"""The ASGI application: routers, error handlers, and a lifespan that owns the Runtime."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistantd import __version__, ids
from assistantd.api import errors, limits
from assistantd.api.routes import assistants, files, models, ops, runs, threads, vector_stores
from assistantd.config import Settings
from assistantd.observability import logs
from assistantd.observability.metrics import UNMATCHED_ROUTE, Metrics
from assistantd.runtime import Runtime

access_log = logging.getLogger("assistantd.access")


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/threads/{thread_id}``), never the raw path:
    metric labels must stay few."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestIdMiddleware:
    """Stamps every response with ``x-request-id`` (the SDK exposes it as ``_request_id``),
    binds it to the request's log records, counts the request in ``metrics`` (when given)
    and writes one access line at ``access_level``."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics | None = None, access_level: int = logging.DEBUG
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_level = access_level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + ids.new_id("")
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        with logs.bind_request(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method, route = scope["method"], route_template(scope)
        if self.metrics is not None:
            self.metrics.observe_request(method, route, status, seconds)
        if access_log.isEnabledFor(self.access_level):
            ms = round(seconds * 1000, 1)
            access_log.log(
                self.access_level,
                "%s %s %s %.1fms",
                method,
                scope["path"],
                status,
                ms,
                extra={
                    "method": method,
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": ms,
                },
            )


def create_app(
    settings: Settings, runtime: Runtime | None = None, *, run_worker: bool = True
) -> FastAPI:
    owned = runtime is None
    rt = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned:
            await rt.start(run_worker=run_worker)
        try:
            yield
        finally:
            if owned:
                await rt.close()

    app = FastAPI(
        title="assistantd",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.runtime = rt
    errors.install(app)
    # `runs` first: its POST /v1/threads/runs must win over POST /v1/threads/{thread_id}.
    for module in (runs, assistants, threads, files, vector_stores, models, ops):
        app.include_router(module.router)
    metrics: Metrics | None = None
    if settings.metrics:
        metrics = rt.executor.metrics
        metrics.watch_database(rt.db)
        app.include_router(ops.metrics_router)
    # One access line per request: a JSON log goes to a pipeline that wants them; in a
    # terminal they are noise unless asked for with ASSISTANTD_LOG_LEVEL=debug.
    access_level = logging.INFO if settings.log_format == "json" else logging.DEBUG
    limits.install(app, settings)  # inside the request id: its log lines carry the id
    app.add_middleware(RequestIdMiddleware, metrics=metrics, access_level=access_level)
    return app
