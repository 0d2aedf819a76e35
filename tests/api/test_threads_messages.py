from __future__ import annotations

import httpx
import openai
import pytest

from tests.dbcheck import count_rows
from tests.servers import Server


def test_thread_with_initial_messages(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "Hello"},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Hi there"}],
                "metadata": {"k": "v"},
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            },
        ],
        metadata={"user": "u1"},
    )
    assert thread.id.startswith("thread_") and thread.object == "thread"
    assert thread.metadata == {"user": "u1"}
    messages = client.beta.threads.messages.list(thread.id, order="asc")
    assert [m.role for m in messages.data] == ["user", "assistant", "user"]
    first = messages.data[0]
    assert first.content[0].type == "text"
    assert first.content[0].text.value == "Hello"
    assert first.content[0].text.annotations == []
    assert first.status == "completed"
    assert first.assistant_id is None and first.run_id is None
    assert first.thread_id == thread.id
    assert messages.data[1].metadata == {"k": "v"}
    assert [p.type for p in messages.data[2].content] == ["text", "image_url"]


def test_null_image_detail_is_auto(client: openai.OpenAI, http: httpx.Client) -> None:
    # Found by tests/fuzz: an explicit "detail": null was echoed, where the spec has an enum.
    thread = client.beta.threads.create()
    parts = [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": None}},
        {"type": "image_file", "image_file": {"file_id": "file-x", "detail": None}},
    ]
    response = http.post(
        f"/v1/threads/{thread.id}/messages", json={"role": "user", "content": parts}
    )
    assert response.status_code == 200, response.text
    content = response.json()["content"]
    assert [p[p["type"]]["detail"] for p in content] == ["auto", "auto"]
    shown = client.beta.threads.messages.retrieve(response.json()["id"], thread_id=thread.id)
    assert shown.content == client.beta.threads.messages.list(thread.id).data[0].content


def test_empty_thread_and_modify(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    assert thread.metadata == {}
    assert client.beta.threads.retrieve(thread.id).id == thread.id
    updated = client.beta.threads.update(thread.id, metadata={"a": "b"})
    assert updated.metadata == {"a": "b"}
    assert client.beta.threads.retrieve(thread.id).metadata == {"a": "b"}


def test_message_crud(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    # A file attached for file_search must exist: it joins the thread's vector store.
    file_id = client.files.create(file=("q.txt", b"2+2=4"), purpose="assistants").id
    msg = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content="What is 2+2?",
        attachments=[{"file_id": file_id, "tools": [{"type": "file_search"}]}],
    )
    assert msg.id.startswith("msg_") and msg.object == "thread.message"
    assert msg.attachments is not None and msg.attachments[0].file_id == file_id
    got = client.beta.threads.messages.retrieve(msg.id, thread_id=thread.id)
    assert got.model_dump() == msg.model_dump()
    mod = client.beta.threads.messages.update(msg.id, thread_id=thread.id, metadata={"x": "1"})
    assert mod.metadata == {"x": "1"}
    gone = client.beta.threads.messages.delete(msg.id, thread_id=thread.id)
    assert gone.deleted and gone.object == "thread.message.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(msg.id, thread_id=thread.id)


def test_message_of_another_thread_is_not_found(client: openai.OpenAI) -> None:
    t1 = client.beta.threads.create()
    t2 = client.beta.threads.create()
    msg = client.beta.threads.messages.create(t1.id, role="user", content="hi")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(msg.id, thread_id=t2.id)


def test_delete_thread_cascades(client: openai.OpenAI, server: Server) -> None:
    assistant = client.beta.assistants.create(model="m")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    msg_id = client.beta.threads.messages.list(thread.id).data[0].id
    gone = client.beta.threads.delete(thread.id)
    assert gone.deleted and gone.object == "thread.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(msg_id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.list(thread.id)
    for table in ("messages", "runs", "run_steps", "threads"):
        column = "id" if table == "threads" else "thread_id"
        assert count_rows(server, table, f"{column} = :t", t=thread.id) == 0, table
