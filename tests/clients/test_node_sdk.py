"""The npm ``openai`` SDK (pinned in tests/node/package.json) as its users write it: the
programs in ``tests/node/`` run unchanged with ``node`` against a real server, with only
OPENAI_BASE_URL and OPENAI_API_KEY set. Skipped without ``node``; failed, not skipped, when
``node`` is there but the pinned SDK is not installed (``scripts/test`` runs ``npm ci``)."""

from __future__ import annotations

import pytest

from tests.api.test_node_sdk import NODE, require_node_modules
from tests.clients.conftest import NODE_DIR, Clients, Outcome
from tests.upstream import Text, ToolCalls

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

WEATHER = "You are a weather bot. Use the provided functions to answer questions."


def run_node(clients: Clients, name: str, api_key: str | None = None) -> Outcome:
    require_node_modules()
    assert NODE is not None
    return clients.run([NODE, str(NODE_DIR / name)], api_key=api_key, cwd=NODE_DIR)


def test_runs_polling_streaming_and_tool_outputs(clients: Clients) -> None:
    clients.script(
        "You are a personal math tutor. Answer math questions briefly.",
        Text(["3x = 3, ", "so x = 1."]),
    )
    calls = [("get_temperature", '{"city": "Paris"}'), ("get_temperature", '{"city": "Oslo"}')]
    sent = clients.script(
        WEATHER,
        ToolCalls(calls),
        Text(["Paris is 18C, ", "Oslo is 4C."]),
        ToolCalls([("get_temperature", '{"city": "Oslo"}')]),
        Text(["Still 4C in Oslo."]),
    )
    out = run_node(clients, "quickstart.mjs")

    # createAndPoll, then the messages of that run.
    run_id, status = out.one("run").split()
    assert status == "completed"
    assert out.all("assistant")[0] == "3x = 3, so x = 1."
    # createAndRunPoll and `for await` over the new thread's messages.
    assert out.one("second run").split()[1] == "completed"
    assert out.all("user") == ["What is 7 times 6?"]
    assert out.all("assistant")[1] == "echo: What is 7 times 6?"
    # .stream() with textCreated / textDelta / textDone listeners (unscripted: an echo).
    lines = out.stdout.splitlines()
    assert "assistant > echo: And 2x = 8?" in lines
    assert out.one("streamed run").split()[1] == "completed"

    # The streamed function call and submitToolOutputsStream.
    created = out.all("tool call")
    assert [c.split()[1] for c in created] == ["get_temperature", "get_temperature"]
    assert out.all("tool call arguments") == [args for _name, args in calls]
    paused_id, paused = out.one("paused run").split()
    assert paused == "requires_action"
    assert out.one("answer") == "Paris is 18C, Oslo is 4C."
    assert out.one("final run") == f"{paused_id} completed"
    tool_messages = [m for m in sent[1]["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == list(
        zip([c.split()[0] for c in created], ["18", "4"], strict=True)
    )

    # createAndPoll stopping at requires_action, then submitToolOutputsAndPoll.
    polled = out.all("polled run")
    assert [p.split()[1] for p in polled] == ["requires_action", "completed"]
    assert out.one("polled answer") == "Still 4C in Oslo."

    sdk = clients.sdk(out.api_key)
    thread_id = out.one("thread")
    assert sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status == "completed"
    runs = sdk.beta.threads.runs.list(out.one("weather thread")).data
    assert [r.status for r in runs] == ["completed", "completed"]


def test_for_await_pagination_and_upload_helpers(clients: Clients) -> None:
    key = clients.project_key()
    out = run_node(clients, "pagination_files.mjs", api_key=key)

    created = out.one("created").split()
    assert [line.split()[0] for line in out.all("assistant")] == list(reversed(created))
    assert out.one("pages") == "3"
    assert out.one("batch") == "completed 3 3"
    assert out.one("single") == "completed"
    file_id, filename, size = out.one("uploaded").split()
    assert filename == "apples.md" and int(size) > 0
    assert out.one("store files") == "completed, completed, completed, completed"
    assert out.one("top hit") == "bananas.md"

    sdk = clients.sdk(key)
    store = sdk.vector_stores.retrieve(out.one("vector store"))
    assert (store.status, store.file_counts.completed, store.file_counts.total) == (
        "completed",
        4,
        4,
    )
    assert sdk.files.content(file_id).read() == b"# apples\nThis note is all about apples.\n"
