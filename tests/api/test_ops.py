"""Operations: ``/readyz``, ``/metrics`` and JSON logs, on real servers over real HTTP.

Counters are per process and the session's ``server`` is shared with other test modules, so
the metric tests compare a scrape before and after what they do; labels that only these tests
use (a model name of their own) must move by exactly what they did.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.beta.threads import Run
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from assistantd.storage import migrate
from tests.conftest import hanging_assistant, make_client
from tests.servers import BACKENDS, Server, running_server
from tests.upstream import Error, ScriptedUpstream, Text

FAMILIES = {
    "assistantd_http_requests": "counter",
    "assistantd_http_request_duration_seconds": "histogram",
    "assistantd_runs": "gauge",
    "assistantd_ingestion_queue_depth": "gauge",
    "assistantd_database_gauges_up": "gauge",
    "assistantd_upstream_time_to_first_token_seconds": "histogram",
    "assistantd_upstream_call_duration_seconds": "histogram",
    "assistantd_upstream_errors": "counter",
    "assistantd_tokens": "counter",
    "assistantd_runs_finished": "counter",
    "process_resident_memory_bytes": "gauge",
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# --- helpers -------------------------------------------------------------------------------------


def scrape(server: Server) -> Samples:
    response = httpx.get(server.base_url + "/metrics", timeout=30)
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def eventually(server: Server, check: Callable[[Samples], bool], timeout: float = 20) -> Samples:
    """Scrape until ``check`` holds (the database gauges are cached for two seconds, and a
    run's end is counted just after its status is written)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(server)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError("the metrics never showed what was expected")
        time.sleep(0.2)


def readyz(server: Server) -> httpx.Response:
    # Bounded: a readiness probe that hangs is the failure these tests look for.
    return httpx.get(server.base_url + "/readyz", timeout=20)


def wait_ready(server: Server, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = readyz(server)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"never ready again: {response.text}")
        time.sleep(0.2)


def wait_run(client: openai.OpenAI, run: Run, statuses: set[str], timeout: float = 20) -> Run:
    deadline = time.monotonic() + timeout
    while run.status not in statuses:
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run.id} stayed {run.status}")
        time.sleep(0.05)
        run = client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
    return run


def sql(url: str, statement: str, **params: object) -> None:
    async def _go() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(statement), params)
        finally:
            await engine.dispose()

    asyncio.run(_go())


def is_postgres(server: Server) -> bool:
    return server.env["ASSISTANTD_DATABASE_URL"].startswith("postgresql")


def redis_url(server: Server) -> str:
    """The cluster's Redis (``tests/cluster.py``); empty for a single server."""
    return str(getattr(server, "redis_url", ""))


def one_process(server: Server) -> None:
    """Counters belong to one process. Behind the cluster's proxy a scrape reaches one of two
    API processes, and runs execute in worker processes that serve no HTTP."""
    if redis_url(server):
        pytest.skip("per-process counters cannot be followed through the cluster's proxy")


def run_script(
    client: openai.OpenAI, upstream: ScriptedUpstream, model: str, *turns: Any
) -> tuple[Run, str]:
    key = uuid.uuid4().hex
    instructions = upstream.script(key, *turns)
    assistant = client.beta.assistants.create(model=model, instructions=instructions)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    run = wait_run(client, run, {"completed", "failed", "incomplete", "expired", "cancelled"})
    return run, key


