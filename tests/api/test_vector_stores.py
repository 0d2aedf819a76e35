"""Vector stores over HTTP with the real SDK: CRUD, files, batches, background ingestion,
search, failures, deletion and expiry. Every server here runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import pytest
from docx import Document
from fpdf import FPDF
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import make_client
from tests.servers import Server, _wait_ready, free_port, running_server

FACTS = {
    "lighthouse.txt": "The Kestrel Point lighthouse was first lit in 1871 and its lamp burns "
    "whale oil. The keeper, Mara Quill, logged every passing ship in a green ledger.",
    "recipes.md": "# Soups\n\nA good barley soup needs leeks, carrots and a bay leaf. Simmer it "
    "for ninety minutes and season with smoked salt.",
    "orbit.html": "<html><head><title>Moons</title><style>p{}</style></head><body><h1>Moons"
    "</h1><p>The moon Tethys orbits Saturn every 45 hours.</p><script>var x=1;</script>"
    "</body></html>",
    "tariffs.json": json.dumps(
        {
            "service": "ferry",
            "note": "The ferry to Isle Brannock costs "
            "forty-two euros for a car and runs twice daily.",
        }
    ),
    "stock.csv": "item,count\nanvils,12\nhorseshoes,340\nbellows,3\n",
    "sorting.py": "def bubble_sort(items):\n    # swaps neighbours until the list is ordered\n"
    "    return sorted(items)\n",
}


def upload(client: openai.OpenAI, name: str, data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return client.files.create(file=(name, io.BytesIO(raw)), purpose="assistants").id


def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def index_chunks(server: Server, store_id: str) -> int:
    """Chunks of a store in the server's index (a sibling SQLite file, or a PostgreSQL schema)."""
    url = server.env["ASSISTANTD_DATABASE_URL"]
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        stem, _, suffix = path.rpartition(".")
        url = f"sqlite+aiosqlite:///{stem}.index.{suffix}"
        table = "chunks"
    else:
        table = "assistantd_index.chunks"

    async def count() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                result = await conn.execute(
                    text(f"SELECT COUNT(*) FROM {table} WHERE store_id = :s"), {"s": store_id}
                )
                return int(result.scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def run_sql(server: Server, statement: str, **params: object) -> None:
    async def go() -> None:
        engine = create_async_engine(server.env["ASSISTANTD_DATABASE_URL"])
        try:
            async with engine.begin() as conn:
                await conn.execute(text(statement), params)
        finally:
            await engine.dispose()

    asyncio.run(go())


def make_pdf(paragraphs: list[str]) -> bytes:
    pdf = FPDF()
    for paragraph in paragraphs:
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, paragraph)
    return bytes(pdf.output())


def make_docx(paragraphs: list[str]) -> bytes:
    document = Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "harbour code"
    table.rows[0].cells[1].text = "ZX-991"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# -- CRUD -----------------------------------------------------------------------------------------


def test_create_retrieve_update_list_delete(client: openai.OpenAI) -> None:
    created = client.vector_stores.create(
        name="handbook",
        metadata={"team": "ops"},
        expires_after={"anchor": "last_active_at", "days": 3},
    )
    assert created.id.startswith("vs_") and created.object == "vector_store"
    assert created.name == "handbook" and created.metadata == {"team": "ops"}
    assert created.status == "completed" and created.usage_bytes == 0
    counts = created.file_counts
    assert (
        counts.in_progress,
        counts.completed,
        counts.failed,
        counts.cancelled,
        counts.total,
    ) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert created.expires_after is not None and created.expires_after.days == 3
    assert created.last_active_at is not None
    assert created.expires_at == created.last_active_at + 3 * 86_400
    assert client.vector_stores.retrieve(created.id).model_dump() == created.model_dump()

    unnamed = client.vector_stores.create()
    assert unnamed.name == "" and unnamed.expires_at is None and unnamed.metadata == {}

    updated = client.vector_stores.update(
        created.id, name="renamed", metadata={"team": "dev"}, expires_after=None
    )
    assert updated.name == "renamed" and updated.metadata == {"team": "dev"}
    assert updated.expires_at is None and updated.expires_after is None

    listed = [v.id for v in client.vector_stores.list(limit=1)]
    assert listed[:2] == [unnamed.id, created.id]
    asc = client.vector_stores.list(order="asc", after=created.id, limit=5)
    assert asc.data[0].id == unnamed.id

    gone = client.vector_stores.delete(created.id)
    assert gone.deleted and gone.id == created.id and gone.object == "vector_store.deleted"
    with pytest.raises(openai.NotFoundError) as exc:
        client.vector_stores.retrieve(created.id)
    assert f"No vector store found with id '{created.id}'." in str(exc.value)


