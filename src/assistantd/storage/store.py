"""The repositories, one per kind of object, over one database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistantd.storage import tables
from assistantd.storage.db import Database
from assistantd.storage.keys import KeyStore
from assistantd.storage.objects import JSONObject, ObjectRepo, Parent


def _message_columns(o: JSONObject) -> dict[str, Any]:
    return {"thread_id": o["thread_id"], "run_id": o["run_id"]}


def _run_columns(o: JSONObject) -> dict[str, Any]:
    return {
        "thread_id": o["thread_id"],
        "assistant_id": o["assistant_id"],
        "status": o["status"],
        "expires_at": o["expires_at"],
    }


def _step_columns(o: JSONObject) -> dict[str, Any]:
    return {"thread_id": o["thread_id"], "run_id": o["run_id"]}


def _file_columns(o: JSONObject) -> dict[str, Any]:
    return {"purpose": o["purpose"], "expires_at": o.get("expires_at")}


def _vector_store_columns(o: JSONObject) -> dict[str, Any]:
    return {"last_active_at": o["last_active_at"], "expires_at": o.get("expires_at")}


def _vector_store_file_columns(o: JSONObject) -> dict[str, Any]:
    return {
        "vector_store_id": o["vector_store_id"],
        "status": o["status"],
        "usage_bytes": o["usage_bytes"],
    }


def _batch_columns(o: JSONObject) -> dict[str, Any]:
    return {"vector_store_id": o["vector_store_id"]}


class VectorStoreFileRepo(ObjectRepo):
    """Keyed by (vector store, file): one file may sit in several stores."""

    async def save(
        self,
        conn: AsyncConnection,
        project_id: str,
        obj: JSONObject,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        row = self._row(project_id, obj, extra)
        for key in ("id", "project_id", "vector_store_id"):
            del row[key]
        t = self.table
        await conn.execute(
            update(t)
            .where(
                t.c.vector_store_id == obj["vector_store_id"],
                t.c.id == obj["id"],
                t.c.project_id == project_id,
            )
            .values(row)
        )


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.keys = KeyStore(db)
        self.assistants = ObjectRepo(tables.assistants, "assistant")
        self.threads = ObjectRepo(tables.threads, "thread")
        in_thread = [Parent("thread_id", tables.threads)]
        self.messages = ObjectRepo(tables.messages, "message", _message_columns, in_thread)
        self.runs = ObjectRepo(tables.runs, "run", _run_columns, in_thread)
        self.steps = ObjectRepo(
            tables.run_steps, "run step", _step_columns, [Parent("run_id", tables.runs)]
        )
        self.files = ObjectRepo(tables.files, "file", _file_columns)
        self.vector_stores = ObjectRepo(tables.vector_stores, "vector store", _vector_store_columns)
        self.vector_store_files = VectorStoreFileRepo(
            tables.vector_store_files,
            "vector store file",
            _vector_store_file_columns,
            [
                Parent("batch_id", tables.vector_store_file_batches),
                Parent("vector_store_id", tables.vector_stores),
            ],
        )
        self.file_batches = ObjectRepo(
            tables.vector_store_file_batches, "vector store file batch", _batch_columns
        )


async def active_run_id(conn: AsyncConnection, thread_id: str) -> str | None:
    """The thread's active run, if any (uses the partial unique index)."""
    t = tables.runs
    stmt = (
        select(t.c.id)
        .where(t.c.thread_id == thread_id, t.c.status.in_(tables.ACTIVE_RUN_STATUSES))
        .limit(1)
    )
    found = (await conn.execute(stmt)).scalar_one_or_none()
    return None if found is None else str(found)
