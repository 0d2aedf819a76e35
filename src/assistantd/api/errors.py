"""The one place where any failure becomes an OpenAI error envelope.

Every error leaves as ``{"error": {"message", "type", "param", "code"}}`` with the right status.
A 500 never carries a traceback or an internal message: the details go to the log, keyed by
the request id the client also receives.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistantd.api.responses import json_response
from assistantd.errors import APIError, InvalidRequestError, ServerError, ServiceUnavailableError
from assistantd.storage.db import DatabaseUnavailable, connection_lost

log = logging.getLogger("assistantd.api")


def error_response(exc: APIError, headers: dict[str, str] | None = None) -> Response:
    return json_response(exc.body(), status_code=exc.status, headers=headers)


def _status_error(status: int, message: str) -> APIError:
    err = InvalidRequestError(message) if status < 500 else ServerError(message)
    err.status = status
    return err


async def _on_api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    headers = {"x-should-retry": "false"} if exc.status == 400 else None
    return error_response(exc, headers)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    msg = first.get("msg", "Invalid request")
    return error_response(InvalidRequestError(f"Invalid value for '{param}': {msg}", param=param))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        # OpenAI's own wording, e.g. "Invalid URL (GET /v1/nope)".
        message = f"Invalid URL ({request.method} {request.url.path})"
    elif exc.status_code == 405:
        message = "Method not allowed for this route."
    else:
        message = str(exc.detail)
    return error_response(_status_error(exc.status_code, message), dict(exc.headers or {}))


def _log_unexpected(method: str, path: str, exc: BaseException) -> None:
    log.error(
        "unhandled error on %s %s", method, path, exc_info=(type(exc), exc, exc.__traceback__)
    )


def _server_error() -> Response:
    return error_response(
        ServerError("The server had an error while processing your request. Sorry about that!"),
        {"x-should-retry": "false"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    _log_unexpected(request.method, request.url.path, exc)
    return _server_error()


async def _on_database_error(request: Request, exc: Exception) -> Response:
    """A lost or refused database connection is 503, which the SDK retries (after a second):
    the statement that met it did not commit, and by the retry the pool has replaced its
    connections or the database is back. Any other database error is a 500 like the rest."""
    if not connection_lost(exc):
        return await _on_unexpected(request, exc)
    log.warning(
        "database unreachable on %s %s: %s", request.method, request.url.path, exc.__cause__ or exc
    )
    return error_response(
        ServiceUnavailableError(
            "The server could not reach its database. Please retry your request."
        ),
        {"x-should-retry": "true", "retry-after": "1"},
    )


class UnexpectedErrorMiddleware:
    """Answers an unhandled exception with the 500 envelope, and does not re-raise it.

    Starlette's own last-resort handler re-raises after responding, and uvicorn then closes the
    connection: a client that had already sent its next request on that keep-alive connection
    saw it reset. Here the exception ends with the response. Once a response has started (a
    stream), nothing more can be sent, so the exception goes on to the server as before.
    Installed before ``app.py`` adds its request-id middleware, it runs inside it, so a 500
    carries ``x-request-id`` like every other answer (Starlette's handler runs outside it).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            _log_unexpected(scope.get("method", ""), scope.get("path", ""), exc)
            await _server_error()(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(DatabaseUnavailable, _on_database_error)
    app.add_exception_handler(DBAPIError, _on_database_error)
    # Still registered: it covers anything raised outside the middleware below.
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(UnexpectedErrorMiddleware)
