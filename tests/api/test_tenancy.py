"""Projects are walls: another project's key can neither see nor touch an object, by any verb.

Project alpha makes an assistant, a thread with a message, a run (cancelled), a run step, a
file, and a vector store holding it (and a file batch). Project beta then tries every verb on
every one of those ids, through the SDK: each answer is the 404 an unknown id gets, never a
400 that would show the object exists (a locked thread, a run in the wrong state). Beta's
lists never show alpha's objects, and afterwards alpha's objects are byte-for-byte what they
were. A revoked key is refused on every route.

The objects live on a server with no worker (``--no-worker``), so nothing moves on its own
between the snapshots. Such a server makes no run steps, so the one step is written straight
into its database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from assistantd import clock, ids
from tests.conftest import make_client
from tests.servers import Server, running_server


def backend_of(server: Server) -> str:
    return "sqlite" if server.env["ASSISTANTD_DATABASE_URL"].startswith("sqlite") else "postgres"


@pytest.fixture(scope="module")
def idle_server(server: Server) -> Iterator[Server]:
    """A server on the same backend as ``server``, without a worker: runs stay as they are."""
    with running_server(backend_of(server), serve_args=["--no-worker"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def alpha(idle_server: Server) -> Iterator[openai.OpenAI]:
    with make_client(idle_server, idle_server.keys["alpha"]) as c:
        yield c


@pytest.fixture(scope="module")
def beta(idle_server: Server) -> Iterator[openai.OpenAI]:
    with make_client(idle_server, idle_server.keys["beta"]) as c:
        yield c


@pytest.fixture(scope="module")
def alpha_http(idle_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=idle_server.base_url + "/v1",
        headers={
            "Authorization": f"Bearer {idle_server.keys['alpha']}",
            "OpenAI-Beta": "assistants=v2",
        },
        timeout=30,
    ) as c:
        yield c


@dataclass(frozen=True)
class AlphaObjects:
    assistant: str
    thread: str
    message: str
    run: str
    step: str
    file: str
    vector_store: str
    batch: str


def insert_step(server: Server, project: str, step: dict[str, Any]) -> None:
    async def insert() -> None:
        engine = create_async_engine(server.env["ASSISTANTD_DATABASE_URL"])
        try:
            async with engine.begin() as conn:
                project_id = (
                    await conn.execute(
                        text("SELECT id FROM projects WHERE name = :name"), {"name": project}
                    )
                ).scalar_one()
                await conn.execute(
                    text(
                        "INSERT INTO run_steps (id, project_id, thread_id, run_id, created_at, "
                        "body) VALUES (:id, :project_id, :thread_id, :run_id, :created_at, :body)"
                    ),
                    {
                        "id": step["id"],
                        "project_id": project_id,
                        "thread_id": step["thread_id"],
                        "run_id": step["run_id"],
                        "created_at": step["created_at"],
                        "body": orjson.dumps(step).decode(),
                    },
                )
        finally:
            await engine.dispose()

    asyncio.run(insert())


@pytest.fixture(scope="module")
def objects(idle_server: Server, alpha: openai.OpenAI) -> AlphaObjects:
    assistant = alpha.beta.assistants.create(model="gpt-4o", name="alpha's", metadata={"o": "a"})
    thread = alpha.beta.threads.create(
        messages=[{"role": "user", "content": "alpha's secret"}], metadata={"o": "a"}
    )
    message = alpha.beta.threads.messages.list(thread.id).data[0]
    run = alpha.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    # With no worker the run stays `cancelling`: still active, so alpha's thread stays locked.
    assert alpha.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    now = clock.now()
    step = {
        "id": ids.new_id(ids.STEP),
        "object": "thread.run.step",
        "created_at": now,
        "assistant_id": assistant.id,
        "thread_id": thread.id,
        "run_id": run.id,
        "type": "message_creation",
        "status": "completed",
        "step_details": {
            "type": "message_creation",
            "message_creation": {"message_id": message.id},
        },
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": now,
        "metadata": {},
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    insert_step(idle_server, "alpha", step)
    file = alpha.files.create(file=("alpha.txt", b"alpha's file"), purpose="assistants")
    # No worker, so no ingestion either: the store's files stay in_progress, unchanging.
    store = alpha.vector_stores.create(name="alpha's", file_ids=[file.id])
    batch = alpha.vector_stores.file_batches.create(store.id, file_ids=[file.id])
    # Alpha sees all of it.
    got = alpha.beta.threads.runs.steps.retrieve(step["id"], thread_id=thread.id, run_id=run.id)
    assert got.id == step["id"]
    return AlphaObjects(
        assistant.id, thread.id, message.id, run.id, step["id"], file.id, store.id, batch.id
    )


def snapshot(http: httpx.Client, o: AlphaObjects) -> dict[str, Any]:
    """Alpha's view of every object, as raw JSON."""
    paths = {
        "assistant": f"/assistants/{o.assistant}",
        "thread": f"/threads/{o.thread}",
        "messages": f"/threads/{o.thread}/messages",
        "message": f"/threads/{o.thread}/messages/{o.message}",
        "runs": f"/threads/{o.thread}/runs",
        "run": f"/threads/{o.thread}/runs/{o.run}",
        "steps": f"/threads/{o.thread}/runs/{o.run}/steps",
        "step": f"/threads/{o.thread}/runs/{o.run}/steps/{o.step}",
        "file": f"/files/{o.file}",
        "file content": f"/files/{o.file}/content",
        "vector store": f"/vector_stores/{o.vector_store}",
        "vector store files": f"/vector_stores/{o.vector_store}/files",
        "vector store file": f"/vector_stores/{o.vector_store}/files/{o.file}",
        "batch": f"/vector_stores/{o.vector_store}/file_batches/{o.batch}",
        "batch files": f"/vector_stores/{o.vector_store}/file_batches/{o.batch}/files",
    }
    out: dict[str, Any] = {}
    for name, path in paths.items():
        response = http.get(path)
        assert response.status_code == 200, (path, response.text)
        out[name] = response.content
    return out


