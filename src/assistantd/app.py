"""The ASGI application: routers, error handlers, and a lifespan that owns the Runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistantd import __version__, ids
from assistantd.api import errors
from assistantd.api.routes import assistants, files, models, runs, threads, vector_stores
from assistantd.config import Settings
from assistantd.runtime import Runtime


class RequestIdMiddleware:
    """Stamps every response with ``x-request-id`` (the SDK exposes it as ``_request_id``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + ids.new_id("")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


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
    for module in (runs, assistants, threads, files, vector_stores, models):
        app.include_router(module.router)
    app.add_middleware(RequestIdMiddleware)
    return app
