"""The Python SDK, sync and async, as its users write it: each program in ``programs/`` runs
unchanged as a subprocess against a real server (only OPENAI_BASE_URL and OPENAI_API_KEY set),
and the test checks what it printed and what the server holds afterwards."""

from __future__ import annotations

import json
import sys

import pytest

from tests.api.test_streaming import CONTINUATION, FUNCTION_CALL, PLAIN, transcript
from tests.clients.conftest import PROGRAMS, Clients
from tests.upstream import Hang, Text, ToolCalls


def run_program(clients: Clients, name: str, api_key: str | None = None):  # type: ignore[no-untyped-def]
    return clients.run([sys.executable, str(PROGRAMS / name)], api_key=api_key)


def test_quickstart_create_and_poll(clients: Clients) -> None:
    sent = clients.script(
        "You are a personal math tutor. Answer math questions briefly.",
        Text(["3x = 3, ", "so x = 1."], usage=(31, 9)),
    )
    out = run_program(clients, "quickstart.py")

    run_id, status = out.one("run").split()
    assert status == "completed"
    assert out.all("assistant")[0] == "3x = 3, so x = 1."
    assert out.one("usage") == "31 9 40"
    # The second run went through create_and_run_poll; nothing was scripted, so it echoes.
    second_id, second_thread, second_status = out.one("second run").split()
    assert second_status == "completed"
    assert out.all("user")[-1] == "What is 7 times 6?"
    assert out.all("assistant")[-1] == "echo: What is 7 times 6?"
    assert out.all("past run") == [f"{run_id} completed"]

    # What the server holds agrees, and the model saw the user's question and instructions.
    sdk = clients.sdk(out.api_key)
    thread_id = out.one("thread")
    run = sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert run.status == "completed" and run.assistant_id == out.one("created assistant")
    stored = sdk.beta.threads.messages.list(thread_id, order="asc").data
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].content[0].text.value == "3x = 3, so x = 1."  # type: ignore[union-attr]
    assert sent[0]["messages"][-1]["content"].startswith("I need to solve the equation")
    second = sdk.beta.threads.runs.retrieve(second_id, thread_id=second_thread)
    assert second.status == "completed" and second.thread_id != thread_id


def test_stream_with_event_handler(clients: Clients) -> None:
    clients.script(
        "You are a poet. Answer every question with a short verse.",
        Text(["Waves ", "fold ", "into ", "foam."]),
        Text(["Hills ", "hold ", "the sky."]),
    )
    out = run_program(clients, "stream_text.py")

    lines = out.stdout.splitlines()
    assert "assistant > Waves fold into foam." in lines
    assert out.all("step") == ["message_creation"]
    message_id, message_status = out.one("message done").split()
    assert message_status == "completed"
    run_id, status = out.one("run").split()
    assert status == "completed"
    assert transcript(out.one("events").split()) == PLAIN

    sdk = clients.sdk(out.api_key)
    thread_id = out.one("thread")
    message = sdk.beta.threads.messages.retrieve(message_id, thread_id=thread_id)
    assert message.run_id == run_id
    assert message.content[0].text.value == "Waves fold into foam."  # type: ignore[union-attr]
    newest = sdk.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert newest.content[0].text.value == "Hills hold the sky."  # type: ignore[union-attr]


def test_stream_with_submit_tool_outputs_stream(clients: Clients) -> None:
    calls = [("get_temperature", '{"city": "Paris"}'), ("get_temperature", '{"city": "Oslo"}')]
    sent = clients.script(
        "You are a weather bot. Use the provided functions to answer questions.",
        ToolCalls(calls),
        Text(["Paris is 18C, ", "Oslo is 4C."]),
    )
    out = run_program(clients, "stream_tools.py")

    created = out.all("tool call")
    assert [c.split()[1] for c in created] == ["get_temperature", "get_temperature"]
    assert out.all("tool call arguments") == [args for _name, args in calls]
    assert out.one("submitting") == "2"
    assert out.one("answer") == "Paris is 18C, Oslo is 4C."
    run_id, status = out.one("final run").split()
    assert status == "completed"

    # The outputs the program computed reached the model, answering the right calls.
    tool_messages = [m for m in sent[1]["messages"] if m["role"] == "tool"]
    call_ids = [c.split()[0] for c in created]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == list(
        zip(call_ids, ["18", "4"], strict=True)
    )
    sdk = clients.sdk(out.api_key)
    steps = sdk.beta.threads.runs.steps.list(run_id, thread_id=out.one("thread"), order="asc")
    assert [s.type for s in steps.data] == ["tool_calls", "message_creation"]
    outputs = [c.function.output for c in steps.data[0].step_details.tool_calls]  # type: ignore[union-attr]
    assert outputs == ["18", "4"]


def test_function_calling_with_polling(clients: Clients) -> None:
    sent = clients.script(
        "You are a stock helper. Look prices up with get_stock_price.",
        ToolCalls([("get_stock_price", '{"symbol": "ACME"}')]),
        ToolCalls([("get_stock_price", '{"symbol": "GLOBEX"}')]),
        Text(["ACME 101.5, GLOBEX 47.25."]),
    )
    out = run_program(clients, "function_calling.py")

    statuses = [r.split()[1] for r in out.all("run")]
    assert statuses == ["requires_action", "requires_action", "completed"]
    assert len({r.split()[0] for r in out.all("run")}) == 1
    assert out.all("called") == ["get_stock_price ACME", "get_stock_price GLOBEX"]
    assert out.one("steps") == "tool_calls tool_calls message_creation"
    assert out.one("answer") == "ACME 101.5, GLOBEX 47.25."
    assert [m["content"] for m in sent[2]["messages"] if m["role"] == "tool"] == [
        "101.5",
        "47.25",
    ]


