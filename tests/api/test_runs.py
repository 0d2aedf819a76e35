from __future__ import annotations

import re

import httpx
import openai
import pytest

from tests.api.test_run_engine import wait_for
from tests.conftest import hanging_assistant
from tests.upstream import ScriptedUpstream


@pytest.fixture()
def assistant_id(client: openai.OpenAI, upstream: ScriptedUpstream) -> str:
    """Its runs stay in_progress until cancelled, so the thread stays locked."""
    return hanging_assistant(
        client, upstream, tools=[{"type": "code_interpreter"}], temperature=0.3
    )


def test_run_object_resolves_effective_fields(client: openai.OpenAI, assistant_id: str) -> None:
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    assert run.status == "queued" and run.object == "thread.run"
    assert run.thread_id == thread.id and run.assistant_id == assistant_id
    assert run.model == "m"
    assert run.instructions.startswith("script:hang-")
    assert [t.type for t in run.tools] == ["code_interpreter"]
    assert run.temperature == 0.3 and run.top_p == 1.0
    assert run.parallel_tool_calls is True
    assert run.expires_at == run.created_at + 600
    assert run.usage is None and run.required_action is None and run.last_error is None
    assert run.started_at is None and run.completed_at is None
    assert run.truncation_strategy is not None and run.truncation_strategy.type == "auto"
    assert run.tool_choice == "auto"
    assert run.response_format == "auto"
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_run_overrides(client: openai.OpenAI, assistant_id: str) -> None:
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(
        thread.id,
        assistant_id=assistant_id,
        model="other-model",
        instructions="Override.",
        additional_instructions="Also this.",
        additional_messages=[{"role": "user", "content": "extra"}],
        tools=[],
        metadata={"m": "1"},
        temperature=1.5,
        top_p=0.5,
        max_prompt_tokens=1000,
        max_completion_tokens=500,
        truncation_strategy={"type": "last_messages", "last_messages": 3},
        tool_choice="none",
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
    )
    assert run.model == "other-model"
    assert run.instructions == "Override.\n\nAlso this."
    assert run.tools == []
    assert run.metadata == {"m": "1"}
    assert (run.temperature, run.top_p) == (1.5, 0.5)
    assert (run.max_prompt_tokens, run.max_completion_tokens) == (1000, 500)
    assert run.truncation_strategy is not None and run.truncation_strategy.last_messages == 3
    assert run.tool_choice == "none" and run.parallel_tool_calls is False
    messages = client.beta.threads.messages.list(thread.id)
    assert [m.content[0].text.value for m in messages.data if m.content[0].type == "text"] == [
        "extra"
    ]
    client.beta.threads.runs.poll(run.id, thread_id=thread.id)


def test_thread_lock(client: openai.OpenAI, assistant_id: str) -> None:
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.messages.create(thread.id, role="user", content="hi")
    assert exc.value.message == (
        f"Error code: 400 - Can't add messages to {thread.id} while a run {run.id} is active."
    )
    with pytest.raises(openai.BadRequestError) as exc2:
        client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    assert f"Thread {thread.id} already has an active run {run.id}." in str(exc2.value)
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    wait_for(client, run, {"cancelled"})
    # unlocked once cancelled
    client.beta.threads.messages.create(thread.id, role="user", content="hi")


def test_cancel_active_run(client: openai.OpenAI, assistant_id: str) -> None:
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status == "cancelling"
    done = wait_for(client, run, {"cancelled"}, timeout=2)
    assert done.cancelled_at is not None and done.expires_at is None
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert "Cannot cancel run with status 'cancelled'." in str(exc.value)


def test_submit_tool_outputs_needs_requires_action(
    client: openai.OpenAI, assistant_id: str
) -> None:
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_1", "output": "x"}]
        )
    assert re.search(
        r'Runs in status "(queued|in_progress)" do not accept tool outputs\.', str(exc.value)
    )
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_modify_run_metadata(client: openai.OpenAI, assistant_id: str) -> None:
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    updated = client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"x": "y"})
    assert updated.metadata == {"x": "y"}
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).metadata == {"x": "y"}
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_create_thread_and_run(client: openai.OpenAI, assistant_id: str) -> None:
    run = client.beta.threads.create_and_run(
        assistant_id=assistant_id,
        thread={"messages": [{"role": "user", "content": "hello"}], "metadata": {"t": "1"}},
        instructions="Short.",
    )
    assert run.thread_id.startswith("thread_")
    assert run.instructions == "Short."
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"t": "1"}
    done = client.beta.threads.runs.poll(run.id, thread_id=run.thread_id)
    assert done.status == "completed"
    messages = client.beta.threads.messages.list(run.thread_id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]


def test_null_function_of_a_named_tool_choice_is_not_echoed(
    client: openai.OpenAI, http: httpx.Client, assistant_id: str
) -> None:
    # Found by tests/fuzz: {"type": "file_search", "function": null} was echoed with the null.
    thread = client.beta.threads.create()
    response = http.post(
        f"/v1/threads/{thread.id}/runs",
        json={
            "assistant_id": assistant_id,
            "tool_choice": {"type": "file_search", "function": None},
        },
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["tool_choice"] == {"type": "file_search"}
    assert http.get(f"/v1/threads/{thread.id}/runs/{run['id']}").json()["tool_choice"] == {
        "type": "file_search"
    }
    client.beta.threads.runs.cancel(run["id"], thread_id=thread.id)


def test_unknown_assistant_on_run(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError) as exc:
        client.beta.threads.runs.create(thread.id, assistant_id="asst_nope")
    assert exc.value.param == "assistant_id" if hasattr(exc.value, "param") else True


def test_poll_header_and_steps(client: openai.OpenAI, assistant_id: str) -> None:
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id)
    raw = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread.id)
    assert raw.headers["openai-poll-after-ms"] == "100"
    assert raw.headers["x-request-id"].startswith("req_")
    steps = client.beta.threads.runs.steps.list(
        run.id,
        thread_id=thread.id,
        include=["step_details.tool_calls[*].file_search.results[*].content"],
    )
    # the model is mid-answer: one message_creation step, still in progress
    assert [st.type for st in steps.data] in ([], ["message_creation"])
    assert steps.has_more is False
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.retrieve("step_x", thread_id=thread.id, run_id=run.id)
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_models_endpoint(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert all(m.object == "model" for m in models.data)