@pytest.fixture(scope="module", params=BACKENDS)
def idle_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A server of its own without a worker: runs stay queued and files stay in_progress, and
    the readiness tests may break its database."""
    with running_server(request.param, serve_args=["--no-worker"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def idle_client(idle_server: Server) -> Iterator[openai.OpenAI]:
    with make_client(idle_server, idle_server.keys["alpha"]) as c:
        yield c


# --- /readyz -------------------------------------------------------------------------------------


def test_readyz_is_ready_without_a_key(server: Server) -> None:
    response = readyz(server)
    assert response.status_code == 200
    checks = {"database": "ok", "migrations": "ok"}
    if redis_url(server):
        checks["redis"] = "ok"  # the distributed mode needs Redis too
    assert response.json() == {"status": "ready", "checks": checks}


def test_readyz_fails_while_migrations_are_behind(server: Server) -> None:
    url = server.env["ASSISTANTD_DATABASE_URL"]
    head = migrate.head_revision()
    assert head is not None and head != "0002"
    sql(url, "UPDATE alembic_version SET version_num = '0002'")
    try:
        response = readyz(server)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        assert body["error"] == {
            "message": "Not ready: migrations failed.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["migrations"] == (
            f"the database is at revision 0002, the code expects {head}"
        )
        # Liveness is another question: the process is fine.
        assert httpx.get(server.base_url + "/healthz", timeout=10).status_code == 200
    finally:
        sql(url, "UPDATE alembic_version SET version_num = :head", head=head)
    assert wait_ready(server)["checks"]["migrations"] == "ok"


def test_readyz_stays_ready_on_a_newer_schema(server: Server) -> None:
    """A newer build migrated the database (a rolling upgrade): this one keeps serving."""
    url = server.env["ASSISTANTD_DATABASE_URL"]
    head = migrate.head_revision()
    sql(url, "UPDATE alembic_version SET version_num = '9999'")
    try:
        response = readyz(server)
        assert response.status_code == 200
        assert response.json()["checks"]["migrations"] == (
            f"ok (the database is at revision 9999, newer than this build's {head})"
        )
    finally:
        sql(url, "UPDATE alembic_version SET version_num = :head", head=head)
    assert wait_ready(server)["checks"]["migrations"] == "ok"


def _postgres_admin(server: Server) -> str:
    """The server's PostgreSQL URL, on the maintenance database instead of its own."""
    return (
        make_url(server.env["ASSISTANTD_DATABASE_URL"])
        .set(database="postgres")
        .render_as_string(hide_password=False)
    )


