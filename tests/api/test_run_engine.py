"""Runs executed end to end: real server, real SDK, the scripted model over real HTTP."""

from __future__ import annotations

import json
import time
import uuid

import openai
import pytest
from openai.types.beta.threads import Run

from tests.upstream import Broken, Error, Garbage, Hang, ScriptedUpstream, Text, ToolCalls

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def scripted(
    client: openai.OpenAI, upstream: ScriptedUpstream, *turns: object, **kwargs: object
) -> tuple[str, str]:
    """An assistant whose model calls follow ``turns``; returns (assistant id, script key)."""
    key = uuid.uuid4().hex
    instructions = upstream.script(key, *turns)  # type: ignore[arg-type]
    assistant = client.beta.assistants.create(model="m", instructions=instructions, **kwargs)  # type: ignore[arg-type]
    return assistant.id, key


def wait_for(client: openai.OpenAI, run: Run, statuses: set[str], timeout: float = 15) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
        if run.status in statuses:
            return run
        time.sleep(0.02)
    raise AssertionError(f"run {run.id} stayed {run.status}")


def test_create_and_poll_completes(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, key = scripted(client, upstream, Text(["Hel", "lo ", "there"], usage=(42, 3)))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    assert run.completed_at is not None and run.started_at is not None
    assert run.expires_at is None and run.required_action is None and run.last_error is None
    assert run.usage is not None
    assert (run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens) == (
        42,
        3,
        45,
    )
    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    answer = messages[1]
    assert answer.status == "completed" and answer.run_id == run.id
    assert answer.assistant_id == assistant_id and answer.completed_at is not None
    assert answer.content[0].type == "text" and answer.content[0].text.value == "Hello there"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert len(steps) == 1
    step = steps[0]
    assert step.type == "message_creation" and step.status == "completed"
    assert step.step_details.type == "message_creation"
    assert step.step_details.message_creation.message_id == answer.id
    assert step.usage is not None and step.usage.total_tokens == 45
    got = client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id)
    assert got.model_dump() == step.model_dump()
    sent = upstream.by_key[key][0]
    assert sent["stream"] is True
    assert sent["messages"][0] == {"role": "system", "content": f"script:{key}"}
    assert sent["messages"][1] == {"role": "user", "content": "Hi"}


def test_overrides_reach_the_upstream(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, key = scripted(client, upstream, Text(["ok"]), temperature=0.2)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        model="custom-model",
        instructions=f"script:{key} override",
        additional_instructions="Answer in French.",
        additional_messages=[{"role": "user", "content": "second"}],
        tools=[WEATHER],
        temperature=1.3,
        top_p=0.7,
        max_completion_tokens=300,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
        },
    )
    assert run.status == "completed"
    sent = upstream.by_key[key][0]
    assert sent["model"] == "custom-model"
    assert sent["messages"][0]["content"] == f"script:{key} override\n\nAnswer in French."
    assert [m["content"] for m in sent["messages"][1:]] == ["first", "second"]
    assert sent["temperature"] == 1.3 and sent["top_p"] == 0.7
    assert sent["max_tokens"] == 300
    assert sent["tools"] == [WEATHER]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True


def test_json_object_and_tool_choice_required(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    assistant_id, key = scripted(
        client,
        upstream,
        Text(['{"a": 1}']),
        tools=[WEATHER],
        response_format={"type": "json_object"},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "json"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, tool_choice="required"
    )
    assert run.status == "completed"
    sent = upstream.by_key[key][0]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["tool_choice"] == "required"
    assert sent["parallel_tool_calls"] is True


@pytest.mark.parametrize("parallel", [False, True])
def test_function_round_trip(
    client: openai.OpenAI, upstream: ScriptedUpstream, parallel: bool
) -> None:
    calls = [("get_weather", '{"city": "Paris"}')]
    if parallel:
        calls.append(("get_weather", '{"city": "Oslo"}'))
    assistant_id, key = scripted(
        client,
        upstream,
        ToolCalls(calls, usage=(20, 8)),
        Text(["It is sunny."], usage=(30, 4)),
        tools=[WEATHER],
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "requires_action"
    assert run.required_action is not None
    tool_calls = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, c.function.arguments) for c in tool_calls] == calls
    assert run.usage is None
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert len(steps) == 1 and steps[0].type == "tool_calls"
    assert steps[0].status == "in_progress" and steps[0].usage is None
    # still locked while waiting for outputs
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.messages.create(thread.id, role="user", content="hello?")

    outputs = [{"tool_call_id": c.id, "output": f"sunny {i}"} for i, c in enumerate(tool_calls)]
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=outputs
    )
    assert done.status == "completed"
    assert done.usage is not None and done.usage.prompt_tokens == 50
    assert done.usage.completion_tokens == 12
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    tool_step = steps[0]
    assert tool_step.status == "completed" and tool_step.usage is not None
    assert tool_step.usage.total_tokens == 28
    assert tool_step.step_details.type == "tool_calls"
    assert [c.function.output for c in tool_step.step_details.tool_calls] == [  # type: ignore[union-attr]
        o["output"] for o in outputs
    ]
    second = upstream.by_key[key][1]
    assistant_turn = second["messages"][-1 - len(calls)]
    assert assistant_turn["role"] == "assistant"
    assert [c["id"] for c in assistant_turn["tool_calls"]] == [c.id for c in tool_calls]
    tool_msgs = second["messages"][-len(calls) :]
    assert [(m["role"], m["tool_call_id"], m["content"]) for m in tool_msgs] == [
        ("tool", o["tool_call_id"], o["output"]) for o in outputs
    ]