def test_file_search_upload_helpers(clients: Clients) -> None:
    answer = "It costs 214 crowns 【0:0†tickets.txt】."
    sent = clients.script(
        "You are a guide to the Larkspur tramway. Answer from the files you have.",
        ToolCalls([("file_search", json.dumps({"queries": ["season ticket price"]}))]),
        Text([answer[:12], answer[12:]]),
    )
    out = run_program(clients, "file_search.py")

    assert out.one("batch") == "completed 3 3"
    single_id, single_status = out.one("single file").split()
    assert single_status == "completed"
    uploaded_id, filename, size = out.one("uploaded").split()
    assert filename == "history.txt" and int(size) > 0
    assert out.one("thread stores") == "1"
    assert out.one("run").split()[1] == "completed"
    assert out.one("answer") == "It costs 214 crowns [0]."
    assert out.all("citation") == ["[0] tickets.txt"]
    assert out.one("store files") == "4 ['completed', 'completed', 'completed', 'completed']"

    # The search the model asked for read the batch's files back to it.
    tool_message = next(m for m in sent[1]["messages"] if m["role"] == "tool")
    assert "【0:0†tickets.txt】" in tool_message["content"]
    assert "214 crowns" in tool_message["content"]
    sdk = clients.sdk(out.api_key)
    store = sdk.vector_stores.retrieve(out.one("vector store"))
    assert store.status == "completed"
    assert (store.file_counts.completed, store.file_counts.total) == (4, 4)
    assert sdk.files.retrieve(single_id).filename == "timetable.txt"
    assert sdk.files.content(uploaded_id).read().startswith(b"The Larkspur tramway opened")


def test_auto_pagination(clients: Clients) -> None:
    key = clients.project_key()  # a project of its own: the lists hold only what it made
    out = run_program(clients, "pagination.py", api_key=key)

    created = out.one("created").split()
    listed = [line.split()[0] for line in out.all("assistant")]
    assert listed == list(reversed(created))  # newest first, every page, no repeats
    assert [line.split(" ", 1)[1] for line in out.all("assistant")] == [
        f"Helper {i}" for i in reversed(range(7))
    ]
    assert out.one("pages") == "3"
    assert out.one("notes") == "note 0, note 1, note 2, note 3, note 4"
    assert out.one("deleted") == "1"
    assert out.one("remaining") == "6"
    remaining = clients.sdk(key).beta.assistants.list(limit=100).data
    assert [a.id for a in remaining] == list(reversed(created[1:]))


def test_cancel_a_running_run(clients: Clients) -> None:
    clients.script(
        "You are a storyteller. Tell very long stories.",
        Hang(["Once upon a time"], seconds=60),
    )
    out = run_program(clients, "cancel.py")

    run_id, started = out.one("started").split()
    assert started == "in_progress"
    assert out.one("cancel answered") == "cancelling"
    assert out.one("run") == f"{run_id} cancelled True"
    assert out.one("message") == "incomplete run_cancelled"
    assert out.one("partial") == "Once upon a time"
    run = clients.sdk(out.api_key).beta.threads.runs.retrieve(run_id, thread_id=out.one("thread"))
    assert run.status == "cancelled"


def test_async_runs_and_streams(clients: Clients) -> None:
    calls = [("river_length", '{"river": "Danube"}'), ("river_length", '{"river": "Rhine"}')]
    sent = clients.script(
        "You are a river expert. Use river_length for lengths.",
        Text(["The Danube ", "flows through Vienna."]),
        ToolCalls(calls),
        Text(["The Danube is 2850 km, ", "the Rhine 1233 km."]),
    )
    out = run_program(clients, "async_runs.py")

    assert out.one("polled run").split()[1] == "completed"
    assert out.one("polled answer") == "The Danube flows through Vienna."
    assert out.all("tool call") == ["river_length", "river_length"]
    paused_id, paused = out.one("streamed run").split()
    assert paused == "requires_action"
    assert out.one("continued run") == f"{paused_id} completed"
    assert "assistant > The Danube is 2850 km, the Rhine 1233 km." in out.stdout.splitlines()
    assert out.one("create_and_run_poll").split()[1] == "completed"
    assert out.all("assistant")[-1] == "echo: Name a river in Spain."
    assert [m["content"] for m in sent[2]["messages"] if m["role"] == "tool"] == ["2850", "1233"]

    events = clients.sdk(out.api_key).beta.threads.runs.steps.list(
        paused_id, thread_id=out.one("thread"), order="asc"
    )
    assert [s.type for s in events.data] == ["tool_calls", "message_creation"]


def test_async_pagination_and_upload_helpers(clients: Clients) -> None:
    key = clients.project_key()
    out = run_program(clients, "async_pagination_files.py", api_key=key)

    assert out.one("threads made") == "5"
    assert out.one("assistants") == ", ".join(f"Async helper {i}" for i in range(5))
    assert out.one("pages") == "3"
    assert out.one("batch") == "completed 2"
    assert out.one("single") == "completed"
    assert out.one("store files") == "completed, completed, completed"
    assert out.one("top hit") == "beta.md"
    stores = clients.sdk(key).vector_stores.list().data
    assert len(stores) == 1 and stores[0].file_counts.completed == 3


# The transcripts are imported for the stream tests; keep them referenced for readers.
assert FUNCTION_CALL and CONTINUATION
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
