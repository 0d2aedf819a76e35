"""The file_search tool in runs: the scripted model searches, the server answers with marked
results, and the final message cites the right files. Real server, real SDK, both databases."""

from __future__ import annotations

import io
import json
import uuid

import openai
import pytest
from openai import AssistantEventHandler
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep, RunStepDelta

from tests.upstream import ScriptedUpstream, Text, ToolCalls

INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
DOCS = {
    "prices.txt": "Price list. A season ticket for the Glimmerdale railway costs 312 crowns.",
    "history.txt": "The Glimmerdale railway opened in 1902 and was electrified in 1958.",
    "birds.txt": "Kingfishers dive for minnows along the Glimmer river in spring.",
}


def upload(client: openai.OpenAI, name: str, body: str) -> str:
    return client.files.create(file=(name, io.BytesIO(body.encode())), purpose="assistants").id


@pytest.fixture(scope="module")
def docs_store(client: openai.OpenAI) -> tuple[str, dict[str, str]]:
    ids = {name: upload(client, name, body) for name, body in DOCS.items()}
    store = client.vector_stores.create(name="glimmerdale")
    batch = client.vector_stores.file_batches.create_and_poll(store.id, file_ids=list(ids.values()))
    assert batch.file_counts.completed == len(DOCS)
    return store.id, ids


def scripted_assistant(
    client: openai.OpenAI, upstream: ScriptedUpstream, *turns: object, **kwargs: object
) -> tuple[str, str]:
    key = uuid.uuid4().hex
    instructions = upstream.script(key, *turns)  # type: ignore[arg-type]
    assistant = client.beta.assistants.create(
        model=str(kwargs.pop("model", "gpt-4o")),
        instructions=instructions,
        tools=[{"type": "file_search"}],
        **kwargs,  # type: ignore[arg-type]
    )
    return assistant.id, key


def search_call(*queries: str) -> ToolCalls:
    return ToolCalls([("file_search", json.dumps({"queries": list(queries)}))])


def test_file_search_run_cites_the_right_file(
    client: openai.OpenAI, upstream: ScriptedUpstream, docs_store: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = docs_store
    answer = "A season ticket costs 312 crowns 【0:0†prices.txt】, since 1902 【0:1†history.txt】."
    assistant_id, key = scripted_assistant(
        client,
        upstream,
        search_call("season ticket price"),
        Text([answer[:20], answer[20:]]),
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Ticket price?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, include=[INCLUDE]
    )
    assert run.status == "completed", run.last_error

    # The model was offered the tool, and read marked results back.
    first, second = upstream.by_key[key]
    assert [t["function"]["name"] for t in first["tools"]] == ["file_search"]
    tool_message = next(m for m in second["messages"] if m["role"] == "tool")
    assert "【0:0†prices.txt】" in tool_message["content"]
    assert "312 crowns" in tool_message["content"]

    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    tool_step = steps[0]
    assert tool_step.status == "completed" and tool_step.step_details.type == "tool_calls"
    call = tool_step.step_details.tool_calls[0]
    assert call.type == "file_search"
    ranking = call.file_search.ranking_options
    assert ranking is not None and ranking.ranker == "default_2024_08_21"
    assert ranking.score_threshold == 0
    results = call.file_search.results
    assert results is not None and results[0].file_id == ids["prices.txt"]
    assert results[0].file_name == "prices.txt" and 0 <= results[0].score <= 1
    assert all(r.content is None for r in results)  # no content without include[]
    assert "_output" not in tool_step.model_dump_json()

    with_content = client.beta.threads.runs.steps.retrieve(
        tool_step.id, thread_id=thread.id, run_id=run.id, include=[INCLUDE]
    )
    detailed = with_content.step_details.tool_calls[0].file_search.results  # type: ignore[union-attr]
    assert detailed is not None and detailed[0].content is not None
    assert "312 crowns" in (detailed[0].content[0].text or "")
    listed = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, include=[INCLUDE])
    assert any(
        s.step_details.type == "tool_calls"
        and s.step_details.tool_calls[0].file_search.results[0].content  # type: ignore[union-attr]
        for s in listed.data
    )

    message = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    part = message.content[0]
    assert part.type == "text" and part.text.value == answer
    annotations = part.text.annotations
    assert [a.type for a in annotations] == ["file_citation", "file_citation"]
    cited = [(a.text, a.start_index, a.end_index, a.file_citation.file_id) for a in annotations]  # type: ignore[union-attr]
    first_marker, second_marker = "【0:0†prices.txt】", "【0:1†history.txt】"
    start = answer.index(first_marker)
    assert cited[0] == (first_marker, start, start + len(first_marker), ids["prices.txt"])
    second_start = answer.index(second_marker)
    assert cited[1][1:3] == (second_start, second_start + len(second_marker))
    assert cited[1][3] == results[1].file_id
    for a in annotations:
        assert answer[a.start_index : a.end_index] == a.text


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.tool_types: list[str] = []
        self.annotation_deltas: list[object] = []

    def on_event(self, event: object) -> None:
        self.events.append(event.event)  # type: ignore[attr-defined]
        if event.event == "thread.message.delta":  # type: ignore[attr-defined]
            for part in event.data.delta.content or []:  # type: ignore[attr-defined]
                if part.type == "text" and part.text and part.text.annotations:
                    self.annotation_deltas += part.text.annotations

    def on_tool_call_created(self, tool_call: object) -> None:
        self.tool_types.append(tool_call.type)  # type: ignore[attr-defined]

    def on_run_step_delta(self, delta: RunStepDelta, snapshot: RunStep) -> None:
        pass


