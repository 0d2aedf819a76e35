"""Every error path of every route answers with OpenAI's envelope, over real HTTP.

``ROUTES`` says, for each (method, path) the app serves, what each path parameter names and,
for routes that take a JSON body, a valid body and a field to get wrong. The table is checked
against the app's own routes, so a new route without error cases fails here. Then, per route:
no key and a wrong key give 401; an unknown id in each path position gives the exact 404;
bodies that are not JSON, have an unknown field or a field of the wrong type give 400 naming
the field; list parameters are checked; a wrong method gives 405.

Most of this runs against a server with no worker (``--no-worker``): its runs stay ``queued``,
so a thread stays locked for as long as a test needs it to.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from assistantd.api.deps import MAX_JSON_BODY
from assistantd.app import create_app
from assistantd.config import Settings
from tests.servers import Server, running_server

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI < 0.137.2, where app.routes is still a flat list of routes
    iter_route_contexts = None  # type: ignore[assignment]

ENVELOPE_KEYS = {"message", "type", "param", "code"}
MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
INVALID_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)
UNCHECKED = object()
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"


# --- the envelope --------------------------------------------------------------------------------


def assert_error(
    response: httpx.Response,
    status: int,
    *,
    message: str | None = None,
    param: object = UNCHECKED,
    code: object = UNCHECKED,
) -> dict[str, Any]:
    """Check status, content type and the exact envelope; return the ``error`` object."""
    where = f"{response.request.method} {response.request.url}"
    assert response.status_code == status, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/json", where
    assert response.headers.get("x-request-id", "").startswith("req_"), where
    body = response.json()
    assert isinstance(body, dict) and list(body) == ["error"], f"{where}: {body}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) == ENVELOPE_KEYS, f"{where}: {body}"
    assert isinstance(error["message"], str) and error["message"], where
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error"), where
    assert error["param"] is None or isinstance(error["param"], str), where
    assert error["code"] is None or isinstance(error["code"], str), where
    if message is not None:
        assert error["message"] == message, where
    if param is not UNCHECKED:
        assert error["param"] == param, where
    if code is not UNCHECKED:
        assert error["code"] == code, where
    return error


# --- the route table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """Real objects the paths can name, made as project alpha on the idle server."""

    assistant: str
    thread: str  # has `message`, no runs
    message: str
    run_thread: str  # has `run`, which stays queued (the idle server has no worker)
    run: str
    file: str
    vector_store: str  # holds `file`, added again by `batch`
    batch: str


Body = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    objects: tuple[str, ...] = ()
    """What each path parameter names, in path order (``No <object> found ...``)."""
    body: Body | None = None
    """A valid JSON body, for routes that read one."""
    body_required: bool = False
    wrong_type: tuple[str, Any] | None = None
    """A field and a value of the wrong JSON type for it."""
    is_list: bool = False
    max_limit: int = 100
    include: bool = False
    """Takes ``include[]``."""
    multipart: bool = False
    """Takes a multipart/form-data upload instead of JSON."""
    public: bool = False


ROUTES: dict[tuple[str, str], Case] = {
    ("GET", "/healthz"): Case(public=True),
    ("GET", "/readyz"): Case(public=True),
    ("GET", "/metrics"): Case(public=True),
    ("GET", "/v1/models"): Case(),
    ("GET", "/v1/assistants"): Case(is_list=True),
    ("POST", "/v1/assistants"): Case(
        body=lambda w: {"model": "gpt-4o"}, body_required=True, wrong_type=("model", 1)
    ),
    ("GET", "/v1/assistants/{assistant_id}"): Case(("assistant",)),
    ("POST", "/v1/assistants/{assistant_id}"): Case(
        ("assistant",), body=lambda w: {}, wrong_type=("name", 1)
    ),
    ("DELETE", "/v1/assistants/{assistant_id}"): Case(("assistant",)),
    ("POST", "/v1/threads"): Case(body=lambda w: {}, wrong_type=("metadata", "x")),
    ("POST", "/v1/threads/runs"): Case(
        body=lambda w: {"assistant_id": w.assistant},
        body_required=True,
        wrong_type=("thread", "x"),
    ),
    ("GET", "/v1/threads/{thread_id}"): Case(("thread",)),
    ("POST", "/v1/threads/{thread_id}"): Case(
        ("thread",), body=lambda w: {}, wrong_type=("metadata", 1)
    ),
    ("DELETE", "/v1/threads/{thread_id}"): Case(("thread",)),
    ("GET", "/v1/threads/{thread_id}/messages"): Case(("thread",), is_list=True),
    ("POST", "/v1/threads/{thread_id}/messages"): Case(
        ("thread",),
        body=lambda w: {"role": "user", "content": "hi"},
        body_required=True,
        wrong_type=("content", 1),
    ),
    ("GET", "/v1/threads/{thread_id}/messages/{message_id}"): Case(("thread", "message")),
    ("POST", "/v1/threads/{thread_id}/messages/{message_id}"): Case(
        ("thread", "message"), body=lambda w: {}, wrong_type=("metadata", [])
    ),
    ("DELETE", "/v1/threads/{thread_id}/messages/{message_id}"): Case(("thread", "message")),
    ("GET", "/v1/threads/{thread_id}/runs"): Case(("thread",), is_list=True),
    ("POST", "/v1/threads/{thread_id}/runs"): Case(
        ("thread",),
        body=lambda w: {"assistant_id": w.assistant},
        body_required=True,
        wrong_type=("tools", {}),
        include=True,
    ),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}"): Case(("thread", "run")),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}"): Case(
        ("thread", "run"), body=lambda w: {}, wrong_type=("metadata", "x")
    ),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}/cancel"): Case(("thread", "run")),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"): Case(
        ("thread", "run"),
        body=lambda w: {"tool_outputs": []},
        body_required=True,
        wrong_type=("tool_outputs", "x"),
    ),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps"): Case(
        ("thread", "run"), is_list=True, include=True
    ),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}"): Case(
        ("thread", "run", "run step"), include=True
    ),
    ("GET", "/v1/files"): Case(is_list=True, max_limit=10_000),
    ("POST", "/v1/files"): Case(multipart=True),
    ("GET", "/v1/files/{file_id}"): Case(("file",)),
    ("DELETE", "/v1/files/{file_id}"): Case(("file",)),
    ("GET", "/v1/files/{file_id}/content"): Case(("file",)),
    ("GET", "/v1/vector_stores"): Case(is_list=True),
    ("POST", "/v1/vector_stores"): Case(body=lambda w: {}, wrong_type=("name", 1)),
    ("GET", "/v1/vector_stores/{vector_store_id}"): Case(("vector store",)),
    ("POST", "/v1/vector_stores/{vector_store_id}"): Case(
        ("vector store",), body=lambda w: {}, wrong_type=("name", 1)
    ),
    ("DELETE", "/v1/vector_stores/{vector_store_id}"): Case(("vector store",)),
    ("POST", "/v1/vector_stores/{vector_store_id}/search"): Case(
        ("vector store",),
        body=lambda w: {"query": "x"},
        body_required=True,
        wrong_type=("rewrite_query", "yes"),
    ),
    ("GET", "/v1/vector_stores/{vector_store_id}/files"): Case(("vector store",), is_list=True),
    ("POST", "/v1/vector_stores/{vector_store_id}/files"): Case(
        ("vector store",),
        body=lambda w: {"file_id": w.file},
        body_required=True,
        wrong_type=("file_id", 1),
    ),
    ("GET", "/v1/vector_stores/{vector_store_id}/files/{file_id}"): Case(
        ("vector store", "vector store file")
    ),
    ("POST", "/v1/vector_stores/{vector_store_id}/files/{file_id}"): Case(
        ("vector store", "vector store file"),
        body=lambda w: {"attributes": {}},
        body_required=True,
        wrong_type=("attributes", "x"),
    ),
    ("DELETE", "/v1/vector_stores/{vector_store_id}/files/{file_id}"): Case(
        ("vector store", "vector store file")
    ),
    ("GET", "/v1/vector_stores/{vector_store_id}/files/{file_id}/content"): Case(
        ("vector store", "vector store file")
    ),
    ("POST", "/v1/vector_stores/{vector_store_id}/file_batches"): Case(
        ("vector store",),
        body=lambda w: {"file_ids": [w.file]},
        body_required=True,
        wrong_type=("file_ids", "x"),
    ),
    ("GET", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}"): Case(
        ("vector store", "vector store file batch")
    ),
    ("POST", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel"): Case(
        ("vector store", "vector store file batch")
    ),
    ("GET", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files"): Case(
        ("vector store", "vector store file batch"), is_list=True
    ),
}

UNKNOWN_ID = {
    "assistant": "asst_0000000000unknown00000",
    "thread": "thread_0000000000unknown00000",
    "message": "msg_0000000000unknown00000",
    "run": "run_0000000000unknown00000",
    "run step": "step_0000000000unknown00000",
    "file": "file-0000000000unknown00000",
    "vector store": "vs_0000000000unknown00000",
    "vector store file": "file-0000000000unknown00000",
    "vector store file batch": "vsfb_0000000000unknown00000",
}


def served_routes() -> set[tuple[str, str]]:
    """(method, path) of every APIRoute the app serves, HEAD aside."""
    app = create_app(Settings(_env_file=None, database_url="sqlite+aiosqlite:///:memory:"))  # type: ignore[call-arg]
    if iter_route_contexts is not None:
        flat = [(c.original_route, c.path, c.methods) for c in iter_route_contexts(app.routes)]
    else:
        flat = [(r, getattr(r, "path", None), getattr(r, "methods", None)) for r in app.routes]
    return {
        (method, str(path))
        for route, path, methods in flat
        if isinstance(route, APIRoute)
        for method in methods or ()
        if method != "HEAD"
    }


def test_table_covers_every_route() -> None:
    served = served_routes()
    assert ("GET", "/v1/assistants") in served, "route enumeration found nothing useful"
    assert sorted(served - set(ROUTES)) == [], "routes with no error cases in ROUTES"
    assert sorted(set(ROUTES) - served) == [], "ROUTES names routes the app does not serve"
    for (_method, path), case in ROUTES.items():
        assert path.count("{") == len(case.objects), path


def over_routes(keep: Callable[[Case], bool] = lambda case: True) -> pytest.MarkDecorator:
    """Parametrize a test over (method, path) of the routes whose case passes ``keep``."""
    routes = sorted(k for k, case in ROUTES.items() if keep(case))
    return pytest.mark.parametrize(("method", "path"), routes, ids=[f"{m} {p}" for m, p in routes])


ROUTE_PARAMS = over_routes()


# --- servers and the objects the paths name ------------------------------------------------------


def backend_of(server: Server) -> str:
    return "sqlite" if server.env["ASSISTANTD_DATABASE_URL"].startswith("sqlite") else "postgres"


@pytest.fixture(scope="module")
def idle_server(server: Server) -> Iterator[Server]:
    """A server on the same backend as ``server``, without a worker: runs stay queued."""
    with running_server(backend_of(server), serve_args=["--no-worker"]) as srv:
        yield srv


def headers_for(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"}


@pytest.fixture(scope="module")
def idle(idle_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=idle_server.base_url, headers=headers_for(idle_server.keys["alpha"]), timeout=30
    ) as c:
        yield c


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def world(idle: httpx.Client) -> World:
    assistant = ok(idle.post("/v1/assistants", json={"model": "gpt-4o"}))["id"]
    thread = ok(idle.post("/v1/threads", json={"messages": [{"role": "user", "content": "x"}]}))
    message = ok(idle.get(f"/v1/threads/{thread['id']}/messages"))["data"][0]["id"]
    run_thread = ok(idle.post("/v1/threads", json={}))["id"]
    run = ok(idle.post(f"/v1/threads/{run_thread}/runs", json={"assistant_id": assistant}))
    assert run["status"] == "queued"
    file = ok(
        idle.post("/v1/files", files={"file": ("a.txt", b"hi")}, data={"purpose": "user_data"})
    )
    vector_store = ok(idle.post("/v1/vector_stores", json={"file_ids": [file["id"]]}))["id"]
    batch = ok(
        idle.post(f"/v1/vector_stores/{vector_store}/file_batches", json={"file_ids": [file["id"]]})
    )["id"]
    return World(
        assistant, thread["id"], message, run_thread, run["id"], file["id"], vector_store, batch
    )


def real_ids(world: World, path: str) -> dict[str, str]:
    """Real ids for every parameter of ``path`` (a step id too, though none exists)."""
    on_run = "{run_id}" in path
    return {
        "assistant": world.assistant,
        "thread": world.run_thread if on_run else world.thread,
        "message": world.message,
        "run": world.run,
        "run step": UNKNOWN_ID["run step"],
        "file": world.file,
        "vector store": world.vector_store,
        "vector store file": world.file,
        "vector store file batch": world.batch,
    }


def fill(path: str, ids: list[str]) -> str:
    """The path with its parameters replaced by ``ids`` (percent-encoded)."""
    out = path
    for value in ids:
        start = out.index("{")
        out = out[:start] + quote(value, safe="") + out[out.index("}", start) + 1 :]
    return out


def route_matches(method: str, url: str) -> bool:
    """Whether some route in ROUTES serves ``method`` on this concrete ``url``."""
    for m, path in ROUTES:
        pattern = re.sub(r"\{[a-z_]+\}", "[^/]+", path)
        if m == method and re.fullmatch(pattern, url):
            return True
    return False


def send(
    client: httpx.Client, method: str, url: str, *, body: Any = None, **kwargs: Any
) -> httpx.Response:
    if body is not None:
        kwargs["json"] = body
    return client.request(method, url, **kwargs)


def concrete(world: World, method: str, path: str) -> tuple[str, Any]:
    case = ROUTES[(method, path)]
    ids = real_ids(world, path)
    url = fill(path, [ids[o] for o in case.objects])
    return url, case.body(world) if case.body else None


# --- authentication ------------------------------------------------------------------------------


@ROUTE_PARAMS
def test_no_key_is_401(idle_server: Server, world: World, method: str, path: str) -> None:
    url, body = concrete(world, method, path)
    with httpx.Client(base_url=idle_server.base_url, timeout=30) as anonymous:
        response = send(anonymous, method, url, body=body)
        if ROUTES[(method, path)].public:
            assert response.status_code == 200
            return
        assert_error(response, 401, message=MISSING_KEY_MESSAGE, param=None, code="missing_api_key")
        for header in ("Basic c2stYWQtZm9vOg==", "Bearer", "Token sk-ad-x"):
            response = send(anonymous, method, url, body=body, headers={"Authorization": header})
            assert_error(response, 401, message=MISSING_KEY_MESSAGE, code="missing_api_key")


@over_routes(lambda case: not case.public)
def test_wrong_key_is_401(idle_server: Server, world: World, method: str, path: str) -> None:
    url, _body = concrete(world, method, path)
    with httpx.Client(
        base_url=idle_server.base_url, headers=headers_for("sk-ad-wrong-key-0123456789"), timeout=30
    ) as wrong:
        # Even a body that is not JSON: the key is checked first.
        response = wrong.request(method, url, content=b"{not json")
    error = assert_error(response, 401, param=None, code="invalid_api_key")
    assert error["message"] == "Incorrect API key provided: sk-ad-****6789."


# --- unknown ids ---------------------------------------------------------------------------------


@over_routes(lambda case: bool(case.objects))
def test_unknown_id_in_each_path_position_is_404(
    idle: httpx.Client, world: World, method: str, path: str
) -> None:
    case = ROUTES[(method, path)]
    real = real_ids(world, path)
    body = case.body(world) if case.body else None
    for position, kind in enumerate(case.objects):
        for unknown in (UNKNOWN_ID[kind], f"{UNKNOWN_ID[kind][:-1]}\x00"):
            ids = [real[o] for o in case.objects]
            ids[position] = unknown
            response = send(idle, method, fill(path, ids), body=body)
            assert_error(response, 404, message=f"No {kind} found with id '{unknown}'.", code=None)


@pytest.mark.parametrize(
    ("method", "suffix", "kind"),
    [
        ("GET", "/messages/{message}", "message"),
        ("POST", "/messages/{message}", "message"),
        ("DELETE", "/messages/{message}", "message"),
        ("GET", "/runs/{run}", "run"),
        ("POST", "/runs/{run}", "run"),
        ("POST", "/runs/{run}/cancel", "run"),
        ("POST", "/runs/{run}/submit_tool_outputs", "run"),
        ("GET", "/runs/{run}/steps", "run"),
        ("GET", "/runs/{run}/steps/step_x", "run"),
    ],
)
def test_real_id_under_the_wrong_thread_is_404(
    idle: httpx.Client, world: World, method: str, suffix: str, kind: str
) -> None:
    # The message lives in `thread` and the run in `run_thread`: swap the parents.
    parent = world.run_thread if kind == "message" else world.thread
    child = world.message if kind == "message" else world.run
    url = f"/v1/threads/{parent}" + suffix.format(message=child, run=child)
    body = {"tool_outputs": []} if suffix.endswith("submit_tool_outputs") else None
    if method == "POST" and body is None and not suffix.endswith("cancel"):
        body = {}
    response = send(idle, method, url, body=body)
    assert_error(response, 404, message=f"No {kind} found with id '{child}'.", code=None)


@pytest.mark.parametrize("path", ["/v1/threads/runs", "/v1/threads/{thread}/runs"])
def test_unknown_assistant_in_body_is_404(idle: httpx.Client, world: World, path: str) -> None:
    url = path.format(thread=world.thread)
    response = idle.post(url, json={"assistant_id": UNKNOWN_ID["assistant"]})
    assert_error(
        response,
        404,
        message=f"No assistant found with id '{UNKNOWN_ID['assistant']}'.",
        param="assistant_id",
    )
    # A NUL can name no object; it is refused before any lookup (it used to be a 500 on
    # PostgreSQL).
    response = idle.post(url, json={"assistant_id": "asst_\x00"})
    assert_error(response, 400, param="assistant_id")


# --- bodies --------------------------------------------------------------------------------------


@over_routes(lambda case: case.body is not None)
def test_body_errors_are_400(idle: httpx.Client, world: World, method: str, path: str) -> None:
    case = ROUTES[(method, path)]
    assert case.body is not None and case.wrong_type is not None
    url, valid = concrete(world, method, path)
    json_headers = {"content-type": "application/json"}

    for raw in (b"{not json", b'{"model": "m",}', b"\xff\xfe", b'{"a": "\\ud800"}'):
        response = idle.request(method, url, content=raw, headers=json_headers)
        assert_error(response, 400, message=INVALID_JSON_MESSAGE, param=None, code=None)

    for raw in (b"[]", b'"text"', b"null", b"1"):
        response = idle.request(method, url, content=raw, headers=json_headers)
        assert_error(response, 400, message="The request body must be a JSON object.", param=None)

    response = idle.request(method, url, json={**valid, "bogus_field": 1})
    assert_error(response, 400, message="Unknown parameter: 'bogus_field'.", param="bogus_field")

    name, value = case.wrong_type
    response = idle.request(method, url, json={**valid, name: value})
    error = assert_error(response, 400, param=name, code=None)
    assert error["message"].startswith(f"Invalid type for '{name}': expected "), error

    response = idle.request(method, url, content=b"", headers=json_headers)
    if case.body_required:
        assert_error(response, 400, message="You must provide a JSON request body.", param=None)
    else:
        assert response.status_code == 200, response.text


def test_chunked_body_over_the_limit_is_413(idle: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        # No Content-Length: the size is only known by reading.
        piece = b" " * (1 << 20)
        for _ in range(MAX_JSON_BODY // len(piece)):
            yield piece
        yield b"{}"

    response = idle.post("/v1/threads", content=chunks())
    assert_error(response, 413, message=f"Request body too large: limit is {MAX_JSON_BODY} bytes.")
    assert ok(idle.post("/v1/threads", content=b"{}"))["object"] == "thread"


def test_upload_errors_are_400(idle: httpx.Client) -> None:
    assert [k for k, c in ROUTES.items() if c.multipart] == [("POST", "/v1/files")]
    response = idle.post("/v1/files", json={"purpose": "assistants"})
    assert_error(response, 400, param=None, code=None)
    response = idle.post("/v1/files", data={"purpose": "assistants"}, files={"x": ("a", b"b")})
    assert_error(response, 400, message="Missing required parameter: 'file'.", param="file")
    response = idle.post("/v1/files", files={"file": ("a.txt", b"hi")})
    assert_error(response, 400, message="Missing required parameter: 'purpose'.", param="purpose")
    response = idle.post("/v1/files", files={"file": ("a.txt", b"hi")}, data={"purpose": "fun"})
    assert_error(response, 400, param="purpose")


# --- list and query parameters -------------------------------------------------------------------


@over_routes(lambda case: case.is_list or case.include)
def test_query_errors_are_400(idle: httpx.Client, world: World, method: str, path: str) -> None:
    case = ROUTES[(method, path)]
    url, body = concrete(world, method, path)
    if case.is_list:
        for value in ("0", str(case.max_limit + 1), "ten", "1.5"):
            response = send(idle, method, url, params={"limit": value})
            assert_error(response, 400, param="limit")
        response = send(idle, method, url, params={"order": "sideways"})
        assert_error(response, 400, param="order")
        for name in ("after", "before"):
            response = send(idle, method, url, params={name: "x\x00"})
            assert_error(response, 400, param=name)
    if case.include:
        # Only invalid includes: a valid one on create-run would start a run.
        response = send(idle, method, url, body=body, params={"include[]": "nope"})
        assert_error(response, 400, param="include[]")
    if case.include and not case.is_list and method == "GET":
        # The step route: the one supported include is accepted (and the step is unknown).
        response = send(idle, method, url, params={"include[]": INCLUDE})
        assert_error(response, 404)


# --- unknown routes and methods ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/assistants/asst_x/nope"),
        ("GET", "/v1/threads/thread_x/runs/run_x/steps/step_x/more"),
        ("GET", "/v2/assistants"),
        ("GET", "/"),
    ],
)
def test_unknown_route_is_404(idle_server: Server, method: str, url: str) -> None:
    with httpx.Client(
        base_url=idle_server.base_url, headers=headers_for(idle_server.keys["alpha"]), timeout=30
    ) as c:
        response = c.request(method, url)
    assert_error(response, 404, message=f"Invalid URL ({method} {url})", param=None, code=None)


@ROUTE_PARAMS
def test_wrong_method_is_405(idle: httpx.Client, world: World, method: str, path: str) -> None:
    url, _body = concrete(world, method, path)
    allowed = {m for m, p in ROUTES if p == path}
    for wrong in ("GET", "POST", "DELETE", "PUT", "PATCH"):
        if route_matches(wrong, url):
            continue  # e.g. GET /v1/threads/runs is GET /v1/threads/{thread_id}
        response = idle.request(wrong, url)
        assert_error(
            response, 405, message="Method not allowed for this route.", param=None, code=None
        )
        # Starlette names the methods of the first route whose path matched, which need not
        # be all of them: only check that what it names is served.
        named = set(response.headers["allow"].replace(" ", "").split(","))
        assert named and named <= allowed and wrong not in named


# --- state errors: the locked thread, cancel and submit ------------------------------------------


def test_locked_thread_messages(idle: httpx.Client, world: World) -> None:
    thread, run = world.run_thread, world.run
    response = idle.post(f"/v1/threads/{thread}/messages", json={"role": "user", "content": "x"})
    assert_error(
        response,
        400,
        message=f"Can't add messages to {thread} while a run {run} is active.",
        param=None,
        code=None,
    )
    response = idle.post(f"/v1/threads/{thread}/runs", json={"assistant_id": world.assistant})
    assert_error(
        response,
        400,
        message=f"Thread {thread} already has an active run {run}.",
        param=None,
        code=None,
    )
    assert response.headers["x-should-retry"] == "false"
    # The same answer with stream: true (which is checked later than the lock, or refused).
    response = idle.post(
        f"/v1/threads/{thread}/runs", json={"assistant_id": world.assistant, "stream": True}
    )
    assert_error(response, 400)


def test_submit_to_a_queued_run(idle: httpx.Client, world: World) -> None:
    url = f"/v1/threads/{world.run_thread}/runs/{world.run}/submit_tool_outputs"
    response = idle.post(url, json={"tool_outputs": [{"tool_call_id": "call_1", "output": "x"}]})
    assert_error(
        response,
        400,
        message='Runs in status "queued" do not accept tool outputs.',
        param=None,
        code=None,
    )


def test_cancel_twice_while_cancelling(idle_server: Server) -> None:
    """Without a worker a cancelled run stays ``cancelling``: cancelling again is no error."""
    with httpx.Client(
        base_url=idle_server.base_url, headers=headers_for(idle_server.keys["alpha"]), timeout=30
    ) as c:
        assistant = ok(c.post("/v1/assistants", json={"model": "gpt-4o"}))["id"]
        run = ok(c.post("/v1/threads/runs", json={"assistant_id": assistant}))
        url = f"/v1/threads/{run['thread_id']}/runs/{run['id']}/cancel"
        assert ok(c.post(url))["status"] == "cancelling"
        assert ok(c.post(url))["status"] == "cancelling"
        # Still active, so the thread is still locked.
        response = c.post(
            f"/v1/threads/{run['thread_id']}/messages", json={"role": "user", "content": "x"}
        )
        assert_error(response, 400, param=None)


TERMINAL = {"cancelled", "failed", "completed", "incomplete", "expired"}


def finished_run(client: openai.OpenAI) -> tuple[str, str, str]:
    """A run on the main server, brought to a terminal state: (thread id, run id, status)."""
    assistant = client.beta.assistants.create(model="gpt-4o")
    run = client.beta.threads.create_and_run(assistant_id=assistant.id)
    with contextlib.suppress(openai.BadRequestError):  # it may have finished first
        client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)
    deadline = time.monotonic() + 30
    while run.status not in TERMINAL:
        assert time.monotonic() < deadline, f"run {run.id} stayed {run.status}"
        time.sleep(0.05)
        run = client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
    return run.thread_id, run.id, run.status


def test_cancel_and_submit_on_a_finished_run(client: openai.OpenAI, http: httpx.Client) -> None:
    thread, run, status = finished_run(client)
    response = http.post(f"/v1/threads/{thread}/runs/{run}/cancel")
    assert_error(
        response, 400, message=f"Cannot cancel run with status '{status}'.", param=None, code=None
    )
    response = http.post(
        f"/v1/threads/{thread}/runs/{run}/submit_tool_outputs",
        json={"tool_outputs": [{"tool_call_id": "call_1", "output": "x"}]},
    )
    assert_error(
        response,
        400,
        message=f'Runs in status "{status}" do not accept tool outputs.',
        param=None,
        code=None,
    )
    # The SDK surfaces the same envelope.
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.runs.cancel(run, thread_id=thread)
    assert exc.value.status_code == 400
    assert exc.value.body == {
        "message": f"Cannot cancel run with status '{status}'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


# --- a 500 ---------------------------------------------------------------------------------------


def _execute(url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_internal_error_is_an_envelope_without_details(server: Server) -> None:
    """Break a server's database under it (a table disappears): the 500 tells nothing inside.

    A dedicated server, since this one is broken for good afterwards.
    """
    with (
        running_server(backend_of(server), serve_args=["--no-worker"]) as broken,
        httpx.Client(
            base_url=broken.base_url, headers=headers_for(broken.keys["alpha"]), timeout=30
        ) as c,
    ):
        ok(c.post("/v1/assistants", json={"model": "gpt-4o"}))
        _execute(broken.env["ASSISTANTD_DATABASE_URL"], "ALTER TABLE assistants RENAME TO gone")
        for _ in range(3):
            response = c.get("/v1/assistants")
            error = assert_error(response, 500, param=None, code=None)
            assert error["message"] == (
                "The server had an error while processing your request. Sorry about that!"
            )
            assert response.headers["x-should-retry"] == "false"
            for leak in ("Traceback", "assistants", "sqlalchemy", "SELECT", "File "):
                assert leak not in response.text
            # The connection survives the 500: the next request on it is answered.
            assert ok(c.post("/v1/threads", json={}))["object"] == "thread"
        log = broken.log()
    assert "unhandled error on GET /v1/assistants" in log
    assert "Traceback" in log
