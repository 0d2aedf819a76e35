"""The embedded index: a SQLite file beside the database, FTS5 for keywords, numpy for vectors.

It is its own file so that its shadow tables stay out of the application's schema and its
writes (which can be long: a large file's chunks) never hold the main database's write lock.
FTS5 ranks with BM25 (porter-stemmed). Vectors are float32 blobs; a search multiplies the
query with a matrix of the store's vectors that is cached in memory and refreshed from the
file when the store changes (appending only the new rows when nothing was deleted). We do not
load ``sqlite-vec``: many Python builds cannot load SQLite extensions, and its ``vec0`` table
scans exhaustively too, so a cached matrix is as fast without a native add-on.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from assistantd.retrieval.index.base import Chunk, Hit, Vector

CACHE_BYTES = 1 << 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    generation TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    model TEXT,
    embedding BLOB
);
CREATE INDEX IF NOT EXISTS ix_chunks_store ON chunks (store_id, model, id);
CREATE INDEX IF NOT EXISTS ix_chunks_generation ON chunks (generation);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TABLE IF NOT EXISTS stores (
    store_id TEXT PRIMARY KEY,
    adds INTEGER NOT NULL DEFAULT 0,
    deletes INTEGER NOT NULL DEFAULT 0
);
"""


def index_path(database_url: str) -> Path | None:
    """``.../assistantd.db`` -> ``.../assistantd.index.db``; ``None`` for an in-memory database."""
    raw = database_url.split(":///", 1)[1] if ":///" in database_url else ""
    raw = raw.split("?", 1)[0]
    if not raw or raw == ":memory:":
        return None
    path = Path(raw)
    return path.with_name(f"{path.stem}.index{path.suffix or '.db'}")


@dataclass
class _Matrix:
    adds: int
    deletes: int
    max_id: int
    ids: npt.NDArray[np.int64]
    generations: list[str]
    codes: npt.NDArray[np.int32]
    vectors: Vector

    def code_of(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.generations)}

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.ids.nbytes + self.codes.nbytes)


