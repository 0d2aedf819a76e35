"""code_interpreter in runs: the scripted model calls it, the real sandbox runs the code."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import openai
import pytest

from tests.servers import Server
from tests.upstream import ScriptedUpstream, Text, ToolCalls

CI = [{"type": "code_interpreter"}]


def call(code: str) -> ToolCalls:
    return ToolCalls([("code_interpreter", json.dumps({"code": code}))])


def scripted(client: openai.OpenAI, upstream: ScriptedUpstream, *turns: Any, **kw: Any) -> str:
    key = uuid.uuid4().hex
    return client.beta.assistants.create(
        model="m", instructions=upstream.script(key, *turns), tools=CI, **kw
    ).id


@pytest.fixture(autouse=True)
def _needs_sandbox(server: Server) -> None:
    log = server.log()
    if "code_interpreter is disabled" in log:
        pytest.fail(f"the sandbox is unavailable on this host: {log}")


def run_in(client: openai.OpenAI, thread_id: str, assistant_id: str) -> Any:
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    return run


def tool_call(client: openai.OpenAI, thread_id: str, run_id: str) -> Any:
    steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc").data
    assert steps[0].type == "tool_calls" and steps[0].status == "completed"
    call = steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "code_interpreter"
    return call


def test_arithmetic_in_logs_and_model_sees_output(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    key = uuid.uuid4().hex
    assistant = client.beta.assistants.create(
        model="m",
        instructions=upstream.script(key, call("print(6 * 7)"), Text(["It is 42."])),
        tools=CI,
    ).id
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "6*7?"}])
    run = run_in(client, thread.id, assistant)
    ci = tool_call(client, thread.id, run.id)
    assert ci.code_interpreter.input == "print(6 * 7)"
    assert ci.code_interpreter.outputs[0].type == "logs"
    assert ci.code_interpreter.outputs[0].logs.strip() == "42"
    offered = upstream.by_key[key][0]["tools"]
    assert [t["function"]["name"] for t in offered] == ["code_interpreter"]
    tool_message = upstream.by_key[key][1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"].strip() == "42"


def test_state_persists_per_thread(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = scripted(
        client, upstream, call("x = 21"), Text(["set"]), call("print(x * 2)"), Text(["done"])
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    run_in(client, thread.id, assistant)
    client.beta.threads.messages.create(thread.id, role="user", content="again")
    second = run_in(client, thread.id, assistant)
    assert tool_call(client, thread.id, second.id).code_interpreter.outputs[0].logs.strip() == "42"
    # another thread does not see x
    other_assistant = scripted(client, upstream, call("print(x)"), Text(["?"]))
    other = client.beta.threads.create(messages=[{"role": "user", "content": "x?"}])
    run = run_in(client, other.id, other_assistant)
    logs = tool_call(client, other.id, run.id).code_interpreter.outputs[0].logs
    assert "NameError" in logs


def test_figure_becomes_image_file(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])"
    assistant = scripted(client, upstream, call(code), Text(["Here is the plot."]))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "plot"}])
    run = run_in(client, thread.id, assistant)
    ci = tool_call(client, thread.id, run.id)
    images = [o for o in ci.code_interpreter.outputs if o.type == "image"]
    assert len(images) == 1
    file_id = images[0].image.file_id
    assert client.files.content(file_id).read()[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.files.retrieve(file_id).purpose == "assistants_output"
    message = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    kinds = [p.type for p in message.content]
    assert kinds == ["text", "image_file"]
    assert message.content[1].image_file.file_id == file_id  # type: ignore[union-attr]


def test_uploaded_csv_in_and_written_csv_out(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    upload = client.files.create(
        file=("sales.csv", io.BytesIO(b"region,amount\nnorth,10\nsouth,32\n")),
        purpose="assistants",
    )
    code = (
        "import pandas as pd\n"
        "df = pd.read_csv('/mnt/data/sales.csv')\n"
        "print(df.amount.sum())\n"
        "df.assign(double=df.amount * 2).to_csv('/mnt/data/doubled.csv', index=False)"
    )
    answer = "Total 42. [Download](sandbox:/mnt/data/doubled.csv)"
    assistant = scripted(client, upstream, call(code), Text([answer]))
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "sum it",
                "attachments": [{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    run = run_in(client, thread.id, assistant)
    logs = tool_call(client, thread.id, run.id).code_interpreter.outputs[0].logs
    assert logs.strip() == "42"
    message = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    text = message.content[0].text  # type: ignore[union-attr]
    assert text.value == answer
    [annotation] = text.annotations
    assert annotation.type == "file_path"
    assert annotation.text == "sandbox:/mnt/data/doubled.csv"
    assert answer[annotation.start_index : annotation.end_index] == annotation.text
    data = client.files.content(annotation.file_path.file_id).read()  # type: ignore[union-attr]
    assert data.decode().splitlines() == ["region,amount,double", "north,10,20", "south,32,64"]


def test_errors_are_contained(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = scripted(
        client,
        upstream,
        call("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)"),
        Text(["no network"]),
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "net"}])
    run = run_in(client, thread.id, assistant)
    logs = tool_call(client, thread.id, run.id).code_interpreter.outputs[0].logs
    assert "Error" in logs  # ConnectionRefusedError / OSError inside the sandbox
    assert client.beta.threads.retrieve(thread.id).id == thread.id


def test_stream_carries_input_and_outputs(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    assistant = scripted(client, upstream, call("print('hi from the sandbox')"), Text(["ok"]))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "run it"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant) as stream:
        stream.until_done()
        steps = stream.get_final_run_steps()
        run = stream.get_final_run()
    assert run.status == "completed"
    tool_step = next(s for s in steps if s.type == "tool_calls")
    snapshot = tool_step.step_details.tool_calls[0]  # type: ignore[union-attr]
    assert snapshot.type == "code_interpreter"
    assert snapshot.code_interpreter.input == "print('hi from the sandbox')"
    assert snapshot.code_interpreter.outputs[0].logs.strip() == "hi from the sandbox"
