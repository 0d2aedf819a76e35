"""Frameworks built on the Assistants API, each running its own program, unchanged, against a
real server: LangChain, AutoGen (0.4+ and 0.2), LlamaIndex (on the 1.x `openai` SDK) and
Semantic Kernel.

Each framework lives in a venv of its own under ``.venv-clients/`` (``scripts/clients-env``,
from the pinned lists in ``frameworks/``), since they pin different SDKs; the programs run with
that venv's interpreter. ``scripts/test`` installs the light set (``LIGHT`` in
``scripts/clients-env``), so a missing light venv fails; the others are skipped unless
``ASSISTANTD_TEST_FRAMEWORKS=required`` (``make clients-frameworks``) asks for every one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.clients.conftest import PROGRAMS, Clients, Outcome
from tests.servers import BACKENDS
from tests.upstream import Text, ToolCalls

# What a framework does is the same on every database (the SDK programs run on each): these
# use the first backend's server only.
pytestmark = pytest.mark.parametrize("clients", BACKENDS[:1], indirect=True)

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".venv-clients"
SETUP = ROOT / "scripts" / "clients-env"
LIGHT = set(re.findall(r"^LIGHT=\((.*)\)$", SETUP.read_text(), re.M)[0].split())
REQUIRED = os.environ.get("ASSISTANTD_TEST_FRAMEWORKS") == "required"

WEATHER = "You are a weather bot. Use the provided functions to answer questions."
TUTOR = "You are a personal math tutor. Answer math questions briefly."


def run_framework(clients: Clients, name: str, program: str) -> Outcome:
    python = VENVS / name / "bin" / "python"
    if not python.exists():
        message = f"{VENVS.name}/{name} is missing: run scripts/clients-env {name}"
        if name in LIGHT or REQUIRED:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return clients.run([str(python), "-W", "ignore", str(PROGRAMS / "frameworks" / program)])


def tool_outputs(request: dict[str, object]) -> list[tuple[str, str]]:
    messages = request["messages"]
    assert isinstance(messages, list)
    return [(m["tool_call_id"], m["content"]) for m in messages if m["role"] == "tool"]


def test_langchain(clients: Clients) -> None:
    clients.script(TUTOR, Text(["x = 10 - ", "4^2.7"]), Text(["Squared, ", "even more."]))
    sent = clients.script(
        WEATHER,
        ToolCalls([("get_temperature", '{"city": "Paris"}')], ids=["call_lc"]),
        Text(["It is 18C ", "in Paris."]),
    )
    out = run_framework(clients, "langchain", "langchain_assistant.py")

    assert out.one("reply") == "x = 10 - 4^2.7"
    assert out.one("follow-up") == "Squared, even more. True"
    # AgentExecutor ran the tool and submitted its output to the same run.
    assert out.one("agent output") == "It is 18C in Paris."
    assert tool_outputs(sent[1]) == [("call_lc", "18")]
    assert [t["function"]["name"] for t in sent[0]["tools"]] == ["get_temperature"]
    assert out.one("v2 reply") == "echo: What is 7 times 6?"
    sdk = clients.sdk(out.api_key)
    run = sdk.beta.threads.runs.retrieve(out.one("agent run"), thread_id=out.one("agent thread"))
    assert run.status == "completed"
    steps = sdk.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]


def test_autogen(clients: Clients) -> None:
    sent = clients.script(
        WEATHER,
        ToolCalls([("get_temperature", '{"city": "Paris"}')], ids=["call_ag"]),
        Text(["It is 18C ", "in Paris."]),
        Text(["Mild, ", "per climate.txt."]),
    )
    out = run_framework(clients, "autogen", "autogen_assistant.py")

    assert out.one("reply") == "It is 18C in Paris."
    assert tool_outputs(sent[1]) == [("call_ag", "18")]
    assert sorted(t["function"]["name"] for t in sent[0]["tools"]) == [
        "file_search",
        "get_temperature",
    ]
    assert out.one("second reply") == "Mild, per climate.txt."
    assert out.one("uploaded").startswith("file-")
    assert "cleaned up" in out.stdout.splitlines()
    # The agent cleaned up after itself: its assistant, files and store are gone.
    sdk = clients.sdk(out.api_key)
    ids = {
        "assistant": out.one("assistant id"),
        "file": out.one("uploaded"),
        "store": out.one("vector store"),
    }
    assert ids["assistant"] not in [a.id for a in sdk.beta.assistants.list(limit=100)]
    assert ids["file"] not in [f.id for f in sdk.files.list()]
    assert ids["store"] not in [s.id for s in sdk.vector_stores.list(limit=100)]
    # on_reset deleted the thread's messages.
    assert sdk.beta.threads.messages.list(out.one("thread")).data == []


def test_pyautogen(clients: Clients) -> None:
    sent = clients.script(
        WEATHER,
        ToolCalls([("get_temperature", '{"city": "Paris"}')], ids=["call_pa"]),
        Text(["It is 18C ", "in Paris."]),
    )
    out = run_framework(clients, "pyautogen", "pyautogen_assistant.py")

    assert out.one("reply") == "It is 18C in Paris."
    assert tool_outputs(sent[1]) == [("call_pa", "18")]
    assert "deleted" in out.stdout.splitlines()
    sdk = clients.sdk(out.api_key)
    assert out.one("assistant id") not in [a.id for a in sdk.beta.assistants.list(limit=100)]
    runs = sdk.beta.threads.runs.list(out.one("thread")).data
    assert [r.status for r in runs] == ["completed"]


def test_llamaindex(clients: Clients) -> None:
    sent = clients.script(
        WEATHER,
        ToolCalls([("get_temperature", '{"city": "Paris"}')], ids=["call_li"]),
        Text(["It is 18C ", "in Paris."]),
    )
    out = run_framework(clients, "llamaindex", "llamaindex_assistant.py")

    assert out.one("reply") == "It is 18C in Paris."
    assert out.one("sources") == "18"
    assert tool_outputs(sent[1]) == [("call_li", "18")]
    assert out.all("history") == ["user How warm is it in Paris?", "assistant It is 18C in Paris."]


def test_semantic_kernel(clients: Clients) -> None:
    name = "WeatherPlugin-get_temperature"
    sent = clients.script(
        WEATHER,
        ToolCalls([(name, '{"city": "Paris"}')], ids=["call_sk1"]),
        Text(["It is 18C ", "in Paris."]),
        ToolCalls([(name, '{"city": "Oslo"}')], ids=["call_sk2"]),
        Text(["And 4C ", "in Oslo."]),
    )
    out = run_framework(clients, "semantic-kernel", "semantic_kernel_assistant.py")

    assert out.one("reply") == "It is 18C in Paris."
    assert out.one("streamed reply") == "And 4C in Oslo."
    assert [t["function"]["name"] for t in sent[0]["tools"]] == [name]
    assert tool_outputs(sent[1]) == [("call_sk1", "18")]
    assert tool_outputs(sent[3])[-1] == ("call_sk2", "4")
    assert "cleaned up" in out.stdout.splitlines()
