"""Each class of invalid input gets a 400 with the OpenAI envelope and ``param`` naming the field,
and each limit is exact: the value at the limit is accepted, one past it is refused.

Through the real SDK where it can send the input (``openai.BadRequestError``), through raw HTTP
where it cannot. A create that fails leaves nothing behind, checked in the database itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import make_client
from tests.dbcheck import count_rows
from tests.servers import Server, running_server

ENVELOPE_KEYS = {"message", "type", "param", "code"}


def bad_request(call: Callable[[], object], param: str | None) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as exc:
        call()
    err = exc.value
    assert err.status_code == 400
    assert isinstance(err.body, dict) and set(err.body) == ENVELOPE_KEYS, err.body
    assert err.body["type"] == "invalid_request_error"
    assert err.param == param, err.body
    assert err.body["param"] == param
    assert isinstance(err.body["message"], str) and err.body["message"]
    return err


def raw_400(response: httpx.Response, param: str | None) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and set(body["error"]) == ENVELOPE_KEYS, body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param, body
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture(scope="module")
def assistant_id(client: openai.OpenAI) -> str:
    return client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}]).id


@pytest.fixture()
def thread_id(client: openai.OpenAI) -> str:
    return client.beta.threads.create().id


# --- metadata, on every body that takes it -------------------------------------------------------

TOO_MANY = {f"k{i}": "v" for i in range(17)}
SIXTEEN = {f"k{i}": "v" for i in range(16)}
LONG_KEY = "k" * 65
METADATA_CASES = [
    (TOO_MANY, "metadata"),
    ({LONG_KEY: "v"}, "metadata"),
    ({"key": "v" * 513}, "metadata.key"),
    ({"key": 1}, "metadata.key"),
    ("not an object", "metadata"),
]


def metadata_targets(
    client: openai.OpenAI, assistant: str
) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """(method, path, other required fields) of every body with ``metadata``."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    message = client.beta.threads.messages.list(thread.id).data[0].id
    run_thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(run_thread.id, assistant_id=assistant)
    store = client.vector_stores.create()
    return {
        "create assistant": ("POST", "/v1/assistants", {"model": "gpt-4o"}),
        "modify assistant": ("POST", f"/v1/assistants/{assistant}", {}),
        "create thread": ("POST", "/v1/threads", {}),
        "modify thread": ("POST", f"/v1/threads/{thread.id}", {}),
        "create message": (
            "POST",
            f"/v1/threads/{thread.id}/messages",
            {"role": "user", "content": "x"},
        ),
        "modify message": ("POST", f"/v1/threads/{thread.id}/messages/{message}", {}),
        "create run": ("POST", f"/v1/threads/{thread.id}/runs", {"assistant_id": assistant}),
        "modify run": ("POST", f"/v1/threads/{run_thread.id}/runs/{run.id}", {}),
        "create thread and run": ("POST", "/v1/threads/runs", {"assistant_id": assistant}),
        "create vector store": ("POST", "/v1/vector_stores", {}),
        "modify vector store": ("POST", f"/v1/vector_stores/{store.id}", {}),
    }


def test_metadata_limits_on_every_body(
    client: openai.OpenAI, http: httpx.Client, assistant_id: str
) -> None:
    targets = metadata_targets(client, assistant_id)
    for name, (method, url, required) in targets.items():
        for metadata, param in METADATA_CASES:
            response = http.request(method, url, json={**required, "metadata": metadata})
            error = raw_400(response, param)
            assert error["code"] is None, name
        # Nested: a message inside a thread, and inside a run's additional messages.
    response = http.post(
        "/v1/threads",
        json={"messages": [{"role": "user", "content": "x", "metadata": TOO_MANY}]},
    )
    raw_400(response, "messages[0].metadata")
    method, url, required = targets["create run"]
    response = http.post(
        url,
        json={
            **required,
            "additional_messages": [{"role": "user", "content": "x", "metadata": {"a": "v" * 513}}],
        },
    )
    raw_400(response, "additional_messages[0].metadata.a")