def test_request_errors(client: openai.OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create()
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id=store.id, file_id="file-missing")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.create(file_ids=["file-missing"])
    both = http.post(
        f"/v1/vector_stores/{store.id}/file_batches",
        json={"file_ids": ["a"], "files": [{"file_id": "a"}]},
    )
    assert both.status_code == 400
    bad_chunks = http.post(
        "/v1/vector_stores",
        json={
            "chunking_strategy": {
                "type": "static",
                "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150},
            }
        },
    )
    assert bad_chunks.status_code == 400
    assert bad_chunks.json()["error"]["param"].startswith("chunking_strategy")
    too_many = http.post(
        f"/v1/vector_stores/{store.id}/search", json={"query": "x", "max_num_results": 51}
    )
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "max_num_results"
    bad_filter = http.get(f"/v1/vector_stores/{store.id}/files", params={"filter": "nope"})
    assert bad_filter.status_code == 400 and bad_filter.json()["error"]["param"] == "filter"
    # Found by tests/fuzz: an empty filter was read as no filter; it is not a status either.
    upload = client.files.create(file=("a.txt", io.BytesIO(b"text")), purpose="assistants")
    batch = client.vector_stores.file_batches.create(store.id, file_ids=[upload.id])
    for path in (f"{store.id}/files", f"{store.id}/file_batches/{batch.id}/files"):
        empty = http.get(f"/v1/vector_stores/{path}", params={"filter": ""})
        assert empty.status_code == 400 and empty.json()["error"]["param"] == "filter", path
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve("file-nope", vector_store_id=store.id)


def test_other_projects_cannot_see_a_store(
    client: openai.OpenAI, other_client: openai.OpenAI
) -> None:
    store = client.vector_stores.create(name="private")
    with pytest.raises(openai.NotFoundError):
        other_client.vector_stores.retrieve(store.id)
    with pytest.raises(openai.NotFoundError):
        other_client.vector_stores.search(store.id, query="anything")
    assert store.id not in [v.id for v in other_client.vector_stores.list()]


# -- ingestion ------------------------------------------------------------------------------------


def test_batch_upload_and_poll_reads_every_kind_of_text(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="docs")
    files = [(name, io.BytesIO(body.encode())) for name, body in FACTS.items()]
    batch = client.vector_stores.file_batches.upload_and_poll(store.id, files=files)
    assert batch.object == "vector_store.files_batch" and batch.id.startswith("vsfb_")
    assert batch.vector_store_id == store.id and batch.status == "completed"
    counts = batch.file_counts
    assert (counts.completed, counts.in_progress, counts.failed, counts.total) == (6, 0, 0, 6)

    listed = list(client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id))
    assert len(listed) == 6
    for vs_file in listed:
        assert vs_file.status == "completed" and vs_file.last_error is None
        assert vs_file.object == "vector_store.file" and vs_file.vector_store_id == store.id
        assert vs_file.usage_bytes > 0
        assert vs_file.chunking_strategy is not None
        assert vs_file.chunking_strategy.type == "static"
        static = vs_file.chunking_strategy.static
        assert (static.max_chunk_size_tokens, static.chunk_overlap_tokens) == (800, 400)
        # the store file's id is the file's id
        assert client.files.retrieve(vs_file.id).filename in FACTS

    after = client.vector_stores.retrieve(store.id)
    assert after.status == "completed" and after.file_counts.completed == 6
    assert after.usage_bytes == sum(f.usage_bytes for f in listed)
    completed = list(client.vector_stores.files.list(store.id, filter="completed"))
    assert {f.id for f in completed} == {f.id for f in listed}
    assert list(client.vector_stores.files.list(store.id, filter="failed")) == []

    html_id = next(f.id for f in listed if client.files.retrieve(f.id).filename == "orbit.html")
    content = client.vector_stores.files.content(html_id, vector_store_id=store.id)
    text_out = "".join(part.text or "" for part in content)
    assert "Tethys orbits Saturn" in text_out
    assert "var x" not in text_out and "p{}" not in text_out