def assert_not_found(
    call: Callable[[], object], kind: str, object_id: str, param: str | None = None
) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        call()
    assert exc.value.status_code == 404
    assert exc.value.body == {
        "message": f"No {kind} found with id '{object_id}'.",
        "type": "invalid_request_error",
        "param": param,
        "code": None,
    }


def test_beta_cannot_reach_alpha_objects(
    alpha_http: httpx.Client, beta: openai.OpenAI, objects: AlphaObjects
) -> None:
    o = objects
    before = snapshot(alpha_http, o)
    # Beta's own thread, assistant and run, to pair with alpha's ids.
    own_assistant = beta.beta.assistants.create(model="gpt-4o")
    own_thread = beta.beta.threads.create(messages=[{"role": "user", "content": "beta's"}])
    own_run = beta.beta.threads.runs.create(own_thread.id, assistant_id=own_assistant.id)

    a = beta.beta.assistants
    t = beta.beta.threads
    m = beta.beta.threads.messages
    r = beta.beta.threads.runs
    s = beta.beta.threads.runs.steps
    vs = beta.vector_stores
    vsf = beta.vector_stores.files
    vsb = beta.vector_stores.file_batches
    own_file = beta.files.create(file=("beta.txt", b"beta's"), purpose="assistants")
    own_store = vs.create(name="beta's")
    outputs = [{"tool_call_id": "call_1", "output": "x"}]
    attempts: list[tuple[Callable[[], object], str, str, str | None]] = [
        # alpha's assistant
        (lambda: a.retrieve(o.assistant), "assistant", o.assistant, None),
        (lambda: a.update(o.assistant, name="beta was here"), "assistant", o.assistant, None),
        (lambda: a.delete(o.assistant), "assistant", o.assistant, None),
        # alpha's thread
        (lambda: t.retrieve(o.thread), "thread", o.thread, None),
        (lambda: t.update(o.thread, metadata={"o": "b"}), "thread", o.thread, None),
        (lambda: t.delete(o.thread), "thread", o.thread, None),
        # alpha's messages, under alpha's thread and under beta's
        (lambda: m.list(o.thread), "thread", o.thread, None),
        (lambda: m.create(o.thread, role="user", content="x"), "thread", o.thread, None),
        (lambda: m.retrieve(o.message, thread_id=o.thread), "thread", o.thread, None),
        (lambda: m.update(o.message, thread_id=o.thread, metadata={}), "thread", o.thread, None),
        (lambda: m.delete(o.message, thread_id=o.thread), "thread", o.thread, None),
        (lambda: m.retrieve(o.message, thread_id=own_thread.id), "message", o.message, None),
        (
            lambda: m.update(o.message, thread_id=own_thread.id, metadata={}),
            "message",
            o.message,
            None,
        ),
        (lambda: m.delete(o.message, thread_id=own_thread.id), "message", o.message, None),
        # alpha's runs
        (lambda: r.list(o.thread), "thread", o.thread, None),
        (
            lambda: r.create(o.thread, assistant_id=o.assistant),
            "assistant",
            o.assistant,
            "assistant_id",
        ),
        (lambda: r.create(o.thread, assistant_id=own_assistant.id), "thread", o.thread, None),
        (
            lambda: r.create(own_thread.id, assistant_id=o.assistant),
            "assistant",
            o.assistant,
            "assistant_id",
        ),
        (
            lambda: t.create_and_run(assistant_id=o.assistant),
            "assistant",
            o.assistant,
            "assistant_id",
        ),
        (lambda: r.retrieve(o.run, thread_id=o.thread), "thread", o.thread, None),
        (lambda: r.update(o.run, thread_id=o.thread, metadata={}), "thread", o.thread, None),
        (lambda: r.cancel(o.run, thread_id=o.thread), "thread", o.thread, None),
        (
            lambda: r.submit_tool_outputs(o.run, thread_id=o.thread, tool_outputs=outputs),
            "thread",
            o.thread,
            None,
        ),
        (lambda: r.retrieve(o.run, thread_id=own_thread.id), "run", o.run, None),
        (lambda: r.update(o.run, thread_id=own_thread.id, metadata={}), "run", o.run, None),
        (lambda: r.cancel(o.run, thread_id=own_thread.id), "run", o.run, None),
        (
            lambda: r.submit_tool_outputs(o.run, thread_id=own_thread.id, tool_outputs=outputs),
            "run",
            o.run,
            None,
        ),
        # alpha's file
        (lambda: beta.files.retrieve(o.file), "file", o.file, None),
        (lambda: beta.files.content(o.file), "file", o.file, None),
        (lambda: beta.files.delete(o.file), "file", o.file, None),
        (
            lambda: t.create(
                messages=[
                    {
                        "role": "user",
                        "content": "x",
                        "attachments": [{"file_id": o.file, "tools": [{"type": "file_search"}]}],
                    }
                ]
            ),
            "file",
            o.file,
            "attachments",
        ),
        # alpha's vector store, its file and its batch
        (lambda: vs.retrieve(o.vector_store), "vector store", o.vector_store, None),
        (lambda: vs.update(o.vector_store, name="beta"), "vector store", o.vector_store, None),
        (lambda: vs.delete(o.vector_store), "vector store", o.vector_store, None),
        (lambda: vs.search(o.vector_store, query="alpha"), "vector store", o.vector_store, None),
        (lambda: vsf.list(o.vector_store), "vector store", o.vector_store, None),
        (
            lambda: vsf.create(o.vector_store, file_id=own_file.id),
            "vector store",
            o.vector_store,
            None,
        ),
        (
            lambda: vsf.retrieve(o.file, vector_store_id=o.vector_store),
            "vector store",
            o.vector_store,
            None,
        ),
        (
            lambda: vsf.update(o.file, vector_store_id=o.vector_store, attributes={}),
            "vector store",
            o.vector_store,
            None,
        ),
        (
            lambda: vsf.delete(o.file, vector_store_id=o.vector_store),
            "vector store",
            o.vector_store,
            None,
        ),
        (
            lambda: vsf.content(o.file, vector_store_id=o.vector_store),
            "vector store",
            o.vector_store,
            None,
        ),
        (
            lambda: vsb.create(o.vector_store, file_ids=[own_file.id]),
            "vector store",
            o.vector_store,
            None,
        ),
        (
            lambda: vsb.retrieve(o.batch, vector_store_id=o.vector_store),
            "vector store",
            o.vector_store,
            None,
        ),
        (
            lambda: vsb.cancel(o.batch, vector_store_id=o.vector_store),
            "vector store",
            o.vector_store,
            None,
        ),
        (
            lambda: vsb.list_files(o.batch, vector_store_id=o.vector_store),
            "vector store",
            o.vector_store,
            None,
        ),
        (lambda: vs.create(file_ids=[o.file]), "file", o.file, "file_ids"),
        (lambda: vsf.create(own_store.id, file_id=o.file), "file", o.file, "file_id"),
        (lambda: vsb.create(own_store.id, file_ids=[o.file]), "file", o.file, "file_ids"),
        (
            lambda: vsf.retrieve(o.file, vector_store_id=own_store.id),
            "vector store file",
            o.file,
            None,
        ),
        (
            lambda: vsb.retrieve(o.batch, vector_store_id=own_store.id),
            "vector store file batch",
            o.batch,
            None,
        ),
        # alpha's run steps
        (lambda: s.list(o.run, thread_id=o.thread), "thread", o.thread, None),
        (lambda: s.retrieve(o.step, thread_id=o.thread, run_id=o.run), "thread", o.thread, None),
        (lambda: s.list(o.run, thread_id=own_thread.id), "run", o.run, None),
        (lambda: s.retrieve(o.step, thread_id=own_thread.id, run_id=o.run), "run", o.run, None),
        (
            lambda: s.retrieve(o.step, thread_id=own_thread.id, run_id=own_run.id),
            "run step",
            o.step,
            None,
        ),
    ]
    for call, kind, object_id, param in attempts:
        assert_not_found(call, kind, object_id, param)

    # Beta's lists hold only beta's objects, even when paged from one of alpha's ids.
    own_messages = m.list(own_thread.id).data
    assert [(x.thread_id, x.content[0].type) for x in own_messages] == [(own_thread.id, "text")]
    assert o.message not in {x.id for x in m.list(own_thread.id, order="asc", after="msg_0")}
    assert [x.id for x in r.list(own_thread.id)] == [own_run.id]
    assert [x.id for x in s.list(own_run.id, thread_id=own_thread.id)] == []
    for page_args in ({}, {"after": o.assistant}, {"before": o.assistant}, {"order": "asc"}):
        listed = {x.id for x in a.list(limit=100, **page_args)}  # type: ignore[arg-type]
        assert o.assistant not in listed
    assert own_assistant.id in {x.id for x in a.list(limit=100)}
    assert [x.id for x in beta.files.list()] == [own_file.id]
    assert [x.id for x in vs.list()] == [own_store.id]

    # Nothing of alpha's moved: not the run (beta's cancel), not the thread's lock.
    assert snapshot(alpha_http, o) == before
    assert orjson.loads(before["run"])["status"] == "cancelling"
    assert before["file content"] == b"alpha's file"
    r.cancel(own_run.id, thread_id=own_thread.id)


