"""When PostgreSQL restarts or drops connections under a running server.

A request that meets a dead pooled connection, or finds the database down, is answered 503
with ``x-should-retry: true`` and ``retry-after``, in the OpenAI envelope, never a 500 (which
tells the SDK not to retry). The statement that failed did not commit, so the SDK's retry
neither loses nor doubles anything; once the database is back the server serves again without
a restart, and a run that was executing when its connections died still finishes.

The database here is a PostgreSQL of this module's own (pgserver), since it gets stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import make_client
from tests.servers import Server, asyncpg_url, running_server, start_pgserver
from tests.upstream import ScriptedUpstream, Text


class Postgres:
    def __init__(self) -> None:
        self.pg = start_pgserver()
        self.pg.psql("CREATE DATABASE outage;")
        self.url = asyncpg_url(self.pg, "outage")

    def drop_connections(self) -> int:
        """What a restart or failover does to the server's pool: every connection dies."""
        out = self.pg.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = 'outage' AND pid <> pg_backend_pid();"
        )
        return int(out.split("\n")[2].strip())

    def stop(self) -> None:
        self.pg.stop()

    def running(self) -> bool:
        info = self.pg._postmaster_info
        return bool(info is not None and info.process is not None and info.process.is_running())

    def start(self) -> None:
        with self.pg._lock:
            self.pg.ensure_postgres_running()

    def cleanup(self) -> None:
        self.pg.cleanup()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    yield pg
    pg.start()
    pg.cleanup()


@pytest.fixture(scope="module")
def outage_server(postgres: Postgres, upstream: ScriptedUpstream) -> Iterator[Server]:
    with running_server(
        "postgres",
        database_url=postgres.url,
        upstream_base_url=upstream.base_url,
        run_lease_seconds="3",  # a run whose lease could not be released is retaken sooner
    ) as srv:
        yield srv


@pytest.fixture()
def raw(outage_server: Server) -> Iterator[httpx.Client]:
    headers = {
        "Authorization": f"Bearer {outage_server.keys['alpha']}",
        "OpenAI-Beta": "assistants=v2",
    }
    with httpx.Client(base_url=outage_server.base_url, headers=headers, timeout=30) as c:
        yield c


def _assert_retryable_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["x-should-retry"] == "true"
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "error": {
            "message": "The server could not reach its database. Please retry your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }


def test_a_dropped_connection_is_a_retryable_503_not_a_500(
    postgres: Postgres, raw: httpx.Client
) -> None:
    assert raw.get("/v1/assistants").status_code == 200  # the pool holds a connection
    assert postgres.drop_connections() >= 1
    _assert_retryable_503(raw.get("/v1/assistants"))
    # The pool threw away every connection older than the failure: no second 503.
    assert raw.get("/v1/assistants").status_code == 200


def test_the_sdk_retries_through_it_and_writes_land_once(
    postgres: Postgres, outage_server: Server
) -> None:
    with make_client(outage_server, outage_server.keys["alpha"], max_retries=2) as client:
        thread = client.beta.threads.create()
        for n in range(3):
            assert postgres.drop_connections() >= 1
            client.beta.threads.messages.create(thread.id, role="user", content=f"m{n}")
        assert postgres.drop_connections() >= 1
        messages = client.beta.threads.messages.list(thread.id, order="asc")
        assert [m.content[0].text.value for m in messages.data] == ["m0", "m1", "m2"]  # type: ignore[union-attr]


def test_database_down_then_back(
    postgres: Postgres, outage_server: Server, raw: httpx.Client
) -> None:
    created = raw.post("/v1/assistants", json={"model": "gpt-4o", "name": "kept"}).json()["id"]
    postgres.stop()
    try:
        _assert_retryable_503(raw.get(f"/v1/assistants/{created}"))
        _assert_retryable_503(raw.post("/v1/assistants", json={"model": "gpt-4o"}))
        _assert_retryable_503(raw.get("/v1/assistants"))
        assert raw.get("/healthz").status_code == 503
    finally:
        postgres.start()
    with make_client(outage_server, outage_server.keys["alpha"], max_retries=2) as client:
        assert client.beta.assistants.retrieve(created).name == "kept"
        names = [a.name for a in client.beta.assistants.list(limit=100)]
    assert names.count("kept") == 1
    assert raw.get("/healthz").status_code == 200
    assert "ERROR" not in outage_server.log()


def test_a_run_whose_connections_die_mid_answer_resumes_and_completes(
    postgres: Postgres, outage_server: Server, upstream: ScriptedUpstream
) -> None:
    """The connections die just before the model's answer ends, so the executor's next write
    is the first statement to meet a dead connection (unless the worker's once-a-second sweep
    gets there in the same few milliseconds: then this tries again, up to 3 times). The run
    is not failed: it goes back to be claimed and completes with one whole answer."""
    chunks = [f"w{i} " for i in range(10)]
    with make_client(outage_server, outage_server.keys["alpha"], max_retries=2) as client:
        for _attempt in range(3):
            key = f"outage-{time.monotonic_ns()}"
            turn = Text(chunks, delay=0.02, before_finish=postgres.drop_connections)
            # The resumed run asks the model again: the second answer goes through.
            instructions = upstream.script(key, turn, Text(chunks))
            assistant = client.beta.assistants.create(model="m", instructions=instructions)
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
            run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
            done = client.beta.threads.runs.poll(run.id, thread_id=thread.id, timeout=60)
            assert done.status == "completed", done.last_error
            messages = client.beta.threads.messages.list(thread.id, order="asc").data
            assert [m.role for m in messages] == ["user", "assistant"]
            assert messages[1].content[0].text.value == "".join(chunks)  # type: ignore[union-attr]
            if f"run {run.id} lost the database" in outage_server.log():
                break
        else:
            pytest.fail("the executor never met the dead connections")
    assert "ERROR" not in outage_server.log()


def test_a_run_executing_while_the_database_is_down_completes_when_it_is_back(
    postgres: Postgres, outage_server: Server, upstream: ScriptedUpstream
) -> None:
    chunks = [f"w{i} " for i in range(10)]
    key = f"down-{time.monotonic_ns()}"
    instructions = upstream.script(key, Text(chunks, delay=0.02, before_finish=postgres.stop))
    upstream.script(key, Text(chunks))
    with make_client(outage_server, outage_server.keys["alpha"], max_retries=2) as client:
        assistant = client.beta.assistants.create(model="m", instructions=instructions)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        deadline = time.monotonic() + 30
        while postgres.running():
            assert time.monotonic() < deadline, "the model was never asked"
            time.sleep(0.05)
        time.sleep(2)  # down for a while: the executor, the release and the sweeps all fail
        postgres.start()
        done = client.beta.threads.runs.poll(run.id, thread_id=thread.id, timeout=60)
        assert done.status == "completed", done.last_error
        messages = client.beta.threads.messages.list(thread.id, order="asc").data
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].content[0].text.value == "".join(chunks)  # type: ignore[union-attr]
    assert "ERROR" not in outage_server.log()