def test_metadata_messages(client: openai.OpenAI) -> None:
    err = bad_request(
        lambda: client.beta.assistants.create(model="m", metadata=TOO_MANY), "metadata"
    )
    assert err.body["message"] == (  # type: ignore[index]
        "Invalid 'metadata': too many properties. Expected an object with at most 16 "
        "properties, but got an object with 17 properties instead."
    )
    err = bad_request(
        lambda: client.beta.assistants.create(model="m", metadata={LONG_KEY: "v"}), "metadata"
    )
    assert "maximum length 64" in err.message and "length 65" in err.message
    err = bad_request(
        lambda: client.beta.assistants.create(model="m", metadata={"k": "v" * 513}), "metadata.k"
    )
    assert "maximum length 512" in err.message and "length 513" in err.message


def test_metadata_at_the_limits_is_accepted(client: openai.OpenAI) -> None:
    edge = {**{f"k{i}": "v" for i in range(14)}, "k" * 64: "v", "long": "v" * 512}
    assert len(edge) == 16
    created = client.beta.assistants.create(model="m", metadata=edge)
    assert created.metadata == edge
    thread = client.beta.threads.create(metadata=SIXTEEN)
    assert client.beta.threads.retrieve(thread.id).metadata == SIXTEEN


# --- assistants: lengths, counts, ranges ---------------------------------------------------------

ASSISTANT_LIMITS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    # name, accepted at the limit, refused past it, param
    ("name", {"name": "n" * 256}, {"name": "n" * 257}, "name"),
    ("description", {"description": "d" * 512}, {"description": "d" * 513}, "description"),
    (
        "instructions",
        {"instructions": "i" * 256_000},
        {"instructions": "i" * 256_001},
        "instructions",
    ),
    (
        "tools",
        {"tools": [{"type": "code_interpreter"}] * 128},
        {"tools": [{"type": "code_interpreter"}] * 129},
        "tools",
    ),
    (
        "code interpreter files",
        {"tool_resources": {"code_interpreter": {"file_ids": [f"file-{i}" for i in range(20)]}}},
        {"tool_resources": {"code_interpreter": {"file_ids": [f"file-{i}" for i in range(21)]}}},
        "tool_resources.code_interpreter.file_ids",
    ),
    (
        "vector store ids",
        {"tool_resources": {"file_search": {"vector_store_ids": ["vs_1"]}}},
        {"tool_resources": {"file_search": {"vector_store_ids": ["vs_1", "vs_2"]}}},
        "tool_resources.file_search.vector_store_ids",
    ),
    (
        "vector store ids and helper",
        {"tool_resources": {"file_search": {"vector_store_ids": ["vs_1"]}}},
        {
            "tool_resources": {
                "file_search": {"vector_store_ids": ["vs_1"], "vector_stores": [{"file_ids": []}]}
            }
        },
        "tool_resources.file_search",
    ),
    ("temperature", {"temperature": 2}, {"temperature": 2.1}, "temperature"),
    ("temperature", {"temperature": 0}, {"temperature": -0.1}, "temperature"),
    ("top_p", {"top_p": 1}, {"top_p": 1.1}, "top_p"),
    ("top_p", {"top_p": 0}, {"top_p": -0.01}, "top_p"),
]


@pytest.mark.parametrize(
    ("accepted", "refused", "param"),
    [c[1:] for c in ASSISTANT_LIMITS],
    ids=[f"{c[0]}-{i}" for i, c in enumerate(ASSISTANT_LIMITS)],
)
def test_assistant_limits(
    client: openai.OpenAI, accepted: dict[str, Any], refused: dict[str, Any], param: str
) -> None:
    a = client.beta.assistants
    bad_request(lambda: a.create(model="gpt-4o", **refused), param)
    created = a.create(model="gpt-4o", **accepted)
    if "vector_stores" not in str(refused):  # the helper is not part of modify's body
        bad_request(lambda: a.update(created.id, **refused), param)
    assert a.retrieve(created.id).model_dump() == created.model_dump()


def test_assistant_limit_messages(client: openai.OpenAI) -> None:
    err = bad_request(lambda: client.beta.assistants.create(model="m", name="n" * 257), "name")
    assert err.body["message"] == (  # type: ignore[index]
        "Invalid 'name': string too long. Expected a string with maximum length 256, but got "
        "a string with length 257 instead."
    )
    err = bad_request(
        lambda: client.beta.assistants.create(model="m", temperature=2.1), "temperature"
    )
    assert err.body["message"] == (  # type: ignore[index]
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.1 "
        "instead."
    )


