"""The repositories, one per kind of object, over one database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistantd.storage import tables
from assistantd.storage.db import Database
from assistantd.storage.keys import KeyStore
from assistantd.storage.objects import JSONObject, ObjectRepo


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


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.keys = KeyStore(db)
        self.assistants = ObjectRepo(tables.assistants, "assistant")
        self.threads = ObjectRepo(tables.threads, "thread")
        self.messages = ObjectRepo(tables.messages, "message", _message_columns)
        self.runs = ObjectRepo(tables.runs, "run", _run_columns)
        self.steps = ObjectRepo(tables.run_steps, "run step", _step_columns)
        self.files = ObjectRepo(tables.files, "file", _file_columns)


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
