"""Request dependencies: the runtime, the caller's project, bodies and list parameters."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from assistantd.api import limits
from assistantd.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from assistantd.runtime import Runtime
from assistantd.schemas import param_and_message
from assistantd.storage.objects import PageQuery

MAX_JSON_BODY = 32 * 1024 * 1024


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_project(request: Request, runtime: RuntimeDep) -> str:
    header = request.headers.get("authorization")
    if not header or not header.lower().startswith("bearer ") or not header[7:].strip():
        # No usable key (absent, empty, or not Bearer): one answer, so the code matches the text.
        raise AuthenticationError(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    secret = header[7:].strip()
    configured = runtime.settings.api_key
    project: str | None
    is_configured = bool(configured and hmac.compare_digest(secret.encode(), configured.encode()))
    if is_configured:
        project = runtime.default_project_id
        assert project is not None
    else:
        project = await runtime.store.keys.project_for(secret)
    if project is None:
        shown = secret[:6] + "*" * 4 + secret[-4:] if len(secret) > 10 else "*" * len(secret)
        raise AuthenticationError(f"Incorrect API key provided: {shown}.")
    await limits.admit(request, limits.caller_id(secret, project, configured_key=is_configured))
    _reject_nul(request)
    return project


# What a path parameter names, for the "No <object> found with id '<id>'." message.
_PATH_OBJECTS = {
    "assistant_id": "assistant",
    "thread_id": "thread",
    "message_id": "message",
    "run_id": "run",
    "step_id": "run step",
    "file_id": "file",
    "vector_store_id": "vector store",
    "batch_id": "vector store file batch",
}


def _reject_nul(request: Request) -> None:
    """Answer ids and query values holding a NUL character here, before any query sees them.

    No id contains NUL, and PostgreSQL refuses it in a query parameter, so without this check
    such a value became a 500 on PostgreSQL (and a 404 on SQLite). Every authenticated route
    depends on ``get_project``, which makes this the one place that covers them all.
    """
    params = request.path_params
    for name, value in params.items():
        if "\x00" in str(value):
            kind = _PATH_OBJECTS.get(name, "object")
            if name == "file_id" and "vector_store_id" in params:
                kind = "vector store file"
            raise NotFoundError(kind, str(value))
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise InvalidRequestError(
                f"Invalid value for '{name}': a NUL character is not allowed.", param=name
            )


ProjectDep = Annotated[str, Depends(get_project)]


def _too_large() -> PayloadTooLargeError:
    return PayloadTooLargeError(f"Request body too large: limit is {MAX_JSON_BODY} bytes.")


async def read_body(
    request: Request, model: type[BaseModel], *, optional: bool = False
) -> dict[str, Any]:
    """Parse and validate a JSON body; return what the client sent, as a dict."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_JSON_BODY:
        raise _too_large()
    # Count while reading: a chunked body has no Content-Length, and reading it whole first
    # would hold any amount of memory before the limit was checked.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if not optional:
            raise InvalidRequestError("You must provide a JSON request body.")
        data: Any = {}
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequestError(
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.)"
            ) from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        param, message = param_and_message(exc)
        raise InvalidRequestError(message, param=param) from None
    return parsed.model_dump(exclude_unset=True, mode="json", by_alias=True)


def page_query(request: Request, *, max_limit: int = 100, default_limit: int = 20) -> PageQuery:
    params = request.query_params
    raw_limit = params.get("limit")
    limit = default_limit
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise InvalidRequestError(
                f"Invalid 'limit': expected an integer, but got '{raw_limit}' instead.",
                param="limit",
            ) from None
        if not 1 <= limit <= max_limit:
            raise InvalidRequestError(
                f"Invalid 'limit': expected a value between 1 and {max_limit}, "
                f"but got {limit} instead.",
                param="limit",
            )
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError(
            f"Invalid value for 'order': expected one of 'asc' or 'desc', but got '{order}'.",
            param="order",
        )
    return PageQuery(
        limit=limit,
        order="asc" if order == "asc" else "desc",
        after=params.get("after") or None,
        before=params.get("before") or None,
    )


PageDep = Annotated[PageQuery, Depends(page_query)]


INCLUDABLE = ("step_details.tool_calls[*].file_search.results[*].content",)


def include_param(request: Request) -> list[str]:
    values = request.query_params.getlist("include[]") + request.query_params.getlist("include")
    for value in values:
        if value not in INCLUDABLE:
            raise InvalidRequestError(
                f"Invalid value for 'include[]': '{value}'. Supported values are: "
                + ", ".join(f"'{v}'" for v in INCLUDABLE)
                + ".",
                param="include[]",
            )
    return values


IncludeDep = Annotated[list[str], Depends(include_param)]