def test_file_search_streams_the_step_and_the_citations(
    client: openai.OpenAI, upstream: ScriptedUpstream, docs_store: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = docs_store
    answer = "Kingfishers dive for minnows 【0:0†birds.txt】."
    assistant_id, _key = scripted_assistant(
        client, upstream, search_call("kingfisher"), Text([answer])
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "What do kingfishers eat?"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        stream.until_done()
        final_run: Run = stream.get_final_run()
        messages: list[Message] = stream.get_final_messages()
        steps = stream.get_final_run_steps()
    assert final_run.status == "completed"
    assert handler.tool_types == ["file_search"]
    tool_step_events = [e for e in handler.events if e.startswith("thread.run.step")]
    assert tool_step_events[:2] == ["thread.run.step.created", "thread.run.step.in_progress"]
    assert "thread.run.step.delta" in tool_step_events
    assert len(handler.annotation_deltas) == 1
    assert handler.events.index("thread.message.completed") > handler.events.index(
        "thread.message.delta"
    )
    text = messages[-1].content[0]
    assert text.type == "text"
    [annotation] = text.text.annotations
    assert annotation.type == "file_citation"
    assert annotation.file_citation.file_id == ids["birds.txt"]  # type: ignore[union-attr]
    assert text.text.value[annotation.start_index : annotation.end_index] == "【0:0†birds.txt】"
    tool_steps = [s for s in steps if s.type == "tool_calls"]
    assert tool_steps and tool_steps[0].step_details.tool_calls[0].type == "file_search"  # type: ignore[union-attr]


def test_thread_helper_and_attachments_create_stores(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    helper_file = upload(client, "otters.txt", "Sea otters wrap themselves in kelp to sleep.")
    thread = client.beta.threads.create(
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [helper_file]}]}}
    )
    assert thread.tool_resources is not None and thread.tool_resources.file_search is not None
    [vs_id] = thread.tool_resources.file_search.vector_store_ids or []
    store = client.vector_stores.retrieve(vs_id)
    assert store.expires_after is not None and store.expires_after.days == 7
    assert store.expires_after.anchor == "last_active_at" and store.file_counts.total == 1

    attached = upload(client, "seals.txt", "Grey seals haul out on the Farne sandbanks in autumn.")
    bare = client.beta.threads.create()
    client.beta.threads.messages.create(
        bare.id,
        role="user",
        content="Where do seals rest?",
        attachments=[{"file_id": attached, "tools": [{"type": "file_search"}]}],
    )
    updated = client.beta.threads.retrieve(bare.id)
    assert updated.tool_resources is not None and updated.tool_resources.file_search is not None
    [thread_store] = updated.tool_resources.file_search.vector_store_ids or []
    made = client.vector_stores.retrieve(thread_store)
    assert made.expires_after is not None and made.expires_after.days == 7
    assert made.expires_at == made.last_active_at + 7 * 86_400  # type: ignore[operator]

    # The run waits for the attachment to be read, then finds it.
    answer = "On sandbanks 【0:0†seals.txt】."
    assistant_id, key = scripted_assistant(client, upstream, search_call("seals"), Text([answer]))
    run = client.beta.threads.runs.create_and_poll(thread_id=bare.id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    tool_message = next(m for m in upstream.by_key[key][1]["messages"] if m["role"] == "tool")
    assert "Farne sandbanks" in tool_message["content"]
    message = client.beta.threads.messages.list(bare.id, order="desc").data[0]
    annotations = message.content[0].text.annotations  # type: ignore[union-attr]
    assert [a.file_citation.file_id for a in annotations] == [attached]  # type: ignore[union-attr]

    # A second attachment joins the same store.
    more = upload(client, "puffins.txt", "Puffins nest in burrows.")
    client.beta.threads.messages.create(
        bare.id,
        role="user",
        content="And puffins?",
        attachments=[{"file_id": more, "tools": [{"type": "file_search"}]}],
    )
    assert client.vector_stores.retrieve(thread_store).file_counts.total == 2


def test_assistant_helper_creates_a_store(client: openai.OpenAI) -> None:
    fid = upload(client, "a.txt", "alpha")
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [fid]}]}},
    )
    assert assistant.tool_resources is not None and assistant.tool_resources.file_search is not None
    [vs_id] = assistant.tool_resources.file_search.vector_store_ids or []
    store = client.vector_stores.retrieve(vs_id)
    assert store.expires_after is None and store.file_counts.total == 1


