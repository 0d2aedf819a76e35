"""The PostgreSQL index: pgvector for vectors, the built-in full-text search for keywords.

Tables live in their own schema (``assistantd_index``), created here rather than by the
application's migrations: the index is derived data that can always be rebuilt from the files,
and its column types (``vector``, ``tsvector``) mean nothing on SQLite. Vector search is exact
(``<=>``, cosine distance) within one store, which keeps recall at 100 % and needs no index
tuning; keyword search ranks ``english``-stemmed matches with ``ts_rank`` (length-normalised).
Without the ``vector`` extension the index is keyword-only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import Text

from assistantd.retrieval.index.base import Chunk, Hit, Vector
from assistantd.storage.db import Database

log = logging.getLogger("assistantd.retrieval")

SCHEMA = "assistantd_index"
_LOCK_KEY = 0x617373697374  # pg_advisory_xact_lock key: one creator at a time
_WORD = re.compile(r"[^\w]+", re.UNICODE)

_TABLE = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.chunks (
    id BIGSERIAL PRIMARY KEY,
    store_id TEXT COLLATE "C" NOT NULL,
    file_id TEXT COLLATE "C" NOT NULL,
    generation TEXT COLLATE "C" NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    model TEXT,
    {{embedding}}
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED
)
"""
_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS ix_chunks_store ON {SCHEMA}.chunks (store_id, generation)",
    f"CREATE INDEX IF NOT EXISTS ix_chunks_generation ON {SCHEMA}.chunks (generation)",
    f"CREATE INDEX IF NOT EXISTS ix_chunks_tsv ON {SCHEMA}.chunks USING gin (tsv)",
)
_GENERATIONS = bindparam("generations", type_=ARRAY(Text()))


class PostgresIndex:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.vectors = False

    async def start(self) -> None:
        try:
            async with self.db.write() as conn:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
                await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        except DBAPIError as exc:
            log.warning("pgvector is not available (%s): retrieval is keyword-only", exc.orig)
        async with self.db.write() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            has_vector = (
                await conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'vector'"))
            ).scalar_one_or_none() is not None
            await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            embedding = "embedding vector," if has_vector else ""
            await conn.execute(text(_TABLE.format(embedding=embedding)))
            for statement in _INDEXES:
                await conn.execute(text(statement))
            self.vectors = (
                await conn.execute(
                    text(
                        "SELECT 1 FROM information_schema.columns WHERE table_schema = :s "
                        "AND table_name = 'chunks' AND column_name = 'embedding'"
                    ),
                    {"s": SCHEMA},
                )
            ).scalar_one_or_none() is not None

    async def close(self) -> None:
        return None

    async def add(
        self,
        store_id: str,
        file_id: str,
        generation: str,
        chunks: Sequence[Chunk],
        model: str | None,
    ) -> None:
        if not chunks:
            return
        rows = [
            {
                "store_id": store_id,
                "file_id": file_id,
                "generation": generation,
                "seq": c.seq,
                "text": c.text.replace("\x00", ""),
                "model": model if c.vector is not None and self.vectors else None,
                "embedding": _literal(c.vector) if c.vector is not None and self.vectors else None,
            }
            for c in chunks
        ]
        columns = "store_id, file_id, generation, seq, text, model"
        values = ":store_id, :file_id, :generation, :seq, :text, :model"
        if self.vectors:
            columns += ", embedding"
            values += ", CAST(:embedding AS vector)"
        async with self.db.write() as conn:
            await conn.execute(
                text(f"INSERT INTO {SCHEMA}.chunks ({columns}) VALUES ({values})"), rows
            )

    async def delete_generation(self, generation: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                text(f"DELETE FROM {SCHEMA}.chunks WHERE generation = :g"), {"g": generation}
            )

    async def delete_store(self, store_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                text(f"DELETE FROM {SCHEMA}.chunks WHERE store_id = :s"), {"s": store_id}
            )

    async def count(self, store_id: str, generation: str | None = None) -> int:
        sql = f"SELECT COUNT(*) FROM {SCHEMA}.chunks WHERE store_id = :s"
        params: dict[str, str] = {"s": store_id}
        if generation is not None:
            sql += " AND generation = :g"
            params["g"] = generation
        async with self.db.read() as conn:
            return int((await conn.execute(text(sql), params)).scalar_one())

    async def keyword_search(
        self, store_id: str, terms: Sequence[str], k: int, generations: Collection[str]
    ) -> list[Hit]:
        words = [w for t in terms for w in _WORD.split(t.lower()) if w]
        if not words or not generations:
            return []
        query = " | ".join(dict.fromkeys(words))
        stmt = text(
            f"SELECT c.id, c.file_id, c.generation, c.seq, c.text, ts_rank(c.tsv, q, 1) AS rank "
            f"FROM {SCHEMA}.chunks c, to_tsquery('english', :q) q "
            "WHERE c.store_id = :s AND c.generation = ANY(:generations) AND c.tsv @@ q "
            "ORDER BY rank DESC LIMIT :k"
        ).bindparams(_GENERATIONS)
        async with self.db.read() as conn:
            rows = await conn.execute(
                stmt, {"q": query, "s": store_id, "generations": list(generations), "k": k}
            )
            return [Hit(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows]

    async def vector_search(
        self,
        store_id: str,
        vector: Vector,
        model: str,
        k: int,
        generations: Collection[str],
    ) -> list[Hit]:
        if not self.vectors or not generations:
            return []
        stmt = text(
            "SELECT id, file_id, generation, seq, text, "
            "1 - (embedding <=> CAST(:v AS vector)) AS sim "
            f"FROM {SCHEMA}.chunks "
            "WHERE store_id = :s AND model = :m AND generation = ANY(:generations) "
            "ORDER BY embedding <=> CAST(:v AS vector) LIMIT :k"
        ).bindparams(_GENERATIONS)
        params = {
            "v": _literal(vector),
            "s": store_id,
            "m": model,
            "generations": list(generations),
            "k": k,
        }
        async with self.db.read() as conn:
            rows = await conn.execute(stmt, params)
            return [Hit(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows]


def _literal(vector: Vector) -> str:
    return orjson.dumps(vector.tolist()).decode()