def test_files_upload_and_poll_attributes_and_detach(client: openai.OpenAI) -> None:
    store = client.vector_stores.create()
    vs_file = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("notes.txt", io.BytesIO(b"Pelicans nest on Quarry Isle."))
    )
    assert vs_file.status == "completed"
    file = client.files.retrieve(vs_file.id)
    assert file.filename == "notes.txt"
    got = client.vector_stores.files.retrieve(vs_file.id, vector_store_id=store.id)
    assert got.attributes == {}
    updated = client.vector_stores.files.update(
        vs_file.id,
        vector_store_id=store.id,
        attributes={"year": 2024, "topic": "birds", "ok": True},
    )
    assert updated.attributes == {"year": 2024, "topic": "birds", "ok": True}
    gone = client.vector_stores.files.delete(vs_file.id, vector_store_id=store.id)
    assert gone.deleted and gone.object == "vector_store.file.deleted"
    assert client.files.retrieve(vs_file.id).id == vs_file.id  # the file itself stays
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_batch_with_files_and_static_chunking(client: openai.OpenAI) -> None:
    store = client.vector_stores.create()
    long_text = " ".join(f"sentence number {i} about harbour logistics." for i in range(250))
    a = upload(client, "long.txt", long_text)
    b = upload(client, "short.txt", "A short note about gulls.")
    batch = client.vector_stores.file_batches.create_and_poll(
        store.id,
        files=[
            {
                "file_id": a,
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50},
                },
                "attributes": {"kind": "long"},
            },
            {"file_id": b, "attributes": {"kind": "short"}},
        ],
    )
    assert batch.status == "completed" and batch.file_counts.completed == 2
    got = client.vector_stores.files.retrieve(a, vector_store_id=store.id)
    assert got.attributes == {"kind": "long"}
    assert got.chunking_strategy is not None and got.chunking_strategy.type == "static"
    assert got.chunking_strategy.static.max_chunk_size_tokens == 200
    hits = client.vector_stores.search(store.id, query="harbour logistics", max_num_results=50)
    long_hits = [h for h in hits if h.file_id == a]
    # ~2,000 tokens in 200-token windows stepping 150: about a dozen short chunks
    assert len(long_hits) > 8
    assert all(len(h.content[0].text) < 1500 for h in long_hits)


