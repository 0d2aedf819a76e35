"""The chunk index: full-text and vector search over chunks, behind one protocol (``base``),
with an embedded SQLite implementation and a PostgreSQL (pgvector) one."""

from __future__ import annotations

from assistantd.retrieval.index.base import Chunk, Hit, Index
from assistantd.storage.db import Database


def build(db: Database) -> Index:
    """The index that lives beside ``db``: a sibling SQLite file, or a schema of the same
    PostgreSQL database."""
    if db.is_sqlite:
        from assistantd.retrieval.index.sqlite import SQLiteIndex, index_path

        return SQLiteIndex(index_path(db.url))
    from assistantd.retrieval.index.postgres import PostgresIndex

    return PostgresIndex(db)


__all__ = ["Chunk", "Hit", "Index", "build"]