def test_alpha_still_owns_everything(
    alpha: openai.OpenAI, beta: openai.OpenAI, objects: AlphaObjects
) -> None:
    """The same calls as alpha succeed, or fail only for a reason other than ownership."""
    o = objects
    assert alpha.beta.assistants.retrieve(o.assistant).name == "alpha's"
    assert alpha.beta.threads.retrieve(o.thread).metadata == {"o": "a"}
    assert alpha.files.retrieve(o.file).filename == "alpha.txt"
    assert alpha.vector_stores.retrieve(o.vector_store).name == "alpha's"
    with pytest.raises(openai.BadRequestError) as exc:  # locked, so it is alpha's and it exists
        alpha.beta.threads.messages.create(o.thread, role="user", content="x")
    assert f"while a run {o.run} is active" in exc.value.message
    with pytest.raises(openai.BadRequestError):
        alpha.beta.threads.runs.submit_tool_outputs(
            o.run, thread_id=o.thread, tool_outputs=[{"tool_call_id": "c", "output": "x"}]
        )
    assert alpha.beta.threads.runs.cancel(o.run, thread_id=o.thread).status == "cancelling"
    assert o.assistant in {x.id for x in alpha.beta.assistants.list(limit=100)}
    assert o.assistant not in {x.id for x in beta.beta.assistants.list(limit=100)}