def test_corrupt_and_unsupported_files_fail_alone(client: openai.OpenAI) -> None:
    store = client.vector_stores.create()
    good = upload(client, "good.txt", "Otters hold hands while they sleep.")
    corrupt = upload(client, "broken.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40)
    unsupported = upload(client, "photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    empty = upload(client, "empty.txt", "   \n  ")
    batch = client.vector_stores.file_batches.create_and_poll(
        store.id, file_ids=[good, corrupt, unsupported, empty]
    )
    assert batch.status == "completed"
    counts = batch.file_counts
    assert (counts.completed, counts.failed, counts.in_progress, counts.total) == (1, 3, 0, 4)
    errors = {
        f.id: f.last_error for f in client.vector_stores.files.list(store.id, filter="failed")
    }
    assert errors[corrupt] is not None and errors[corrupt].code == "invalid_file"
    assert errors[unsupported] is not None and errors[unsupported].code == "unsupported_file"
    assert errors[empty] is not None and errors[empty].code == "invalid_file"
    assert client.vector_stores.files.retrieve(good, vector_store_id=store.id).status == "completed"
    hits = client.vector_stores.search(store.id, query="otters sleep")
    assert [h.file_id for h in hits] == [good]
    assert client.vector_stores.retrieve(store.id).file_counts.failed == 3


def test_pdf_and_docx_are_searchable(client: openai.OpenAI) -> None:
    store = client.vector_stores.create()
    pdf = upload(
        client,
        "manual.pdf",
        make_pdf(
            [
                "Chapter one explains the boiler.",
                "The emergency valve of the Vantablack boiler opens at 7 bar of pressure.",
            ]
        ),
    )
    docx = upload(
        client,
        "memo.docx",
        make_docx(["Memo to staff.", "The winter timetable starts on the third of November."]),
    )
    batch = client.vector_stores.file_batches.create_and_poll(store.id, file_ids=[pdf, docx])
    assert batch.file_counts.completed == 2, list(client.vector_stores.files.list(store.id))
    valve = client.vector_stores.search(store.id, query="At what pressure does the valve open?")
    assert valve.data[0].file_id == pdf and valve.data[0].filename == "manual.pdf"
    assert "7 bar" in valve.data[0].content[0].text
    timetable = client.vector_stores.search(store.id, query="When does the winter timetable start?")
    assert timetable.data[0].file_id == docx
    code = client.vector_stores.search(store.id, query="harbour code")
    assert code.data[0].file_id == docx and "ZX-991" in code.data[0].content[0].text
    pages = list(client.vector_stores.files.content(pdf, vector_store_id=store.id))
    whole = "".join(p.text or "" for p in pages)
    assert "explains the boiler" in whole and "7 bar" in whole


# -- search ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def facts_store(client: openai.OpenAI) -> tuple[str, dict[str, str]]:
    store = client.vector_stores.create(name="facts")
    ids: dict[str, str] = {}
    for name, body in FACTS.items():
        ids[name] = upload(client, name, body)
    batch = client.vector_stores.file_batches.create_and_poll(
        store.id,
        files=[
            {
                "file_id": fid,
                "attributes": {"name": name, "size": len(FACTS[name]), "public": i % 2 == 0},
            }
            for i, (name, fid) in enumerate(ids.items())
        ],
    )
    assert batch.file_counts.completed == len(FACTS)
    return store.id, ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Who kept the ledger of passing ships?", "lighthouse.txt"),
        ("How long should barley soup simmer?", "recipes.md"),
        ("How often does Tethys go around Saturn?", "orbit.html"),
        ("price of the car ferry", "tariffs.json"),
        ("how many horseshoes are in stock", "stock.csv"),
        ("a function that sorts a list", "sorting.py"),
    ],
)
def test_search_ranks_the_file_holding_the_fact_first(
    client: openai.OpenAI, facts_store: tuple[str, dict[str, str]], query: str, expected: str
) -> None:
    store_id, ids = facts_store
    page = client.vector_stores.search(store_id, query=query)
    assert page.data, query
    top = page.data[0]
    assert top.file_id == ids[expected] and top.filename == expected
    assert top.attributes is not None and top.attributes["name"] == expected
    scores = [r.score for r in page.data]
    assert all(0 <= s <= 1 for s in scores) and scores == sorted(scores, reverse=True)


def test_search_options(client: openai.OpenAI, facts_store: tuple[str, dict[str, str]]) -> None:
    store_id, ids = facts_store
    raw = client.vector_stores.search(store_id, query="Tethys Saturn orbit", max_num_results=2)
    assert raw.search_query == ["Tethys Saturn orbit"] and len(raw.data) <= 2
    everything = client.vector_stores.search(store_id, query="the a of soup ship moon ferry")
    assert len(everything.data) > 1
    cut = everything.data[0].score
    strict = client.vector_stores.search(
        store_id,
        query="the a of soup ship moon ferry",
        ranking_options={"score_threshold": cut},
    )
    assert strict.data and all(r.score >= cut for r in strict.data)
    assert len(strict.data) < len(everything.data)
    rewritten = client.vector_stores.search(
        store_id, query="What is the price of the ferry?", rewrite_query=True
    )
    assert rewritten.search_query == ["price ferry"]
    assert rewritten.data[0].file_id == ids["tariffs.json"]
    several = client.vector_stores.search(store_id, query=["barley soup", "keeper ledger"])
    assert {ids["recipes.md"], ids["lighthouse.txt"]} <= {r.file_id for r in several.data[:2]}