def test_max_num_results_defaults_and_overrides(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    ids = [
        upload(client, f"gull{i}.txt", f"Gull colony number {i} nests on cliffs.") for i in range(8)
    ]
    store = client.vector_stores.create(file_ids=ids)
    client.vector_stores.file_batches.create_and_poll(store.id, file_ids=ids)

    def results_of(model: str, **tool: object) -> int:
        key = uuid.uuid4().hex
        instructions = upstream.script(key, search_call("gull colony cliffs"), Text(["ok"]))
        assistant = client.beta.assistants.create(
            model=model,
            instructions=instructions,
            tools=[{"type": "file_search", **({"file_search": tool} if tool else {})}],  # type: ignore[list-item]
            tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        )
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "gulls"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed"
        step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0]
        return len(step.step_details.tool_calls[0].file_search.results or [])  # type: ignore[union-attr]

    assert results_of("gpt-3.5-turbo") == 5
    assert results_of("gpt-4o") == 8
    assert results_of("gpt-4o", max_num_results=2) == 2
    assert results_of("gpt-4o", ranking_options={"score_threshold": 1.0}) <= 1


def test_no_store_means_no_results(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant_id, key = scripted_assistant(client, upstream, search_call("anything"), Text(["no"]))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    tool_message = next(m for m in upstream.by_key[key][1]["messages"] if m["role"] == "tool")
    assert tool_message["content"] == "There are no files to search."
    message = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert message.content[0].text.annotations == []  # type: ignore[union-attr]


def test_attachment_after_the_thread_store_was_deleted(client: openai.OpenAI) -> None:
    first = upload(client, "one.txt", "first file")
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "one",
                "attachments": [{"file_id": first, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    assert thread.tool_resources is not None and thread.tool_resources.file_search is not None
    [old_store] = thread.tool_resources.file_search.vector_store_ids or []
    client.vector_stores.delete(old_store)
    second = upload(client, "two.txt", "second file")
    client.beta.threads.messages.create(
        thread.id,
        role="user",
        content="two",
        attachments=[{"file_id": second, "tools": [{"type": "file_search"}]}],
    )
    resources = client.beta.threads.retrieve(thread.id).tool_resources
    assert resources is not None and resources.file_search is not None
    [new_store] = resources.file_search.vector_store_ids or []
    assert new_store != old_store
    files = client.vector_stores.files.list(new_store)
    assert [f.id for f in files] == [second]
