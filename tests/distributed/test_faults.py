"""The distributed mode under faults: workers killed with SIGKILL at random points, and a
rolling restart of every process under a load of streaming runs. Nothing may be lost: every
run ends terminal, no message or step is written twice, and a thread never has two active
runs."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.cluster import Cluster, running_cluster
from tests.conftest import make_client
from tests.servers import SERVER_BACKENDS
from tests.upstream import ScriptedUpstream, Text, ToolCalls

pytestmark = pytest.mark.skipif(
    "cluster" not in SERVER_BACKENDS, reason="cluster backend not selected"
)

TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
ACTIVE = {"queued", "in_progress", "requires_action", "cancelling"}
MIN_KILLS = 3


@pytest.fixture(scope="module")
def cluster(upstream: ScriptedUpstream) -> Iterator[Cluster]:
    with running_cluster(
        upstream_base_url=upstream.base_url,
        run_lease_seconds="3",
        upstream_max_attempts="2",
    ) as c:
        yield c


def slow_assistant(client: openai.OpenAI, upstream: ScriptedUpstream, turns: int) -> str:
    """Each run streams ten pieces over about a second; spare turns serve resumed runs."""
    key = f"slow-{uuid.uuid4().hex}"
    pieces = [f"part{i} " for i in range(10)]
    instructions = upstream.script(key, *[Text(pieces, delay=0.1) for _ in range(turns)])
    return client.beta.assistants.create(model="m", instructions=instructions).id


def wait_terminal(client: openai.OpenAI, thread_id: str, run_id: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in TERMINAL:
            if run.status == "failed":
                assert run.last_error is not None and run.last_error.message
            return run.status
        assert time.monotonic() < deadline, f"run {run_id} stuck in {run.status}"
        time.sleep(0.1)


def check_thread(client: openai.OpenAI, thread_id: str, run_ids: list[str]) -> None:
    """Every run terminal; a completed run has exactly one message and one message step."""
    for run_id in run_ids:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status in TERMINAL, (run_id, run.status)
        messages = client.beta.threads.messages.list(thread_id, run_id=run_id, limit=100).data
        steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, limit=100).data
        assert len({s.id for s in steps}) == len(steps)
        if run.status == "completed":
            assert len(messages) == 1, [m.id for m in messages]
            assert [s.type for s in steps] == ["message_creation"]
            assert messages[0].status == "completed"
            text = messages[0].content[0].text.value  # type: ignore[union-attr]
            assert text == "".join(f"part{i} " for i in range(10))
        else:
            assert len(messages) <= 1


def test_create_on_one_api_poll_and_stream_on_the_other(
    cluster: Cluster, upstream: ScriptedUpstream
) -> None:
    key = f"tools-{uuid.uuid4().hex}"
    instructions = upstream.script(
        key, ToolCalls([("lookup", '{"q": "x"}')]), Text(["the ", "answer"])
    )
    first, second = (make_client(_direct(cluster, n), cluster.keys["alpha"]) for n in (0, 1))
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    assistant = first.beta.assistants.create(
        model="m",
        instructions=instructions,
        tools=[tool],  # type: ignore[list-item]
    )
    thread = first.beta.threads.create(messages=[{"role": "user", "content": "q"}])
    run = first.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    run = second.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50)
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    with second.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "42"}]
    ) as stream:
        events = [e.event for e in stream]
        final = stream.get_final_run()
    assert events[-1] == "thread.run.completed"
    assert "thread.message.delta" in events
    assert final.status == "completed"
    text = first.beta.threads.messages.list(thread.id).data[0].content[0].text.value  # type: ignore[union-attr]
    assert text == "the answer"


def _direct(cluster: Cluster, n: int) -> Cluster:
    """The cluster as seen through one API process, bypassing the proxy."""
    return Cluster(base_url=cluster.apis[n].url or "", env=cluster.env, keys=cluster.keys)


def test_workers_killed_at_random_points_lose_nothing(
    cluster: Cluster, upstream: ScriptedUpstream
) -> None:
    threads_n, runs_per_thread = 25, 4  # 100 runs
    client = make_client(cluster, cluster.keys["alpha"], max_retries=3)
    most = runs_per_thread * 4  # while fewer than MIN_KILLS have happened
    assistant = slow_assistant(client, upstream, turns=threads_n * most * 3)
    done = threading.Event()
    enough = threading.Event()
    lock_violations: list[str] = []
    kills = 0

    def killer() -> None:
        nonlocal kills
        rng = random.Random(7)
        while not done.wait(rng.uniform(0.5, 2.5)):
            victim = rng.choice(cluster.workers)
            cluster.restart(victim, kill=True)
            kills += 1
            if kills >= MIN_KILLS:
                enough.set()

    def one_thread(_: int) -> tuple[str, list[str]]:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        run_ids = []
        # A restart waits for the new worker to be ready, which is slow on a loaded machine:
        # the threads go on past runs_per_thread until enough kills have happened.
        n = 0
        while n < runs_per_thread or (not enough.is_set() and n < most):
            n += 1
            run = client.beta.threads.runs.create(thread.id, assistant_id=assistant)
            run_ids.append(run.id)
            # The thread lock: while this run is active, a second one must be refused.
            try:
                extra = client.beta.threads.runs.create(thread.id, assistant_id=assistant)
            except openai.BadRequestError:
                pass
            else:
                status = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status
                if status in ACTIVE:
                    lock_violations.append(f"{thread.id}: {run.id} and {extra.id}")
                run_ids.append(extra.id)
                wait_terminal(client, thread.id, extra.id)
            wait_terminal(client, thread.id, run.id)
        return thread.id, run_ids

    kill_thread = threading.Thread(target=killer)
    kill_thread.start()
    try:
        with ThreadPoolExecutor(threads_n) as pool:
            results = list(pool.map(one_thread, range(threads_n)))
    finally:
        done.set()
        kill_thread.join()
    assert kills >= MIN_KILLS, "the test did not kill enough workers to mean anything"
    assert not lock_violations
    assert sum(len(ids) for _t, ids in results) >= threads_n * runs_per_thread
    for thread_id, run_ids in results:
        check_thread(client, thread_id, run_ids)


def test_rolling_restart_under_streaming_load_loses_no_run(
    cluster: Cluster, upstream: ScriptedUpstream
) -> None:
    client = make_client(cluster, cluster.keys["alpha"], max_retries=5)
    assistant = slow_assistant(client, upstream, turns=600)
    stop = threading.Event()
    outcomes: list[str] = []

    def streamer(_: int) -> list[tuple[str, str]]:
        made: list[tuple[str, str]] = []
        while not stop.is_set():
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
            run_id = None
            try:
                with client.beta.threads.runs.stream(
                    thread_id=thread.id, assistant_id=assistant
                ) as stream:
                    for event in stream:
                        if event.event == "thread.run.created":
                            run_id = event.data.id
                            made.append((thread.id, run_id))
                    final = stream.current_run
                outcomes.append("streamed" if final and final.status in TERMINAL else "cut")
            except (openai.APIConnectionError, openai.APIStatusError, openai.APIError):
                # The stream broke (its API process restarted): recover by polling.
                outcomes.append("recovered")
            if run_id is None:
                listed = client.beta.threads.runs.list(thread.id).data
                made.extend((thread.id, r.id) for r in listed)
        return made

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(streamer, n) for n in range(8)]
        time.sleep(3)
        for proc in [*cluster.apis, *cluster.workers]:
            cluster.restart(proc)
            time.sleep(1)
        time.sleep(2)
        stop.set()
        made = [pair for f in futures for pair in f.result()]
    assert made
    for thread_id, run_id in made:
        wait_terminal(client, thread_id, run_id)
    by_thread: dict[str, list[str]] = {}
    for thread_id, run_id in made:
        by_thread.setdefault(thread_id, []).append(run_id)
    for thread_id, run_ids in by_thread.items():
        check_thread(client, thread_id, run_ids)
    assert "streamed" in outcomes