def test_search_filters(client: openai.OpenAI, facts_store: tuple[str, dict[str, str]]) -> None:
    store_id, ids = facts_store
    only = client.vector_stores.search(
        store_id,
        query="soup ferry moon",
        filters={"type": "eq", "key": "name", "value": "orbit.html"},
    )
    assert {r.file_id for r in only.data} == {ids["orbit.html"]}
    excluded = client.vector_stores.search(
        store_id,
        query="barley soup",
        filters={"type": "ne", "key": "name", "value": "recipes.md"},
    )
    assert ids["recipes.md"] not in {r.file_id for r in excluded.data}
    compound = client.vector_stores.search(
        store_id,
        query="soup ferry moon ledger horseshoes sort",
        max_num_results=50,
        filters={
            "type": "and",
            "filters": [
                {"type": "eq", "key": "public", "value": True},
                {
                    "type": "or",
                    "filters": [
                        {"type": "lt", "key": "size", "value": 100},
                        {"type": "in", "key": "name", "value": ["orbit.html", "tariffs.json"]},
                    ],
                },
            ],
        },
    )
    public = {name for i, name in enumerate(FACTS) if i % 2 == 0}
    expected = {
        ids[n] for n in public if len(FACTS[n]) < 100 or n in ("orbit.html", "tariffs.json")
    }
    assert {r.file_id for r in compound.data} <= expected
    assert compound.data
    none = client.vector_stores.search(
        store_id, query="soup", filters={"type": "gt", "key": "size", "value": 10**6}
    )
    assert none.data == []


# -- deletion and expiry --------------------------------------------------------------------------


def test_deleting_a_file_removes_its_chunks(client: openai.OpenAI, server: Server) -> None:
    store = client.vector_stores.create()
    keep = upload(client, "keep.txt", "Herons fish at dawn in the Marrow estuary.")
    drop = upload(client, "drop.txt", "Flamingos stand on one leg in the Marrow estuary.")
    client.vector_stores.file_batches.create_and_poll(store.id, file_ids=[keep, drop])
    before = client.vector_stores.search(store.id, query="flamingos one leg")
    assert before.data[0].file_id == drop
    total = index_chunks(server, store.id)
    assert total >= 2
    client.files.delete(drop)
    after = client.vector_stores.search(store.id, query="flamingos one leg Marrow estuary")
    assert drop not in {r.file_id for r in after.data} and after.data[0].file_id == keep
    counts = client.vector_stores.retrieve(store.id).file_counts
    assert (counts.total, counts.completed) == (1, 1)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(drop, vector_store_id=store.id)
    until(lambda: index_chunks(server, store.id) < total)
    client.vector_stores.delete(store.id)
    until(lambda: index_chunks(server, store.id) == 0)


def test_an_expired_store_reports_expired(client: openai.OpenAI, server: Server) -> None:
    store = client.vector_stores.create(expires_after={"anchor": "last_active_at", "days": 1})
    assert store.status == "completed"
    # A day cannot pass in a test: move the store's last activity two days back.
    past = int(time.time()) - 2 * 86_400
    run_sql(
        server,
        "UPDATE vector_stores SET last_active_at = :p, expires_at = :e WHERE id = :id",
        p=past,
        e=past + 86_400,
        id=store.id,
    )
    expired = client.vector_stores.retrieve(store.id)
    assert expired.status == "expired" and expired.expires_at == past + 86_400
    assert expired.last_active_at == past
    assert store.id in [v.id for v in client.vector_stores.list() if v.status == "expired"]
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.search(store.id, query="anything")
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.files.create(
            vector_store_id=store.id, file_id=upload(client, "late.txt", "late")
        )


def test_search_records_activity(client: openai.OpenAI, server: Server) -> None:
    store = client.vector_stores.create(expires_after={"anchor": "last_active_at", "days": 2})
    past = int(time.time()) - 3600
    run_sql(
        server,
        "UPDATE vector_stores SET last_active_at = :p, expires_at = :e WHERE id = :id",
        p=past,
        e=past + 2 * 86_400,
        id=store.id,
    )
    client.vector_stores.search(store.id, query="x")
    fresh = client.vector_stores.retrieve(store.id)
    assert fresh.last_active_at is not None and fresh.last_active_at > past
    assert fresh.expires_at == fresh.last_active_at + 2 * 86_400


# -- jobs: waiting, cancelling, resuming ----------------------------------------------------------


