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
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistantd.api.responses import json_response
from assistantd.errors import APIError, InvalidRequestError, ServerError

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


async def _on_http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = "Invalid URL: this route does not exist."
    elif exc.status_code == 405:
        message = "Method not allowed for this route."
    else:
        message = str(exc.detail)
    return error_response(_status_error(exc.status_code, message), dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(
        ServerError("The server had an error while processing your request. Sorry about that!"),
        {"x-should-retry": "false"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