# --- runs ----------------------------------------------------------------------------------------


RUN_LIMITS: list[tuple[dict[str, Any], str]] = [
    ({"tools": [{"type": "code_interpreter"}] * 21}, "tools"),
    ({"max_prompt_tokens": 255}, "max_prompt_tokens"),
    ({"max_completion_tokens": 255}, "max_completion_tokens"),
    ({"temperature": 2.1}, "temperature"),
    ({"top_p": 1.1}, "top_p"),
    (
        {"truncation_strategy": {"type": "last_messages", "last_messages": 0}},
        "truncation_strategy.last_messages",
    ),
]


def test_run_limits(client: openai.OpenAI, assistant_id: str) -> None:
    runs = client.beta.threads.runs
    thread = client.beta.threads.create().id
    for kwargs, param in RUN_LIMITS:
        bad_request(partial(runs.create, thread, assistant_id=assistant_id, **kwargs), param)
        bad_request(
            partial(client.beta.threads.create_and_run, assistant_id=assistant_id, **kwargs),
            param,
        )
    for messages, param in [
        ([{"role": "user", "content": []}], "additional_messages[0].content"),
        (
            [{"role": "user", "content": "x"}, {"role": "system", "content": "x"}],
            "additional_messages[1].role",
        ),
    ]:
        bad_request(
            partial(runs.create, thread, assistant_id=assistant_id, additional_messages=messages),
            param,
        )
    assert client.beta.threads.messages.list(thread).data == []
    # Exactly at the limits: accepted.
    run = runs.create(
        thread,
        assistant_id=assistant_id,
        tools=[{"type": "code_interpreter"}] * 20,
        max_prompt_tokens=256,
        max_completion_tokens=256,
        temperature=2,
        top_p=1,
        truncation_strategy={"type": "last_messages", "last_messages": 1},
    )
    assert len(run.tools) == 20 and run.max_prompt_tokens == 256
    finish(client, thread, run.id)


def test_create_and_run_limits(client: openai.OpenAI, assistant_id: str) -> None:
    create_and_run = client.beta.threads.create_and_run
    bad_request(
        lambda: create_and_run(
            assistant_id=assistant_id,
            tool_resources={"code_interpreter": {"file_ids": [f"file-{i}" for i in range(21)]}},
        ),
        "tool_resources.code_interpreter.file_ids",
    )
    bad_request(
        lambda: create_and_run(
            assistant_id=assistant_id,
            thread={
                "messages": [{"role": "user", "content": "x"}, {"role": "bot", "content": "x"}]
            },
        ),
        "thread.messages[1].role",
    )
    # This endpoint has no vector_stores helper.
    bad_request(
        lambda: create_and_run(
            assistant_id=assistant_id,
            tool_resources={"file_search": {"vector_stores": [{"file_ids": []}]}},  # type: ignore[typeddict-unknown-key]
        ),
        "tool_resources.file_search.vector_stores",
    )


def finish(client: openai.OpenAI, thread: str, run: str) -> None:
    """Leave no active run behind (it may already have finished)."""
    try:
        client.beta.threads.runs.cancel(run, thread_id=thread)
    except openai.BadRequestError as exc:
        assert "Cannot cancel run with status" in exc.message


# --- messages and threads ------------------------------------------------------------------------


def test_message_content_and_role(client: openai.OpenAI, thread_id: str) -> None:
    m = client.beta.threads.messages
    bad_request(lambda: m.create(thread_id, role="user", content=[]), "content")
    err = bad_request(lambda: m.create(thread_id, role="system", content="x"), "role")  # type: ignore[arg-type]
    assert err.body["message"] == (  # type: ignore[index]
        "Invalid value: 'system'. Supported values are: 'user' and 'assistant'."
    )
    bad_request(
        lambda: m.create(thread_id, role="user", content=[{"type": "video", "video": "x"}]),  # type: ignore[list-item]
        "content[0].type",
    )
    bad_request(
        lambda: m.create(thread_id, role="user", content=[{"type": "text"}]),  # type: ignore[list-item]
        "content[0].text",
    )
    bad_request(
        lambda: client.beta.threads.create(messages=[{"role": "user", "content": []}]),
        "messages[0].content",
    )
    assert m.list(thread_id).data == []


