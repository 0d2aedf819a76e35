"""Plain HTTP, the way the API reference shows it: ``programs/curl_quickstart.sh`` drives the
server with ``curl`` (and ``jq``), reading the streams as raw server-sent events."""

from __future__ import annotations

import shutil

import pytest

from tests.api.test_streaming import PLAIN
from tests.clients.conftest import PROGRAMS, Clients
from tests.upstream import Text, ToolCalls

BASH, CURL, JQ = shutil.which("bash"), shutil.which("curl"), shutil.which("jq")

pytestmark = pytest.mark.skipif(
    not (BASH and CURL and JQ), reason="bash, curl and jq are needed for the curl program"
)


def test_curl_quickstart(clients: Clients) -> None:
    clients.script(
        "You are a personal math tutor. Answer math questions briefly.",
        Text(["3x = 3, ", "so x = 1."]),
        Text(["2x = 8, ", "so ", "x = 4."]),
    )
    sent = clients.script(
        "You are a weather bot. Use the provided functions to answer questions.",
        ToolCalls([("get_temperature", '{"city": "Paris"}')], ids=["call_paris"]),
        Text(["It is 18C ", "in Paris."]),
    )
    assert BASH is not None
    out = clients.run([BASH, str(PROGRAMS / "curl_quickstart.sh")])

    run_id, status = out.one("run").split()
    assert status == "completed"
    assert out.all("user") == ["I need to solve the equation `3x + 11 = 14`. Can you help me?"]
    assert out.all("assistant") == ["3x = 3, so x = 1."]

    # The raw stream: OpenAI's event order, frame by frame, then `done` and [DONE].
    events = out.all("event")
    folded = [e for i, e in enumerate(events) if i == 0 or e != events[i - 1]]
    assert [f"{e}*" if e.endswith(".delta") else e for e in folded] == [*PLAIN, "done"]
    assert events.count("thread.message.delta") == 3
    assert out.one("streamed text") == "2x = 8, so x = 4."
    assert "stream done" in out.stdout.splitlines()
    assert out.one("first event") == "thread.created"
    assert out.one("last event") == "done"

    # The function call read out of the requires_action frame and answered over HTTP.
    weather_run, call_id, arguments = out.one("requires action").split(" ", 2)
    assert call_id == "call_paris" and arguments == '{"city": "Paris"}'
    assert out.one("continuation ended") == "done"
    assert out.one("weather run") == "completed"
    assert out.one("weather answer") == "It is 18C in Paris."
    tool_message = next(m for m in sent[1]["messages"] if m["role"] == "tool")
    assert (tool_message["tool_call_id"], tool_message["content"]) == ("call_paris", "18")

    file_id, filename, size, file_status = out.one("file").split()
    assert (filename, size, file_status) == ("notes.txt", "32", "processed")

    sdk = clients.sdk(out.api_key)
    assert sdk.beta.threads.runs.retrieve(run_id, thread_id=out.one("thread")).status == "completed"
    run = sdk.beta.threads.runs.retrieve(weather_run, thread_id=out.one("weather thread"))
    assert run.status == "completed"
    assert sdk.files.content(file_id).read() == b"Season tickets cost 214 crowns.\n"
