"""Lifecycle edges that need a server of their own: a queue that backs up, short expiry,
short leases, and a server killed mid-run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import openai
import pytest

from tests.api.test_run_engine import WEATHER, wait_for
from tests.conftest import make_client
from tests.servers import BACKENDS, Server, _wait_ready, running_server
from tests.upstream import Hang, ScriptedUpstream, Text, ToolCalls

EXPIRY = 3


@pytest.fixture(scope="module", params=BACKENDS)
def tight(request: pytest.FixtureRequest, upstream: ScriptedUpstream) -> Iterator[Server]:
    """One run at a time, runs expire after 3 s, leases last 2 s."""
    with running_server(
        request.param,
        upstream_base_url=upstream.base_url,
        run_concurrency="1",
        run_expiry_seconds=str(EXPIRY),
        run_lease_seconds="2",
    ) as server:
        yield server


@pytest.fixture()
def tclient(tight: Server) -> Iterator[openai.OpenAI]:
    with make_client(tight, tight.keys["alpha"]) as c:
        yield c


def _assistant(
    client: openai.OpenAI, upstream: ScriptedUpstream, *turns: object, **kw: object
) -> str:
    key = uuid.uuid4().hex
    instructions = upstream.script(key, *turns)  # type: ignore[arg-type]
    return client.beta.assistants.create(model="m", instructions=instructions, **kw).id  # type: ignore[arg-type]


def test_cancel_queued_run(tclient: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    busy = _assistant(tclient, upstream, Hang(["..."], seconds=60))
    t1 = tclient.beta.threads.create()
    first = tclient.beta.threads.runs.create(t1.id, assistant_id=busy)
    wait_for(tclient, first, {"in_progress"})
    t2 = tclient.beta.threads.create()
    queued = tclient.beta.threads.runs.create(t2.id, assistant_id=busy)
    time.sleep(0.3)
    assert tclient.beta.threads.runs.retrieve(queued.id, thread_id=t2.id).status == "queued"
    assert tclient.beta.threads.runs.cancel(queued.id, thread_id=t2.id).status == "cancelling"
    done = wait_for(tclient, queued, {"cancelled"}, timeout=3)
    assert done.started_at is None and done.cancelled_at is not None
    tclient.beta.threads.runs.cancel(first.id, thread_id=t1.id)
    wait_for(tclient, first, {"cancelled"}, timeout=3)


def test_requires_action_expires(tclient: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = _assistant(tclient, upstream, ToolCalls([("get_weather", "{}")]), tools=[WEATHER])
    thread = tclient.beta.threads.create()
    run = tclient.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant)
    assert run.status == "requires_action" and run.expires_at is not None
    done = wait_for(tclient, run, {"expired"}, timeout=EXPIRY + 5)
    assert done.expires_at is None and done.required_action is None
    step = tclient.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    assert step.status == "expired" and step.expired_at is not None
    with pytest.raises(openai.BadRequestError) as exc:
        tclient.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "c", "output": "o"}]
        )
    assert 'Runs in status "expired" do not accept tool outputs.' in str(exc.value)
    tclient.beta.threads.messages.create(thread.id, role="user", content="unlocked")


def test_in_progress_run_expires(tclient: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = _assistant(tclient, upstream, Hang(["stuck"], seconds=60))
    thread = tclient.beta.threads.create()
    run = tclient.beta.threads.runs.create(thread.id, assistant_id=assistant)
    done = wait_for(tclient, run, {"expired"}, timeout=EXPIRY + 5)
    assert done.status == "expired"
    message = tclient.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert message.status == "incomplete" and message.incomplete_details is not None
    assert message.incomplete_details.reason == "run_expired"


def _restart(server: Server) -> None:
    assert server.process is not None
    port = server.base_url.rsplit(":", 1)[1]
    assert server.log_path is not None
    with open(server.log_path, "ab") as log:
        server.process = subprocess.Popen(
            [sys.executable, "-m", "assistantd", "serve", "--port", port],
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    _wait_ready(server)


@pytest.fixture(scope="module", params=BACKENDS)
def resumable(request: pytest.FixtureRequest, upstream: ScriptedUpstream) -> Iterator[Server]:
    """Short leases, so a dead server's runs are taken over quickly."""
    with running_server(
        request.param, upstream_base_url=upstream.base_url, run_lease_seconds="2"
    ) as server:
        yield server


def test_killed_server_resumes_runs(resumable: Server, upstream: ScriptedUpstream) -> None:
    with make_client(resumable, resumable.keys["alpha"]) as client:
        _killed_and_resumed(resumable, client, upstream)


def _killed_and_resumed(tight: Server, tclient: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    assistant = _assistant(
        tclient, upstream, Hang(["half an ans"], seconds=60), Text(["whole answer"])
    )
    thread = tclient.beta.threads.create(messages=[{"role": "user", "content": "q"}])
    run = tclient.beta.threads.runs.create(thread.id, assistant_id=assistant)
    deadline = time.monotonic() + 10
    while not tclient.beta.threads.messages.list(thread.id, run_id=run.id).data:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert tight.process is not None
    tight.process.send_signal(signal.SIGKILL)
    tight.process.wait(timeout=10)
    _restart(tight)
    done = wait_for(tclient, run, {"completed", "failed"}, timeout=15)
    assert done.status == "completed", done.last_error
    messages = tclient.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert len(messages) == 1
    assert messages[0].content[0].text.value == "whole answer"  # type: ignore[union-attr]
    steps = tclient.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert [s.type for s in steps] == ["message_creation"]
    assert steps[0].status == "completed"
