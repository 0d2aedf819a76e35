"""Streaming runs over SSE with the SDK's own stream helpers, against a real server."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import openai
import pytest
from openai import AssistantEventHandler
from openai.types.beta.assistant_stream_event import AssistantStreamEvent
from typing_extensions import override

from tests.api.test_run_engine import WEATHER, wait_for
from tests.servers import Server
from tests.upstream import Error, Hang, ScriptedUpstream, Text, ToolCalls

PLAIN = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta*",
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
]
FUNCTION_CALL = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.run.step.delta*",
    "thread.run.requires_action",
]
CONTINUATION = [
    "thread.run.step.completed",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta*",
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
]


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.deltas: list[str] = []
        self.tool_call_ids: list[str] = []

    @override
    def on_event(self, event: AssistantStreamEvent) -> None:
        self.events.append(event.event)

    @override
    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.deltas.append(delta.value)

    @override
    def on_tool_call_created(self, tool_call: Any) -> None:
        self.tool_call_ids.append(tool_call.id)


def transcript(events: list[str]) -> list[str]:
    """Event names with runs of the same delta event folded into ``name*``."""
    out: list[str] = []
    for name in events:
        folded = f"{name}*" if name.endswith(".delta") else name
        if out and out[-1] == folded and folded.endswith("*"):
            continue
        out.append(folded)
    return out


def scripted(client: openai.OpenAI, upstream: ScriptedUpstream, *turns: Any, **kw: Any) -> str:
    key = uuid.uuid4().hex
    return client.beta.assistants.create(
        model="m", instructions=upstream.script(key, *turns), **kw
    ).id


def test_plain_answer_stream(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = scripted(client, upstream, Text(["Hel", "lo", " world"]))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant, event_handler=handler
    ) as stream:
        stream.until_done()
        final_run = stream.get_final_run()
        final_messages = stream.get_final_messages()
    assert transcript(handler.events) == PLAIN
    assert handler.deltas == ["Hel", "lo", " world"]
    assert final_run.status == "completed"
    assert final_messages[0].content[0].text.value == "Hello world"  # type: ignore[union-attr]
    stored = client.beta.threads.messages.list(thread.id, run_id=final_run.id).data[0]
    assert stored.content[0].text.value == "".join(handler.deltas)  # type: ignore[union-attr]


def test_text_deltas_iterator(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = scripted(client, upstream, Text(["a", "b", "c"]))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant) as stream:
        assert "".join(stream.text_deltas) == "abc"


def test_function_call_and_continuation(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = scripted(
        client,
        upstream,
        ToolCalls([("get_weather", '{"city": "Rome"}'), ("get_weather", '{"city": "Bern"}')]),
        Text(["Warm ", "and cold."]),
        tools=[WEATHER],
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])
    first = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant, event_handler=first
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
        steps = stream.get_final_run_steps()
    assert transcript(first.events) == FUNCTION_CALL
    assert run.status == "requires_action" and run.required_action is not None
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.id for c in calls] == first.tool_call_ids
    # the snapshot the SDK rebuilt from deltas matches what was asked
    snapshot_calls = steps[0].step_details.tool_calls  # type: ignore[union-attr]
    assert [c.function.arguments for c in snapshot_calls] == [  # type: ignore[union-attr]
        c.function.arguments for c in calls
    ]
    assert steps[0].status == "in_progress"

    second = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": c.id, "output": "20C"} for c in calls],
        event_handler=second,
    ) as stream:
        stream.until_done()
        done = stream.get_final_run()
    assert transcript(second.events) == CONTINUATION
    assert done.status == "completed"
    assert "".join(second.deltas) == "Warm and cold."


def test_create_and_run_stream(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = scripted(client, upstream, Text(["new thread"]))
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant,
        thread={"messages": [{"role": "user", "content": "hello"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert transcript(handler.events) == ["thread.created", *PLAIN]
    assert run.status == "completed"
    assert client.beta.threads.retrieve(run.thread_id).id == run.thread_id


def test_cancel_during_stream(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = scripted(client, upstream, Hang(["slow ", "start"], seconds=60))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    handler = Recorder()
    cancelled = threading.Event()

    class Canceller(Recorder):
        @override
        def on_text_delta(self, delta: Any, snapshot: Any) -> None:
            super().on_text_delta(delta, snapshot)
            if not cancelled.is_set() and self.current_run is not None:
                cancelled.set()
                client.beta.threads.runs.cancel(self.current_run.id, thread_id=thread.id)

    handler = Canceller()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant, event_handler=handler
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "cancelled"
    names = transcript(handler.events)
    assert names[-4:] == [
        "thread.run.cancelling",
        "thread.message.incomplete",
        "thread.run.step.cancelled",
        "thread.run.cancelled",
    ]


def test_upstream_failure_ends_stream(
    server: Server, client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    # The `error` event carries the spec's Error object. The SDK's `runs.stream` helper types
    # it only in its default (non-strict) mode, which is what applications use; the handler
    # has the failed run, with `last_error`, before the error event arrives.
    assistant = scripted(client, upstream, Error(429, "too many"))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    handler = Recorder()
    with (
        openai.OpenAI(base_url=server.base_url + "/v1", api_key=server.keys["alpha"]) as default,
        default.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant, event_handler=handler
        ) as stream,
    ):
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "failed"
    assert run.last_error is not None and run.last_error.code == "rate_limit_exceeded"
    # (the helper does not name the untyped error event; it is the one after the failure)
    assert handler.events[-2] == "thread.run.failed" and len(handler.events) == len(
        [*FUNCTION_CALL[:3], "thread.run.failed", "error"]
    )

    # Raw iteration with strict validation (create(stream=True) names the event itself).
    assistant = scripted(client, upstream, Error(429, "too many"))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    events = list(
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant, stream=True)
    )
    assert [e.event for e in events][-2:] == ["thread.run.failed", "error"]
    error = events[-1]
    assert error.event == "error" and error.data.code == "rate_limit_exceeded"


def test_raw_stream_frames(server: Server, http: httpx.Client, upstream: ScriptedUpstream) -> None:
    """The wire format itself: event/data frames, the error event's shape, then done."""
    key = uuid.uuid4().hex
    assistant = http.post(
        "/v1/assistants",
        json={"model": "m", "instructions": upstream.script(key, Error(500), Error(500))},
    ).json()
    thread = http.post("/v1/threads", json={}).json()
    with http.stream(
        "POST",
        f"/v1/threads/{thread['id']}/runs",
        json={"assistant_id": assistant["id"], "stream": True},
        headers={"Accept": "application/json"},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        body = "".join(resp.iter_text())
    frames = [f for f in body.split("\n\n") if f.strip()]
    assert frames[0].startswith("event: thread.run.created\ndata: {")
    assert frames[-1] == "event: done\ndata: [DONE]"
    error = frames[-2].split("\n")
    assert error[0] == "event: error"
    import json

    payload = json.loads(error[1].removeprefix("data: "))
    assert set(payload) == {"code", "message", "param", "type"}
    assert payload["code"] == "server_error"


def test_stream_request_errors_are_json(http: httpx.Client) -> None:
    resp = http.post(
        "/v1/threads/thread_missing/runs", json={"assistant_id": "asst_x", "stream": True}
    )
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/json")
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_disconnected_client_leaves_run_running(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    assistant = scripted(client, upstream, Text(["one ", "two ", "three"], delay=0.2))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "count"}])
    stream = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant, stream=True
    )
    run_id = None
    for event in stream:
        if event.event == "thread.run.created":
            run_id = event.data.id
        if event.event == "thread.message.delta":
            break
    stream.close()  # the client goes away mid-answer
    assert run_id is not None
    run = client.beta.threads.runs.retrieve(run_id, thread_id=thread.id)
    done = wait_for(client, run, {"completed"}, timeout=10)
    message = client.beta.threads.messages.list(thread.id, run_id=done.id).data[0]
    assert message.content[0].text.value == "one two three"  # type: ignore[union-attr]


@pytest.mark.parametrize("n_streams", [8])
def test_concurrent_streams_are_independent(
    client: openai.OpenAI, upstream: ScriptedUpstream, n_streams: int
) -> None:
    results: dict[int, str] = {}

    def one(i: int) -> None:
        assistant = scripted(client, upstream, Text([f"s{i}-", "x"], delay=0.05))
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant) as s:
            results[i] = "".join(s.text_deltas)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n_streams)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert time.monotonic() - started < 60
    assert results == {i: f"s{i}-x" for i in range(n_streams)}