def test_lists_are_disjoint_on_the_shared_server(
    client: openai.OpenAI, other_client: openai.OpenAI
) -> None:
    """On the server every other test uses, with whatever they left behind."""
    mine = client.beta.assistants.create(model="gpt-4o").id
    theirs = other_client.beta.assistants.create(model="gpt-4o").id
    alpha_ids = {x.id for x in client.beta.assistants.list(limit=100)}
    beta_ids = {x.id for x in other_client.beta.assistants.list(limit=100)}
    assert mine in alpha_ids and theirs in beta_ids
    assert not alpha_ids & beta_ids


def test_revoked_key_is_refused(idle_server: Server) -> None:
    out = idle_server.cli("keys", "create", "--project", "gamma").strip().splitlines()
    assert out[0].startswith("created key ") and out[0].endswith(" for project gamma")
    key_id, secret = out[0].split()[2], out[-1]
    second = idle_server.new_key("gamma")
    with make_client(idle_server, secret) as gamma, make_client(idle_server, second) as other:
        assistant = gamma.beta.assistants.create(model="gpt-4o")
        thread = gamma.beta.threads.create()
        assert idle_server.cli("keys", "revoke", key_id).strip() == f"revoked {key_id}"

        calls: list[Callable[[], object]] = [
            lambda: gamma.beta.assistants.list(),
            lambda: gamma.beta.assistants.retrieve(assistant.id),
            lambda: gamma.beta.assistants.create(model="gpt-4o"),
            lambda: gamma.beta.assistants.delete(assistant.id),
            lambda: gamma.beta.threads.retrieve(thread.id),
            lambda: gamma.beta.threads.messages.list(thread.id),
            lambda: gamma.beta.threads.runs.list(thread.id),
            lambda: gamma.models.list(),
        ]
        for call in calls:
            with pytest.raises(openai.AuthenticationError) as exc:
                call()
            assert exc.value.status_code == 401
            assert exc.value.code == "invalid_api_key"
            assert exc.value.type == "invalid_request_error"
            assert exc.value.body is not None and set(exc.value.body) == {  # type: ignore[arg-type]
                "message",
                "type",
                "param",
                "code",
            }
            assert secret not in str(exc.value.body)

        # The objects belong to the project, not the key: the project's other key still works.
        assert other.beta.assistants.retrieve(assistant.id).id == assistant.id
        assert other.beta.threads.retrieve(thread.id).id == thread.id