def test_readyz_fails_while_the_database_refuses_connections(idle_server: Server) -> None:
    if not is_postgres(idle_server):
        pytest.skip("a PostgreSQL database can be made unreachable from outside the server")
    name = make_url(idle_server.env["ASSISTANTD_DATABASE_URL"]).database
    admin = _postgres_admin(idle_server)
    sql(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        sql(
            admin,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()",
            name=name,
        )
        response = readyz(idle_server)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        assert body["error"]["message"] == "Not ready: database, migrations failed."
        assert set(body["checks"]) == {"database", "migrations"}
        for detail in body["checks"].values():
            # The kind of failure only: the driver's message (hosts, users) goes to the log.
            assert detail.startswith("failed (") and name not in detail
        # /metrics still answers, without the gauges it could not count.
        samples = scrape(idle_server)
        assert value(samples, "assistantd_database_gauges_up") == 0
        assert not any(key[0] == "assistantd_runs" for key in samples)
    finally:
        sql(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert wait_ready(idle_server)["checks"] == {"database": "ok", "migrations": "ok"}


def test_readyz_answers_while_the_database_hangs(idle_server: Server) -> None:
    """A check that gets no answer fails after its timeout; the probe never hangs."""
    if not is_postgres(idle_server):
        pytest.skip("SQLite readers cannot be blocked from another process (WAL)")
    url = idle_server.env["ASSISTANTD_DATABASE_URL"]

    async def hold_lock_and_probe() -> httpx.Response:
        engine = create_async_engine(url)
        try:
            conn: AsyncConnection
            async with engine.connect() as conn:
                transaction = await conn.begin()
                # Every read of the version table now waits for this transaction.
                await conn.execute(text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))
                try:
                    async with httpx.AsyncClient(timeout=20) as http:
                        return await http.get(idle_server.base_url + "/readyz")
                finally:
                    await transaction.rollback()
        finally:
            await engine.dispose()

    response = asyncio.run(hold_lock_and_probe())
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["message"] == "Not ready: migrations failed."
    assert body["checks"] == {"database": "ok", "migrations": "no answer within 2s"}
    assert wait_ready(idle_server)["checks"] == {"database": "ok", "migrations": "ok"}


# --- /metrics ------------------------------------------------------------------------------------


def test_metrics_exposes_the_families(server: Server) -> None:
    response = httpx.get(server.base_url + "/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    openmetrics = httpx.get(
        server.base_url + "/metrics",
        headers={"accept": "application/openmetrics-text; version=1.0.0"},
        timeout=30,
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    for name, kind in FAMILIES.items():
        assert families.get(name) == kind, name
    samples = scrape(server)
    assert value(samples, "assistantd_database_gauges_up") == 1
    assert {dict(labels)["status"] for name, labels in samples if name == "assistantd_runs"} == {
        "queued",
        "in_progress",
        "requires_action",
        "cancelling",
    }


def test_requests_are_counted_by_route_template(server: Server, client: openai.OpenAI) -> None:
    one_process(server)
    assistant = client.beta.assistants.create(model="gpt-4o")
    route = "/v1/assistants/{assistant_id}"
    before = scrape(server)
    for _ in range(3):
        client.beta.assistants.retrieve(assistant.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve("asst_doesnotexist")
    assert httpx.get(server.base_url + f"/v1/nope/{assistant.id}").status_code == 404
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"method": "GET", "route": route, "status": "200"}
    assert delta("assistantd_http_requests_total", **ok) == 3
    assert delta("assistantd_http_requests_total", **{**ok, "status": "404"}) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert delta("assistantd_http_requests_total", **unmatched) == 1
    latency = {"method": "GET", "route": route}
    assert delta("assistantd_http_request_duration_seconds_count", **latency) == 4
    assert delta("assistantd_http_request_duration_seconds_sum", **latency) > 0
    # Ids never become labels.
    labels = {v for _name, pairs in after for _k, v in pairs}
    assert not any(assistant.id in v or "asst_doesnotexist" in v for v in labels)


def test_a_run_counts_tokens_calls_and_its_end(
    server: Server, client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    one_process(server)
    model = f"ops-{uuid.uuid4().hex[:8]}"
    before = scrape(server)
    run, _key = run_script(client, upstream, model, Text(["Hel", "lo"], usage=(13, 6)))
    assert run.status == "completed"
    after = eventually(
        server,
        lambda s: (
            value(s, "assistantd_runs_finished_total", status="completed")
            > value(before, "assistantd_runs_finished_total", status="completed")
        ),
    )
    assert value(after, "assistantd_tokens_total", model=model, type="prompt") == 13
    assert value(after, "assistantd_tokens_total", model=model, type="completion") == 6
    ok = {"provider": "upstream", "outcome": "ok"}
    for family in ("time_to_first_token_seconds", "call_duration_seconds"):
        name = f"assistantd_upstream_{family}_count"
        assert value(after, name, **ok) >= value(before, name, **ok) + 1


def test_upstream_errors_are_counted_by_kind(
    server: Server, client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    one_process(server)
    before = scrape(server)
    # The server fixture tries a call twice: two 503s fail the run.
    run, _ = run_script(client, upstream, "ops-errors", Error(503), Error(503))
    assert run.status == "failed"
    refused, _ = run_script(client, upstream, "ops-errors", Error(400))
    assert refused.status == "failed"
    after = eventually(
        server,
        lambda s: (
            value(s, "assistantd_runs_finished_total", status="failed")
            >= value(before, "assistantd_runs_finished_total", status="failed") + 2
        ),
    )

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    errors = "assistantd_upstream_errors_total"
    assert delta(errors, provider="upstream", kind="unavailable") >= 2
    assert delta(errors, provider="upstream", kind="invalid_prompt") >= 1
    failed_calls = {"provider": "upstream", "outcome": "error"}
    assert delta("assistantd_upstream_call_duration_seconds_count", **failed_calls) >= 3
    # No token reached the client, so there is no time to first token for them, and the
    # model reported no usage: nothing is counted for the model.
    assert value(after, "assistantd_tokens_total", model="ops-errors", type="prompt") == 0


def test_a_cancelled_run_shows_in_progress_then_aborted_and_cancelled(
    server: Server, client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    one_process(server)
    before = scrape(server)
    assistant_id = hanging_assistant(client, upstream)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id)
    wait_run(client, run, {"in_progress"})
    eventually(server, lambda s: value(s, "assistantd_runs", status="in_progress") >= 1)
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    wait_run(client, run, {"cancelled"})
    aborted = {"provider": "upstream", "outcome": "aborted"}
    eventually(
        server,
        lambda s: (
            value(s, "assistantd_runs_finished_total", status="cancelled")
            >= value(before, "assistantd_runs_finished_total", status="cancelled") + 1
            and value(s, "assistantd_upstream_call_duration_seconds_count", **aborted)
            >= value(before, "assistantd_upstream_call_duration_seconds_count", **aborted) + 1
        ),
    )


def test_queue_depths_come_from_the_database(
    idle_server: Server, idle_client: openai.OpenAI
) -> None:
    """Runs waiting for a worker and files waiting for ingestion, counted in the database
    (so every process reports the same numbers)."""
    before = eventually(idle_server, lambda s: value(s, "assistantd_database_gauges_up") == 1)
    queued = value(before, "assistantd_runs", status="queued")
    ingesting = value(before, "assistantd_ingestion_queue_depth")
    assistant = idle_client.beta.assistants.create(model="gpt-4o")
    for _ in range(2):
        thread = idle_client.beta.threads.create()
        idle_client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    file = idle_client.files.create(file=("a.txt", io.BytesIO(b"hello")), purpose="assistants")
    store = idle_client.vector_stores.create()
    idle_client.vector_stores.files.create(vector_store_id=store.id, file_id=file.id)
    eventually(
        idle_server,
        lambda s: (
            value(s, "assistantd_runs", status="queued") == queued + 2
            and value(s, "assistantd_ingestion_queue_depth") == ingesting + 1
        ),
    )


# --- JSON logs, and metrics switched off ------------------------------------------------------


@pytest.fixture(scope="module")
def json_server(upstream: ScriptedUpstream) -> Iterator[Server]:
    with running_server(
        BACKENDS[0],
        upstream_base_url=upstream.base_url,
        log_format="json",
        log_level="info",
        metrics="false",
    ) as srv:
        yield srv


def _records(server: Server) -> list[dict[str, Any]]:
    records = []
    for line in server.log().splitlines():
        if not line.strip():
            continue
        if line.startswith(("Default model:", "No model is configured")):
            continue  # the one start-up line `serve` prints for a person, on stdout
        record = json.loads(line)  # every other line is one JSON object
        assert isinstance(record, dict)
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        records.append(record)
    return records


def _wait_for_record(server: Server, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        found = [r for r in _records(server) if match(r)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no such log record in:\n{server.log()}")
        time.sleep(0.1)


def test_json_logs_carry_request_and_run_ids(
    json_server: Server, upstream: ScriptedUpstream
) -> None:
    with make_client(json_server, json_server.keys["alpha"]) as client:
        created = client.beta.assistants.with_raw_response.create(model="gpt-4o")
        request_id = created.headers["x-request-id"]
        assistant = created.parse()
        run, _ = run_script(client, upstream, "gpt-4o", Text(["ok"]))
    assert run.status == "completed"
    access = _wait_for_record(json_server, lambda r: r.get("request_id") == request_id)
    assert access["logger"] == "assistantd.access"
    assert access["level"] == "INFO"
    assert (access["method"], access["route"], access["status"]) == ("POST", "/v1/assistants", 200)
    assert access["path"] == "/v1/assistants" and access["duration_ms"] >= 0
    assert access["message"].startswith("POST /v1/assistants 200 ")
    assert assistant.id.startswith("asst_")
    ended = _wait_for_record(
        json_server, lambda r: r.get("run_id") == run.id and r.get("run_status") == "completed"
    )
    assert ended["logger"] == "assistantd.executor"
    assert "request_id" not in ended  # the run executes outside any request
    # uvicorn's own lines go through the same handler.
    assert any(r["logger"].startswith("uvicorn") for r in _records(json_server))


def test_metrics_can_be_switched_off(json_server: Server) -> None:
    response = httpx.get(json_server.base_url + "/metrics", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /metrics)"
    assert readyz(json_server).status_code == 200


def test_an_unknown_log_format_stops_the_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTD_")}
    env.update(ASSISTANTD_DATA_DIR=str(tmp_path), ASSISTANTD_LOG_FORMAT="xml")
    result = subprocess.run(
        [sys.executable, "-m", "assistantd", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == "assistantd: ASSISTANTD_LOG_FORMAT: Input should be 'text' or 'json'\n"