def test_unknown_fields(client: openai.OpenAI, thread_id: str, assistant_id: str) -> None:
    extra = {"extra_body": {"colour": "blue"}}
    calls: list[Callable[[], object]] = [
        lambda: client.beta.assistants.create(model="m", **extra),  # type: ignore[arg-type]
        lambda: client.beta.assistants.update(assistant_id, **extra),  # type: ignore[arg-type]
        lambda: client.beta.threads.create(**extra),  # type: ignore[arg-type]
        lambda: client.beta.threads.update(thread_id, **extra),  # type: ignore[arg-type]
        lambda: client.beta.threads.messages.create(thread_id, role="user", content="x", **extra),  # type: ignore[arg-type]
        lambda: client.beta.threads.runs.create(thread_id, assistant_id=assistant_id, **extra),  # type: ignore[arg-type]
        lambda: client.beta.threads.create_and_run(assistant_id=assistant_id, **extra),  # type: ignore[arg-type]
    ]
    for call in calls:
        err = bad_request(call, "colour")
        assert err.body["message"] == "Unknown parameter: 'colour'."  # type: ignore[index]
    # Nested unknown fields name their path.
    bad_request(
        lambda: client.beta.assistants.create(
            model="m",
            tools=[{"type": "code_interpreter", "colour": "blue"}],  # type: ignore[list-item]
        ),
        "tools[0].colour",
    )


def test_wrong_types_over_raw_http(http: httpx.Client, assistant_id: str) -> None:
    """Inputs the SDK's types would not let through, sent as they are."""
    for body, param in [
        ({"model": 4}, "model"),
        ({"model": "m", "name": ["x"]}, "name"),
        ({"model": "m", "temperature": "1"}, "temperature"),
        ({"model": "m", "temperature": True}, "temperature"),
        ({"model": "m", "tools": {"type": "code_interpreter"}}, "tools"),
        ({"model": "m", "tools": [{"type": "browser"}]}, "tools[0].type"),
        ({"model": "m", "metadata": {"a": None}}, "metadata.a"),
        ({}, "model"),
    ]:
        raw_400(http.post("/v1/assistants", json=body), param)
    raw_400(
        http.post(
            "/v1/threads/runs", json={"assistant_id": assistant_id, "max_prompt_tokens": 300.0}
        ),
        "max_prompt_tokens",
    )
    raw_400(
        http.post("/v1/threads/runs", json={"assistant_id": assistant_id, "stream": "no"}), "stream"
    )


# --- explicit nulls and stream: false ------------------------------------------------------------


def test_explicit_nulls_are_accepted(
    client: openai.OpenAI, http: httpx.Client, assistant_id: str
) -> None:
    nulls = {
        k: None
        for k in (
            "name",
            "description",
            "instructions",
            "tools",
            "tool_resources",
            "metadata",
            "temperature",
            "top_p",
            "response_format",
            "reasoning_effort",
        )
    }
    response = http.post("/v1/assistants", json={"model": "gpt-4o", **nulls})
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["name"] is None and created["metadata"] == {} and created["tools"] == []
    assert client.beta.assistants.retrieve(created["id"]).id == created["id"]
    response = http.post(f"/v1/assistants/{created['id']}", json={**nulls, "model": None})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "gpt-4o"

    thread = http.post(
        "/v1/threads", json={"messages": None, "tool_resources": None, "metadata": None}
    )
    assert thread.status_code == 200, thread.text
    thread_id = thread.json()["id"]
    message = http.post(
        f"/v1/threads/{thread_id}/messages",
        json={"role": "user", "content": "x", "attachments": None, "metadata": None},
    )
    assert message.status_code == 200, message.text
    assert message.json()["metadata"] == {} and message.json()["attachments"] == []

    # Through the SDK: None is sent as null.
    assistant = client.beta.assistants.create(model="gpt-4o", name=None, metadata=None)
    assert assistant.name is None and assistant.metadata == {}

    run_nulls = {
        k: None
        for k in (
            "model",
            "instructions",
            "additional_instructions",
            "additional_messages",
            "tools",
            "metadata",
            "temperature",
            "top_p",
            "max_prompt_tokens",
            "max_completion_tokens",
            "truncation_strategy",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
        )
    }
    response = http.post(
        f"/v1/threads/{thread_id}/runs",
        json={"assistant_id": assistant_id, "stream": False, **run_nulls},
    )
    assert response.status_code == 200, response.text
    run = response.json()
    # null means "not given": the assistant's values and the defaults apply.
    assert run["tools"] == [{"type": "code_interpreter"}]
    assert run["model"] == "gpt-4o" and run["metadata"] == {}
    assert run["parallel_tool_calls"] is True and run["tool_choice"] == "auto"
    finish(client, thread_id, run["id"])