def test_submit_requires_every_output(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, _ = scripted(
        client,
        upstream,
        ToolCalls([("get_weather", "{}"), ("get_weather", "{}")]),
        tools=[WEATHER],
    )
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.required_action is not None
    first = run.required_action.submit_tool_outputs.tool_calls[0]
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": first.id, "output": "x"}]
        )
    assert exc.value.param == "tool_outputs"  # type: ignore[attr-defined]
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == (
        "requires_action"
    )
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert wait_for(client, run, {"cancelled"}).status == "cancelled"


def test_cancel_in_progress(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, key = scripted(client, upstream, Hang(["partial ", "answer"], seconds=60))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    # wait until the model is streaming (the assistant message exists)
    deadline = time.monotonic() + 10
    while not client.beta.threads.messages.list(thread.id, run_id=run.id).data:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status == "cancelling"
    done = wait_for(client, run, {"cancelled"}, timeout=5)
    assert time.monotonic() - started < 2.0
    assert done.cancelled_at is not None and done.expires_at is None
    message = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert message.status == "incomplete"
    assert message.incomplete_details is not None
    assert message.incomplete_details.reason == "run_cancelled"
    assert message.content[0].type == "text"
    assert message.content[0].text.value == "partial answer"
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    assert step.status == "cancelled" and step.cancelled_at is not None
    deadline = time.monotonic() + 5
    while key not in upstream.aborted:  # the in-flight upstream request was aborted
        assert time.monotonic() < deadline, "upstream request was not aborted"
        time.sleep(0.02)
    client.beta.threads.messages.create(thread.id, role="user", content="unlocked")


def test_cancel_requires_action(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, _ = scripted(
        client, upstream, ToolCalls([("get_weather", "{}")]), tools=[WEATHER]
    )
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "requires_action"
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    done = wait_for(client, run, {"cancelled"}, timeout=5)
    assert done.required_action is None
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    assert step.status == "cancelled"
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "x", "output": "y"}]
        )
    assert 'Runs in status "cancelled" do not accept tool outputs.' in str(exc.value)


@pytest.mark.parametrize(
    ("turns", "code"),
    [
        ((Error(429, "slow down"),), "rate_limit_exceeded"),
        ((Error(500), Error(502)), "server_error"),
        ((Garbage(), Garbage()), "server_error"),
        ((Broken(), Broken()), "server_error"),
        ((Error(400, "bad request"),), "invalid_prompt"),
    ],
)
def test_upstream_failures(
    client: openai.OpenAI, upstream: ScriptedUpstream, turns: tuple[object, ...], code: str
) -> None:
    assistant_id, _ = scripted(client, upstream, *turns)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "failed"
    assert run.failed_at is not None and run.expires_at is None
    assert run.last_error is not None and run.last_error.code == code
    assert run.last_error.message
    # the thread is usable again
    client.beta.threads.messages.create(thread.id, role="user", content="again")


def test_upstream_5xx_is_retried(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, key = scripted(client, upstream, Error(503), Text(["recovered"]))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    assert len(upstream.by_key[key]) == 2
    answer = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert len(answer) == 1 and answer[0].content[0].text.value == "recovered"  # type: ignore[union-attr]


def test_max_completion_tokens_gives_incomplete(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    assistant_id, _ = scripted(
        client, upstream, Text(["a long", " answer"], usage=(10, 256), finish="length")
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "talk"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, max_completion_tokens=256
    )
    assert run.status == "incomplete"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage is not None and run.usage.completion_tokens == 256
    message = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert message.status == "incomplete"
    assert message.incomplete_details is not None
    assert message.incomplete_details.reason == "max_tokens"


def test_max_prompt_tokens(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    # Older messages are dropped to fit ("auto"); a newest message that alone is too big
    # makes the run incomplete.
    assistant_id, key = scripted(client, upstream, Text(["fits"]))
    filler = "word " * 300
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": f"old {filler}"},
            {"role": "user", "content": "recent question"},
        ]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, max_prompt_tokens=256
    )
    assert run.status == "completed"
    sent = upstream.by_key[key][0]
    assert [m["content"] for m in sent["messages"][1:]] == ["recent question"]

    assistant_id, _ = scripted(client, upstream, Text(["never"]))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": filler * 2}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, max_prompt_tokens=256
    )
    assert run.status == "incomplete"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_prompt_tokens"


def test_truncation_last_messages(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, key = scripted(client, upstream, Text(["ok"]))
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": f"m{i}"} for i in range(5)]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
    )
    assert run.status == "completed"
    sent = upstream.by_key[key][0]
    assert [m["content"] for m in sent["messages"]] == [f"script:{key}", "m3", "m4"]


def test_image_url_parts_reach_the_model(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, key = scripted(client, upstream, Text(["a cat"]))
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://img.test/cat.png"}},
                ],
            }
        ]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    user = upstream.by_key[key][0]["messages"][1]
    assert user["content"][0] == {"type": "text", "text": "What is this?"}
    assert user["content"][1]["image_url"]["url"] == "https://img.test/cat.png"


def test_runs_continue_the_conversation(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, key = scripted(client, upstream, Text(["first answer"]), Text(["second"]))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "q1"}])
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    client.beta.threads.messages.create(thread.id, role="user", content="q2")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    sent = upstream.by_key[key][1]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "q1"),
        ("assistant", "first answer"),
        ("user", "q2"),
    ]


def test_tool_arguments_are_json_strings(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    args = json.dumps({"city": "Zürich", "units": ["c", "f"]})
    assistant_id, _ = scripted(
        client, upstream, ToolCalls([("get_weather", args)]), tools=[WEATHER]
    )
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.required_action is not None
    got = run.required_action.submit_tool_outputs.tool_calls[0].function.arguments
    assert json.loads(got) == json.loads(args)
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
