"""The npm ``openai`` SDK (the version pinned in tests/node/package.json) streams a run and a
tool round-trip against a real server: ``tests/node/stream.mjs`` does what a Node application
does and prints what the SDK saw; this test prepares the scripted assistants and checks it.

``scripts/test`` installs the pinned SDK (``npm ci --prefix tests/node``). Without ``node`` the
test is skipped; with ``node`` but without the installed SDK it fails, so a missing install is
never mistaken for a pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.api.test_run_engine import WEATHER
from tests.api.test_streaming import CONTINUATION, FUNCTION_CALL, PLAIN, scripted, transcript
from tests.servers import Server
from tests.upstream import ScriptedUpstream, Text, ToolCalls

NODE = shutil.which("node")
NODE_DIR = Path(__file__).resolve().parent.parent / "node"
SCRIPT = NODE_DIR / "stream.mjs"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

CALLS = [("get_weather", '{"city": "Rome"}'), ("get_weather", '{"city": "Bern"}')]
OUTPUT = "20C"


def pinned_version() -> str:
    package = json.loads((NODE_DIR / "package.json").read_text())
    return str(package["dependencies"]["openai"])


def require_node_modules() -> None:
    if not (NODE_DIR / "node_modules" / "openai" / "package.json").is_file():
        pytest.fail(
            "tests/node/node_modules is missing: run scripts/test, which installs the pinned "
            "npm SDK (npm ci --prefix tests/node)",
            pytrace=False,
        )


def run_node(env: dict[str, str]) -> dict[str, Any]:
    assert NODE is not None
    proc = subprocess.run(
        [NODE, str(SCRIPT)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output from {SCRIPT.name} (exit {proc.returncode}):\n{proc.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    detail = (
        json.dumps({k: result.get(k) for k in ("errors", "exception")}, indent=2)
        + f"\nstderr:\n{proc.stderr}"
    )
    assert proc.returncode == 0 and not result["errors"] and "exception" not in result, detail
    return result


def test_node_sdk_streams_run_and_tool_round_trip(
    server: Server, client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    require_node_modules()
    plain_assistant = scripted(client, upstream, Text(["Hel", "lo", " world"]))
    plain_thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    key = uuid.uuid4().hex
    tool_assistant = client.beta.assistants.create(
        model="m",
        instructions=upstream.script(key, ToolCalls(CALLS), Text(["Warm ", "and cold."])),
        tools=[WEATHER],
    ).id
    tool_thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])

    result = run_node(
        {
            "ASSISTANTD_BASE_URL": server.base_url + "/v1",
            "ASSISTANTD_API_KEY": server.keys["alpha"],
            "ASSISTANTD_PLAIN_ASSISTANT_ID": plain_assistant,
            "ASSISTANTD_PLAIN_THREAD_ID": plain_thread.id,
            "ASSISTANTD_TOOL_ASSISTANT_ID": tool_assistant,
            "ASSISTANTD_TOOL_THREAD_ID": tool_thread.id,
            "ASSISTANTD_TOOL_OUTPUT": OUTPUT,
        }
    )
    assert result["sdk_version"] == pinned_version()

    # A plain answer: the canonical transcript, deltas that add up to the final message.
    plain = result["plain"]
    assert transcript(plain["events"]) == PLAIN
    assert plain["deltas"] == ["Hel", "lo", " world"]
    assert plain["final_run"]["status"] == "completed"
    assert plain["final_messages"] == ["".join(plain["deltas"])] == plain["stored_messages"]
    assert plain["text_done"] == ["Hello world"]

    # The tool round-trip, first leg: the stream pauses in requires_action with the calls.
    first = result["tool"]["first"]
    assert transcript(first["events"]) == FUNCTION_CALL
    paused = first["final_run"]
    assert paused["status"] == "requires_action"
    assert paused["required_action"]["type"] == "submit_tool_outputs"
    required = first["required_tool_calls"]
    assert [(c["type"], c["name"], c["arguments"]) for c in required] == [
        ("function", name, args) for name, args in CALLS
    ]
    assert first["tool_calls_created"] == [c["id"] for c in required]
    assert first["tool_calls_done"] == required  # the snapshots the SDK rebuilt from deltas
    assert [s["status"] for s in first["run_steps"]] == ["in_progress"]

    # Second leg: submitToolOutputsStream continues the same run to completion.
    second = result["tool"]["second"]
    assert transcript(second["events"]) == CONTINUATION
    done = second["final_run"]
    assert done["id"] == paused["id"] and done["status"] == "completed"
    assert "".join(second["deltas"]) == "Warm and cold."
    assert second["final_messages"] == ["Warm and cold."] == second["stored_messages"]
    assert [s["type"] for s in second["run_steps_done"]] == ["tool_calls", "message_creation"]

    # What the Node SDK submitted reached the model, and the server agrees on the outcome.
    tool_messages = [m for m in upstream.by_key[key][1]["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == [
        (c["id"], OUTPUT) for c in required
    ]
    run = client.beta.threads.runs.retrieve(paused["id"], thread_id=tool_thread.id)
    assert run.status == "completed"