class SQLiteIndex:
    vectors = True

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._uri = (
            str(path) if path is not None else f"file:index-{id(self)}?mode=memory&cache=shared"
        )
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], _Matrix] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._uri, uri=self.path is None, check_same_thread=False, isolation_level=None
        )
        conn.execute("PRAGMA busy_timeout=30000")
        if self.path is not None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _write(self, fn: Any, *args: Any) -> Any:
        with self._write_lock:
            if self._writer is None:
                self._writer = self._connect()
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    async def start(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._create_schema)

    def _create_schema(self) -> None:
        with self._write_lock:
            if self._writer is None:
                self._writer = self._connect()
            # executescript manages its own transaction; every statement is idempotent.
            self._writer.executescript(_SCHEMA)

    async def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._writer = None
        self._local = threading.local()
        with self._cache_lock:
            self._cache.clear()

    # -- writes ------------------------------------------------------------------------------

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
            (
                store_id,
                file_id,
                generation,
                c.seq,
                c.text,
                model if c.vector is not None else None,
                None if c.vector is None else np.asarray(c.vector, dtype=np.float32).tobytes(),
            )
            for c in chunks
        ]

        def go(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO chunks (store_id, file_id, generation, seq, text, model, embedding) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            _bump(conn, store_id, "adds")

        await asyncio.to_thread(self._write, go)

    async def delete_generation(self, generation: str) -> None:
        def go(conn: sqlite3.Connection) -> None:
            stores = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT store_id FROM chunks WHERE generation = ?", (generation,)
                )
            ]
            conn.execute("DELETE FROM chunks WHERE generation = ?", (generation,))
            for store_id in stores:
                _bump(conn, store_id, "deletes")

        await asyncio.to_thread(self._write, go)

    async def delete_store(self, store_id: str) -> None:
        def go(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM chunks WHERE store_id = ?", (store_id,))
            conn.execute("DELETE FROM stores WHERE store_id = ?", (store_id,))

        await asyncio.to_thread(self._write, go)
        with self._cache_lock:
            for key in [k for k in self._cache if k[0] == store_id]:
                del self._cache[key]

    # -- reads -------------------------------------------------------------------------------

    async def count(self, store_id: str, generation: str | None = None) -> int:
        def go() -> int:
            sql = "SELECT COUNT(*) FROM chunks WHERE store_id = ?"
            args: tuple[str, ...] = (store_id,)
            if generation is not None:
                sql += " AND generation = ?"
                args += (generation,)
            return int(self._reader().execute(sql, args).fetchone()[0])

        return await asyncio.to_thread(go)

    async def keyword_search(
        self, store_id: str, terms: Sequence[str], k: int, generations: Collection[str]
    ) -> list[Hit]:
        if not terms or not generations:
            return []
        allowed = orjson.dumps(sorted(generations)).decode()
        return await asyncio.to_thread(self._keyword_search, store_id, list(terms), k, allowed)

    def _keyword_search(self, store_id: str, terms: list[str], k: int, allowed: str) -> list[Hit]:
        conn = self._reader()
        quoted = ['"' + t.replace('"', "") + '"' for t in terms]
        quoted = [q for q in quoted if q != '""']
        if not quoted:
            return []
        if len(quoted) > 1:
            # A word found in most chunks adds almost nothing to BM25 (its IDF is near 0) but
            # makes FTS5 rank nearly every row: leave such words out.
            total = conn.execute("SELECT MAX(id) FROM chunks").fetchone()[0] or 0
            frequency = {
                q: conn.execute(
                    "SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (q,)
                ).fetchone()[0]
                for q in quoted
            }
            kept = [q for q in quoted if frequency[q] <= total / 2]
            quoted = kept or [min(quoted, key=lambda q: frequency[q])]
        match = " OR ".join(quoted)
        # FTS5 ranks its own top rows fastest; over-fetch, then keep this store's allowed
        # chunks. Only when that leaves too few does the exhaustive join run.
        wide = max(4 * k, 200)
        rows = conn.execute(
            "SELECT c.id, c.file_id, c.generation, c.seq, c.text, f.rank FROM "
            "(SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?) f "
            "JOIN chunks c ON c.id = f.rowid "
            "WHERE c.store_id = ? AND c.generation IN (SELECT value FROM json_each(?)) "
            "ORDER BY f.rank LIMIT ?",
            (match, wide, store_id, allowed, k),
        ).fetchall()
        if len(rows) < k:
            matched = conn.execute(
                "SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (match,)
            ).fetchone()[0]
            if matched > wide:
                rows = conn.execute(
                    "SELECT c.id, c.file_id, c.generation, c.seq, c.text, bm25(chunks_fts) AS r "
                    "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
                    "WHERE chunks_fts MATCH ? AND c.store_id = ? "
                    "AND c.generation IN (SELECT value FROM json_each(?)) "
                    "ORDER BY r LIMIT ?",
                    (match, store_id, allowed, k),
                ).fetchall()
        # bm25() is lower-is-better and negative: flip it.
        return [Hit(r[0], r[1], r[2], r[3], r[4], -float(r[5])) for r in rows]

    async def vector_search(
        self,
        store_id: str,
        vector: Vector,
        model: str,
        k: int,
        generations: Collection[str],
    ) -> list[Hit]:
        if not generations:
            return []
        return await asyncio.to_thread(self._vector_search, store_id, vector, model, k, generations)

    def _vector_search(
        self, store_id: str, vector: Vector, model: str, k: int, generations: Collection[str]
    ) -> list[Hit]:
        matrix = self._matrix(store_id, model)
        if matrix is None or not len(matrix.ids):
            return []
        code_of = matrix.code_of()
        allowed = [code_of[g] for g in generations if g in code_of]
        if not allowed:
            return []
        sims = matrix.vectors @ np.asarray(vector, dtype=np.float32)
        if len(allowed) < len(matrix.generations):
            sims = np.where(np.isin(matrix.codes, allowed), sims, -np.inf)
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top])]
        top = top[np.isfinite(sims[top])]
        if not len(top):
            return []
        wanted = [int(matrix.ids[i]) for i in top]
        score = {int(matrix.ids[i]): float(sims[i]) for i in top}
        placeholders = ",".join("?" * len(wanted))
        rows = self._reader().execute(
            f"SELECT id, file_id, generation, seq, text FROM chunks WHERE id IN ({placeholders})",
            wanted,
        )
        by_id = {r[0]: r for r in rows}
        return [
            Hit(i, by_id[i][1], by_id[i][2], by_id[i][3], by_id[i][4], score[i])
            for i in wanted
            if i in by_id
        ]

    def _matrix(self, store_id: str, model: str) -> _Matrix | None:
        conn = self._reader()
        row = conn.execute(
            "SELECT adds, deletes FROM stores WHERE store_id = ?", (store_id,)
        ).fetchone()
        if row is None:
            return None
        adds, deletes = int(row[0]), int(row[1])
        key = (store_id, model)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None and cached.adds == adds and cached.deletes == deletes:
                self._cache.move_to_end(key)
                return cached
            if cached is not None and cached.deletes == deletes:
                fresh = self._load(conn, store_id, model, after=cached.max_id)
                cached = _merge(cached, fresh, adds)
            else:
                cached = self._load(conn, store_id, model, after=0)
                cached.adds, cached.deletes = adds, deletes
            self._cache[key] = cached
            self._cache.move_to_end(key)
            total = sum(m.nbytes for m in self._cache.values())
            while total > CACHE_BYTES and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                total -= evicted.nbytes
            return cached

    @staticmethod
    def _load(conn: sqlite3.Connection, store_id: str, model: str, after: int) -> _Matrix:
        rows = conn.execute(
            "SELECT id, generation, embedding FROM chunks "
            "WHERE store_id = ? AND model = ? AND id > ? ORDER BY id",
            (store_id, model, after),
        ).fetchall()
        generations: list[str] = []
        code_of: dict[str, int] = {}
        codes = np.empty(len(rows), dtype=np.int32)
        for i, r in enumerate(rows):
            code = code_of.get(r[1])
            if code is None:
                code = code_of[r[1]] = len(generations)
                generations.append(r[1])
            codes[i] = code
        vectors = (
            np.vstack([np.frombuffer(r[2], dtype=np.float32) for r in rows])
            if rows
            else np.zeros((0, 0), dtype=np.float32)
        )
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return _Matrix(0, 0, int(ids[-1]) if len(ids) else after, ids, generations, codes, vectors)


def _merge(old: _Matrix, new: _Matrix, adds: int) -> _Matrix:
    if not len(new.ids):
        old.adds = adds
        return old
    generations = list(old.generations)
    code_of = {g: i for i, g in enumerate(generations)}
    remap = np.empty(len(new.generations), dtype=np.int32)
    for i, g in enumerate(new.generations):
        if g not in code_of:
            code_of[g] = len(generations)
            generations.append(g)
        remap[i] = code_of[g]
    vectors = new.vectors if not len(old.ids) else np.vstack([old.vectors, new.vectors])
    return _Matrix(
        adds,
        old.deletes,
        new.max_id,
        np.concatenate([old.ids, new.ids]),
        generations,
        np.concatenate([old.codes, remap[new.codes]]),
        vectors,
    )


def _bump(conn: sqlite3.Connection, store_id: str, column: str) -> None:
    conn.execute(
        f"INSERT INTO stores (store_id, {column}) VALUES (?, 1) "
        f"ON CONFLICT (store_id) DO UPDATE SET {column} = {column} + 1",
        (store_id,),
    )