@contextmanager
def second_server(env: dict[str, str], *args: str) -> Iterator[Server]:
    """Another ``assistantd serve`` on the same database and data directory."""
    port = free_port()
    srv = Server(base_url=f"http://127.0.0.1:{port}", env=env)
    srv.process = subprocess.Popen(
        [sys.executable, "-m", "assistantd", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(srv)
        yield srv
    finally:
        srv.process.terminate()
        srv.process.wait(timeout=15)


@pytest.fixture(scope="module")
def idle_server(server: Server) -> Iterator[Server]:
    """An API-only server (``--no-worker``) on a database of its own: nothing gets ingested."""
    backend = "sqlite" if server.env["ASSISTANTD_DATABASE_URL"].startswith("sqlite") else "postgres"
    with running_server(backend, serve_args=("--no-worker",)) as srv:
        yield srv


def test_files_wait_in_progress_then_cancel(idle_server: Server) -> None:
    with make_client(idle_server, idle_server.keys["alpha"]) as client:
        store = client.vector_stores.create()
        ids = [upload(client, f"f{i}.txt", f"text {i}") for i in range(3)]
        batch = client.vector_stores.file_batches.create(store.id, file_ids=ids)
        assert batch.status == "in_progress"
        assert (batch.file_counts.in_progress, batch.file_counts.total) == (3, 3)
        again = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
        assert again.file_counts.in_progress == 3
        vs = client.vector_stores.retrieve(store.id)
        assert vs.status == "in_progress" and vs.file_counts.in_progress == 3
        cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
        assert cancelled.status == "cancelled"
        assert (cancelled.file_counts.cancelled, cancelled.file_counts.in_progress) == (3, 0)
        statuses = {f.status for f in client.vector_stores.files.list(store.id)}
        assert statuses == {"cancelled"}
        assert client.vector_stores.retrieve(store.id).status == "completed"


def test_a_file_left_in_progress_is_ingested_after_a_restart(idle_server: Server) -> None:
    with make_client(idle_server, idle_server.keys["alpha"]) as client:
        store = client.vector_stores.create()
        fid = upload(client, "resume.txt", "Walruses use their tusks to climb onto ice.")
        client.vector_stores.files.create(vector_store_id=store.id, file_id=fid)
        # As if a worker had claimed it and died: its lease has run out.
        run_sql(
            idle_server,
            "UPDATE vector_store_files SET lease_owner = 'dead:1', lease_expires_at = :t "
            "WHERE id = :id",
            t=int(time.time()) - 5,
            id=fid,
        )
        assert client.vector_stores.files.retrieve(fid, vector_store_id=store.id).status == (
            "in_progress"
        )
    env = dict(idle_server.env)
    with second_server(env) as worker, make_client(worker, idle_server.keys["alpha"]) as client:
        done = client.vector_stores.files.poll(fid, vector_store_id=store.id)
        assert done.status == "completed"
        hits = client.vector_stores.search(store.id, query="walrus tusks ice")
        assert hits.data[0].file_id == fid


def test_reattaching_replaces_the_chunks(client: openai.OpenAI, server: Server) -> None:
    store = client.vector_stores.create()
    fid = upload(client, "again.txt", " ".join(f"word{i} puffin" for i in range(300)))
    client.vector_stores.files.create_and_poll(file_id=fid, vector_store_id=store.id)
    first = index_chunks(server, store.id)
    small = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}
    again = client.vector_stores.files.create_and_poll(
        file_id=fid,
        vector_store_id=store.id,
        chunking_strategy=small,  # type: ignore[arg-type]
    )
    assert again.status == "completed" and again.chunking_strategy is not None
    assert again.chunking_strategy.static.max_chunk_size_tokens == 100
    # Only the new attachment's chunks remain once the old ones are purged.
    until(lambda: index_chunks(server, store.id) > first)
    hits = client.vector_stores.search(store.id, query="puffin", max_num_results=50)
    assert len({h.content[0].text for h in hits}) == len(hits.data)


def test_unique_names_per_run() -> None:
    # a guard for this module's helpers: ids are unique and upload names are free-form
    assert len({uuid.uuid4().hex for _ in range(5)}) == 5
