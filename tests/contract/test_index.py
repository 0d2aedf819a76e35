"""One contract for every chunk index: the embedded SQLite one and PostgreSQL with pgvector."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from assistantd.retrieval.index import Chunk, Index
from assistantd.retrieval.index.postgres import PostgresIndex
from assistantd.retrieval.index.sqlite import SQLiteIndex, index_path
from assistantd.storage.db import Database
from tests.servers import BACKENDS, postgres_url

MODEL = "test-model"


@pytest.fixture(scope="module", params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'c.db'}"
    else:
        yield postgres_url()


@pytest.fixture
async def index(backend_url: str) -> AsyncIterator[Index]:
    db = Database(backend_url)
    idx: Index = SQLiteIndex(index_path(backend_url)) if db.is_sqlite else PostgresIndex(db)
    await idx.start()
    await idx.start()  # idempotent
    try:
        yield idx
    finally:
        await idx.close()
        await db.dispose()


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


async def test_vectors_rank_by_cosine_and_respect_generations(index: Index) -> None:
    assert index.vectors
    store, g1, g2 = new_id("vs_"), new_id("g"), new_id("g")
    await index.add(
        store,
        "file-a",
        g1,
        [Chunk(0, "north", unit(1, 0, 0, 0)), Chunk(1, "north-east", unit(1, 1, 0, 0))],
        MODEL,
    )
    await index.add(store, "file-b", g2, [Chunk(0, "east", unit(0, 1, 0, 0))], MODEL)
    hits = await index.vector_search(store, unit(1, 0.1, 0, 0), MODEL, 10, {g1, g2})
    assert [h.text for h in hits] == ["north", "north-east", "east"]
    assert hits[0].file_id == "file-a" and hits[0].generation == g1 and hits[0].seq == 0
    assert hits[0].score == pytest.approx(float(unit(1, 0.1, 0, 0) @ unit(1, 0, 0, 0)), abs=1e-5)
    assert hits[0].score >= hits[1].score >= hits[2].score
    only_b = await index.vector_search(store, unit(1, 0, 0, 0), MODEL, 10, {g2})
    assert [h.text for h in only_b] == ["east"]
    assert await index.vector_search(store, unit(1, 0, 0, 0), MODEL, 10, set()) == []
    top1 = await index.vector_search(store, unit(0, 1, 0, 0), MODEL, 1, {g1, g2})
    assert [h.text for h in top1] == ["east"]
    # another model's space is never compared
    assert await index.vector_search(store, unit(1, 0, 0, 0), "other", 10, {g1, g2}) == []


async def test_search_sees_later_adds_and_deletes(index: Index) -> None:
    store, g1, g2 = new_id("vs_"), new_id("g"), new_id("g")
    await index.add(store, "file-a", g1, [Chunk(0, "a", unit(1, 0, 0, 0))], MODEL)
    first = await index.vector_search(store, unit(0, 0, 1, 0), MODEL, 5, {g1, g2})
    assert [h.text for h in first] == ["a"]
    await index.add(store, "file-b", g2, [Chunk(0, "b", unit(0, 0, 1, 0))], MODEL)
    second = await index.vector_search(store, unit(0, 0, 1, 0), MODEL, 5, {g1, g2})
    assert [h.text for h in second] == ["b", "a"]
    await index.delete_generation(g2)
    third = await index.vector_search(store, unit(0, 0, 1, 0), MODEL, 5, {g1, g2})
    assert [h.text for h in third] == ["a"]
    assert await index.count(store) == 1 and await index.count(store, g2) == 0


async def test_keyword_search_stems_ranks_and_filters(index: Index) -> None:
    store, g1, g2, g3 = new_id("vs_"), new_id("g"), new_id("g"), new_id("g")
    await index.add(
        store,
        "file-a",
        g1,
        [
            Chunk(0, "The quarterly report covers revenue and the running costs of the fleet."),
            Chunk(1, "Nothing relevant is written here at all."),
        ],
        None,
    )
    await index.add(
        store, "file-b", g2, [Chunk(0, "Zebras run across the savanna; zebra herds run.")], None
    )
    await index.add(store, "file-c", g3, [Chunk(0, "zebra zebra zebra")], None)
    hits = await index.keyword_search(store, ["zebra"], 10, {g1, g2, g3})
    assert {h.file_id for h in hits} == {"file-b", "file-c"}
    assert all(h.score > 0 for h in hits)
    stemmed = await index.keyword_search(store, ["runs"], 10, {g1, g2})
    assert {h.file_id for h in stemmed} == {"file-a", "file-b"}
    rare = await index.keyword_search(store, ["savanna", "costs"], 10, {g1, g2, g3})
    assert {h.file_id for h in rare} == {"file-a", "file-b"}
    assert await index.keyword_search(store, ["zebra"], 10, {g1}) == []
    assert await index.keyword_search(store, ["absent"], 10, {g1, g2, g3}) == []
    # chunks stored without vectors are not in vector search
    assert index.vectors
    assert await index.vector_search(store, unit(1, 0, 0, 0), MODEL, 5, {g1, g2, g3}) == []
    limited = await index.keyword_search(store, ["zebra"], 1, {g1, g2, g3})
    assert len(limited) == 1


async def test_stores_are_separate_and_delete_store(index: Index) -> None:
    s1, s2, g1, g2 = new_id("vs_"), new_id("vs_"), new_id("g"), new_id("g")
    await index.add(s1, "file-a", g1, [Chunk(0, "shared word apple", unit(1, 0, 0, 0))], MODEL)
    await index.add(s2, "file-a", g2, [Chunk(0, "shared word apple", unit(1, 0, 0, 0))], MODEL)
    assert [h.generation for h in await index.keyword_search(s1, ["apple"], 5, {g1, g2})] == [g1]
    vec = await index.vector_search(s2, unit(1, 0, 0, 0), MODEL, 5, {g1, g2})
    assert [h.generation for h in vec] == [g2]
    await index.delete_store(s1)
    assert await index.count(s1) == 0 and await index.count(s2) == 1
    assert await index.keyword_search(s1, ["apple"], 5, {g1}) == []
    assert await index.vector_search(s1, unit(1, 0, 0, 0), MODEL, 5, {g1}) == []


async def test_odd_text_is_stored_and_searchable(index: Index) -> None:
    store, g = new_id("vs_"), new_id("g")
    odd = "quotes \" and ' and unicode café 日本 and a NUL-free (parenthesis) OR AND NOT"
    await index.add(store, "file-a", g, [Chunk(0, odd)], None)
    hits = await index.keyword_search(store, ["café", "OR", '"quotes"'], 5, {g})
    assert [h.seq for h in hits] == [0]


async def test_keyword_search_finds_a_store_buried_under_another(index: Index) -> None:
    crowded, quiet = new_id("vs_"), new_id("vs_")
    g_crowded, g_quiet = new_id("g"), new_id("g")
    await index.add(
        crowded,
        "file-crowd",
        g_crowded,
        [Chunk(i, f"zebra zebra zebra common filler {i}") for i in range(300)],
        None,
    )
    await index.add(quiet, "file-quiet", g_quiet, [Chunk(0, "one zebra and an apple")], None)
    hits = await index.keyword_search(quiet, ["zebra"], 5, {g_quiet})
    assert [h.file_id for h in hits] == ["file-quiet"]
    # a word in most chunks ("zebra") must not drown the rare one ("apple")
    both = await index.keyword_search(quiet, ["zebra", "apple"], 5, {g_quiet})
    assert [h.file_id for h in both] == ["file-quiet"]
    crowd = await index.keyword_search(crowded, ["zebra", "filler"], 3, {g_crowded})
    assert len(crowd) == 3