def test_stream_false_is_accepted(client: openai.OpenAI, assistant_id: str) -> None:
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id, stream=False)
    assert run.object == "thread.run" and run.thread_id == thread.id
    finish(client, thread.id, run.id)
    run = client.beta.threads.create_and_run(assistant_id=assistant_id, stream=False)
    assert run.object == "thread.run"
    finish(client, run.thread_id, run.id)


# --- a failed create leaves nothing behind -------------------------------------------------------


def rows_with(server: Server, table: str, marker: str) -> int:
    return count_rows(server, table, "body LIKE :pattern", pattern=f"%{marker}%")


def test_failed_thread_create_leaves_no_rows(server: Server, client: openai.OpenAI) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    messages: Any = [
        {"role": "user", "content": marker},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "not a url"}}]},
    ]
    bad_request(
        lambda: client.beta.threads.create(messages=messages, metadata={"m": marker}),
        "messages[1].content[0].image_url.url",
    )
    assert rows_with(server, "threads", marker) == 0
    assert rows_with(server, "messages", marker) == 0
    # The same request made valid leaves exactly what it should (so the check can see rows).
    messages[1] = {"role": "user", "content": "fine"}
    thread = client.beta.threads.create(messages=messages, metadata={"m": marker})
    assert rows_with(server, "threads", marker) == 1
    assert rows_with(server, "messages", marker) == 1
    assert count_rows(server, "messages", "thread_id = :t", t=thread.id) == 2


def test_failed_create_and_run_leaves_no_thread(server: Server, client: openai.OpenAI) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.create_and_run(
            assistant_id="asst_0000000000nope00000000",
            thread={"messages": [{"role": "user", "content": marker}], "metadata": {"m": marker}},
        )
    assert rows_with(server, "threads", marker) == 0
    assert rows_with(server, "messages", marker) == 0


def backend_of(server: Server) -> str:
    return "sqlite" if server.env["ASSISTANTD_DATABASE_URL"].startswith("sqlite") else "postgres"


@pytest.fixture(scope="module")
def idle_server(server: Server) -> Iterator[Server]:
    """A server on the same backend as ``server``, without a worker: runs stay queued."""
    with running_server(backend_of(server), serve_args=["--no-worker"]) as srv:
        yield srv


def test_run_on_a_locked_thread_adds_no_messages(idle_server: Server) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    with make_client(idle_server, idle_server.keys["alpha"]) as c:
        assistant = c.beta.assistants.create(model="gpt-4o")
        thread = c.beta.threads.create()
        first = c.beta.threads.runs.create(
            thread.id,
            assistant_id=assistant.id,
            additional_messages=[{"role": "user", "content": "first"}],
        )
        # The first run's messages went in (the thread is locked from here on).
        assert count_rows(idle_server, "messages", "thread_id = :t", t=thread.id) == 1
        err = bad_request(
            lambda: c.beta.threads.runs.create(
                thread.id,
                assistant_id=assistant.id,
                additional_messages=[
                    {"role": "user", "content": marker},
                    {"role": "assistant", "content": marker},
                ],
            ),
            None,
        )
        assert err.body["message"] == (  # type: ignore[index]
            f"Thread {thread.id} already has an active run {first.id}."
        )
        assert rows_with(idle_server, "messages", marker) == 0
        assert count_rows(idle_server, "messages", "thread_id = :t", t=thread.id) == 1
        assert [m.content[0].type for m in c.beta.threads.messages.list(thread.id)] == ["text"]
        assert count_rows(idle_server, "runs", "thread_id = :t", t=thread.id) == 1
