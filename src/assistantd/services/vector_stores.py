"""Vector stores, their files and file batches; search; the thread and assistant helpers.

A vector store's ``file_counts``, ``usage_bytes`` and ``status`` are never stored: they are
counted from its files at every read, so they cannot drift from the files' own statuses. A
store file that is ``in_progress`` is an ingestion job (``retrieval/ingest.py`` does the work).
Detaching a file, or deleting a store, writes an index purge in the same transaction; the
ingestion worker carries it out, and searches only ever return chunks of files that the
database says are ``completed`` in the store, so nothing stale is seen meanwhile.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistantd import clock, ids
from assistantd.errors import InvalidRequestError, NotFoundError
from assistantd.retrieval.catalog import (
    expiry,
    file_search_ids,
    filenames,
    searchable,
    touch,
)
from assistantd.retrieval.chunking import Strategy
from assistantd.retrieval.search import Searcher, rewrite
from assistantd.services.shapes import deleted
from assistantd.storage import tables
from assistantd.storage.objects import JSONObject, PageQuery
from assistantd.storage.store import Store

THREAD_STORE_DAYS = 7
STATUSES = ("in_progress", "completed", "failed", "cancelled")
PURGE = "purge_"


# -- shapes -------------------------------------------------------------------------------------


def _counts(rows: Iterable[Any]) -> tuple[dict[str, int], int]:
    counts = dict.fromkeys(STATUSES, 0)
    usage = 0
    for status, n, used in rows:
        counts[status] = counts.get(status, 0) + int(n)
        if status == "completed":
            usage += int(used or 0)
    counts["total"] = sum(counts[s] for s in STATUSES)
    return counts, usage


async def _count_files(conn: AsyncConnection, **scope: str) -> tuple[dict[str, int], int]:
    t = tables.vector_store_files
    stmt = (
        select(t.c.status, func.count(), func.sum(t.c.usage_bytes))
        .where(*[t.c[k] == v for k, v in scope.items()])
        .group_by(t.c.status)
    )
    return _counts((await conn.execute(stmt)).all())


def _expired(obj: JSONObject, now: int) -> bool:
    return obj.get("expires_at") is not None and obj["expires_at"] <= now


def _present(obj: JSONObject, counts: dict[str, int], usage: int, now: int) -> JSONObject:
    obj["file_counts"] = counts
    obj["usage_bytes"] = usage
    if _expired(obj, now):
        obj["status"] = "expired"
    else:
        obj["status"] = "in_progress" if counts["in_progress"] else "completed"
    return obj


async def _load(
    conn: AsyncConnection, store: Store, project: str, vs_id: str, *, for_update: bool = False
) -> JSONObject:
    t = tables.vector_stores
    stmt = select(t.c.body, t.c.last_active_at, t.c.expires_at).where(
        t.c.id == vs_id, t.c.project_id == project
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        raise NotFoundError("vector store", vs_id)
    obj: JSONObject = orjson.loads(row.body)
    obj["last_active_at"], obj["expires_at"] = row.last_active_at, row.expires_at
    return obj


async def _view(conn: AsyncConnection, store: Store, project: str, vs_id: str) -> JSONObject:
    obj = await _load(conn, store, project, vs_id)
    counts, usage = await _count_files(conn, vector_store_id=vs_id)
    return _present(obj, counts, usage, clock.now())


async def _ensure_usable(conn: AsyncConnection, store: Store, project: str, vs_id: str) -> None:
    obj = await _load(conn, store, project, vs_id, for_update=True)
    if _expired(obj, clock.now()):
        raise InvalidRequestError(f"Vector store {vs_id} has expired.", param="vector_store_id")


# -- vector stores ------------------------------------------------------------------------------


async def insert_store(
    conn: AsyncConnection,
    store: Store,
    project: str,
    *,
    name: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    expires_after: dict[str, Any] | None = None,
    file_ids: Sequence[str] = (),
    chunking_strategy: dict[str, Any] | None = None,
    param: str = "file_ids",
) -> JSONObject:
    """Create a store (and attach ``file_ids``) inside the caller's transaction."""
    now = clock.now()
    obj: JSONObject = {
        "id": ids.new_id(ids.VECTOR_STORE),
        "object": "vector_store",
        "created_at": now,
        "name": name or "",
        "usage_bytes": 0,
        "file_counts": None,
        "status": "in_progress",
        "last_active_at": now,
        "expires_at": expiry(expires_after, now),
        "metadata": metadata or {},
    }
    if expires_after:
        obj["expires_after"] = expires_after
    if description is not None:
        obj["description"] = description
    await store.vector_stores.insert(conn, project, obj)
    strategy = Strategy.from_wire(chunking_strategy)
    for file_id in dict.fromkeys(file_ids):
        await attach(conn, store, project, obj["id"], file_id, strategy, None, param=param)
    return obj


async def create(store: Store, project: str, body: dict[str, Any]) -> JSONObject:
    async with store.db.write() as conn:
        obj = await insert_store(
            conn,
            store,
            project,
            name=body.get("name"),
            description=body.get("description"),
            metadata=body.get("metadata"),
            expires_after=body.get("expires_after"),
            file_ids=body.get("file_ids") or [],
            chunking_strategy=body.get("chunking_strategy"),
        )
        return await _view(conn, store, project, obj["id"])


async def get(store: Store, project: str, vs_id: str) -> JSONObject:
    async with store.db.read() as conn:
        return await _view(conn, store, project, vs_id)


async def page(store: Store, project: str, query: PageQuery) -> JSONObject:
    async with store.db.read() as conn:
        result = await store.vector_stores.page(conn, project, query)
        objs = result.objects()
        t = tables.vector_store_files
        rows = (
            await conn.execute(
                select(t.c.vector_store_id, t.c.status, func.count(), func.sum(t.c.usage_bytes))
                .where(t.c.vector_store_id.in_(result.ids))
                .group_by(t.c.vector_store_id, t.c.status)
            )
        ).all()
        vs = tables.vector_stores
        activity = {
            r.id: r
            for r in (
                await conn.execute(
                    select(vs.c.id, vs.c.last_active_at, vs.c.expires_at).where(
                        vs.c.id.in_(result.ids)
                    )
                )
            ).all()
        }
    now = clock.now()
    data = []
    for obj in objs:
        mine = [(r[1], r[2], r[3]) for r in rows if r[0] == obj["id"]]
        counts, usage = _counts(mine)
        row = activity[obj["id"]]
        obj["last_active_at"], obj["expires_at"] = row.last_active_at, row.expires_at
        data.append(_present(obj, counts, usage, now))
    return _list(data, result.has_more)


def _list(data: list[JSONObject], has_more: bool) -> JSONObject:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


async def modify(store: Store, project: str, vs_id: str, body: dict[str, Any]) -> JSONObject:
    async with store.db.write() as conn:
        obj = await _load(conn, store, project, vs_id, for_update=True)
        if "name" in body:
            obj["name"] = body["name"] or ""
        if "metadata" in body:
            obj["metadata"] = body["metadata"] or {}
        if "expires_after" in body:
            if body["expires_after"]:
                obj["expires_after"] = body["expires_after"]
            else:
                obj.pop("expires_after", None)
            obj["expires_at"] = expiry(body["expires_after"], obj["last_active_at"])
        await store.vector_stores.save(conn, project, obj)
        return await _view(conn, store, project, vs_id)


async def delete_store(store: Store, project: str, vs_id: str) -> JSONObject:
    async with store.db.write() as conn:
        await _load(conn, store, project, vs_id, for_update=True)
        await store.vector_store_files.delete_where(conn, vector_store_id=vs_id)
        await store.file_batches.delete_where(conn, vector_store_id=vs_id)
        await store.vector_stores.delete(conn, project, vs_id)
        await _purge(conn, vs_id, None)
    return deleted(vs_id, "vector_store.deleted")


async def _purge(conn: AsyncConnection, vs_id: str, generation: str | None) -> None:
    await conn.execute(
        insert(tables.index_purges).values(
            id=ids.new_id(PURGE),
            vector_store_id=vs_id,
            generation=generation,
            created_at=clock.now(),
        )
    )


# -- files in a store ---------------------------------------------------------------------------


async def attach(
    conn: AsyncConnection,
    store: Store,
    project: str,
    vs_id: str,
    file_id: str,
    strategy: Strategy,
    attributes: dict[str, Any] | None,
    *,
    batch_id: str | None = None,
    param: str = "file_id",
) -> JSONObject:
    """Attach one file (queued for ingestion) or refresh an existing attachment."""
    f = tables.files
    row = (
        await conn.execute(
            select(f.c.expires_at).where(f.c.id == file_id, f.c.project_id == project)
        )
    ).one_or_none()
    if row is None or (row.expires_at is not None and row.expires_at <= clock.now()):
        raise NotFoundError("file", file_id, param=param)
    t = tables.vector_store_files
    current = (
        await conn.execute(
            select(t.c.body, t.c.generation).where(
                t.c.vector_store_id == vs_id, t.c.id == file_id, t.c.project_id == project
            )
        )
    ).one_or_none()
    extra: dict[str, Any] = {"batch_id": batch_id}
    if current is not None:
        obj: JSONObject = orjson.loads(current.body)
        same_chunks = obj.get("chunking_strategy") == strategy.to_wire()
        if attributes is not None:
            obj["attributes"] = attributes
        if same_chunks and obj["status"] in ("in_progress", "completed"):
            await store.vector_store_files.save(conn, project, obj, extra=extra)
            return obj
        await store.vector_store_files.delete(
            conn, project, file_id, scope={"vector_store_id": vs_id}
        )
        await _purge(conn, vs_id, current.generation)
        attributes = obj.get("attributes") if attributes is None else attributes
    obj = {
        "id": file_id,
        "object": "vector_store.file",
        "usage_bytes": 0,
        "created_at": clock.now(),
        "vector_store_id": vs_id,
        "status": "in_progress",
        "last_error": None,
        "chunking_strategy": strategy.to_wire(),
        "attributes": attributes or {},
    }
    extra["generation"] = secrets.token_hex(16)
    await store.vector_store_files.insert(conn, project, obj, extra=extra)
    return obj


async def create_file(store: Store, project: str, vs_id: str, body: dict[str, Any]) -> JSONObject:
    async with store.db.write() as conn:
        await _ensure_usable(conn, store, project, vs_id)
        return await attach(
            conn,
            store,
            project,
            vs_id,
            body["file_id"],
            Strategy.from_wire(body.get("chunking_strategy")),
            body.get("attributes"),
        )


async def get_file(store: Store, project: str, vs_id: str, file_id: str) -> JSONObject:
    async with store.db.read() as conn:
        await _load(conn, store, project, vs_id)
        return await store.vector_store_files.get(
            conn, project, file_id, scope={"vector_store_id": vs_id}
        )


def _status_filter(value: str | None) -> list[Any]:
    if value is None:
        return []
    if value not in STATUSES:
        allowed = ", ".join(f"'{s}'" for s in STATUSES)
        raise InvalidRequestError(
            f"Invalid value for 'filter': '{value}'. Supported values are: {allowed}.",
            param="filter",
        )
    return [tables.vector_store_files.c.status == value]


async def page_files(
    store: Store,
    project: str,
    vs_id: str,
    query: PageQuery,
    status: str | None,
    batch_id: str | None = None,
) -> bytes:
    where = _status_filter(status)
    async with store.db.read() as conn:
        # The page checks the store (or batch) itself; an empty one may be a 404.
        result = await store.vector_store_files.page(
            conn, project, query, where=where, vector_store_id=vs_id, batch_id=batch_id
        )
        if not result.ids:
            await _load(conn, store, project, vs_id)
            if batch_id is not None:
                await store.file_batches.get(
                    conn, project, batch_id, scope={"vector_store_id": vs_id}
                )
    return result.to_json()


async def update_file(
    store: Store, project: str, vs_id: str, file_id: str, body: dict[str, Any]
) -> JSONObject:
    async with store.db.write() as conn:
        await _load(conn, store, project, vs_id, for_update=True)
        obj = await store.vector_store_files.get(
            conn, project, file_id, scope={"vector_store_id": vs_id}
        )
        obj["attributes"] = body.get("attributes") or {}
        await store.vector_store_files.save(conn, project, obj)
    return obj


async def _detach(
    conn: AsyncConnection, store: Store, project: str, vs_id: str, file_id: str
) -> None:
    t = tables.vector_store_files
    generation = (
        await conn.execute(
            select(t.c.generation).where(
                t.c.vector_store_id == vs_id, t.c.id == file_id, t.c.project_id == project
            )
        )
    ).scalar_one_or_none()
    if generation is None:
        raise NotFoundError("vector store file", file_id)
    await store.vector_store_files.delete(conn, project, file_id, scope={"vector_store_id": vs_id})
    await _purge(conn, vs_id, generation)


async def delete_file(store: Store, project: str, vs_id: str, file_id: str) -> JSONObject:
    async with store.db.write() as conn:
        await _load(conn, store, project, vs_id, for_update=True)
        await _detach(conn, store, project, vs_id, file_id)
    return deleted(file_id, "vector_store.file.deleted")


async def detach_everywhere(
    conn: AsyncConnection, store: Store, project: str, file_id: str
) -> None:
    """A deleted file leaves every vector store (``DELETE /files/{id}``), in the caller's
    transaction."""
    t = tables.vector_store_files
    rows = (
        await conn.execute(
            select(t.c.vector_store_id).where(t.c.id == file_id, t.c.project_id == project)
        )
    ).all()
    for row in rows:
        await _detach(conn, store, project, row.vector_store_id, file_id)


async def file_content(
    store: Store, project: str, vs_id: str, file_id: str
) -> tuple[str, str] | None:
    """(filename, blob key) of a store file whose text can be shown."""
    obj = await get_file(store, project, vs_id, file_id)
    if obj["status"] != "completed":
        return None
    async with store.db.read() as conn:
        f = tables.files
        row = (
            await conn.execute(
                select(f.c.blob_key, f.c.body).where(f.c.id == file_id, f.c.project_id == project)
            )
        ).one_or_none()
    if row is None:
        return None
    return str(orjson.loads(row.body)["filename"]), str(row.blob_key)


def content_page(texts: list[str]) -> JSONObject:
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": t} for t in texts],
        "has_more": False,
        "next_page": None,
    }


# -- batches ------------------------------------------------------------------------------------


def _present_batch(obj: JSONObject, counts: dict[str, int]) -> JSONObject:
    obj["file_counts"] = counts
    if obj.get("status") == "cancelled":
        return obj
    if counts["in_progress"]:
        obj["status"] = "in_progress"
    elif counts["total"] and counts["failed"] == counts["total"]:
        obj["status"] = "failed"
    else:
        obj["status"] = "completed"
    return obj


async def _batch_view(
    conn: AsyncConnection, store: Store, project: str, vs_id: str, batch_id: str
) -> JSONObject:
    obj = await store.file_batches.get(conn, project, batch_id, scope={"vector_store_id": vs_id})
    counts, _ = await _count_files(conn, batch_id=batch_id)
    return _present_batch(obj, counts)


async def create_batch(store: Store, project: str, vs_id: str, body: dict[str, Any]) -> JSONObject:
    if body.get("files") is not None:
        entries = [
            (f["file_id"], Strategy.from_wire(f.get("chunking_strategy")), f.get("attributes"))
            for f in body["files"]
        ]
        param = "files"
    else:
        strategy = Strategy.from_wire(body.get("chunking_strategy"))
        entries = [(fid, strategy, body.get("attributes")) for fid in body["file_ids"]]
        param = "file_ids"
    async with store.db.write() as conn:
        await _ensure_usable(conn, store, project, vs_id)
        obj: JSONObject = {
            "id": ids.new_id(ids.FILE_BATCH),
            "object": "vector_store.files_batch",
            "created_at": clock.now(),
            "vector_store_id": vs_id,
            "status": "in_progress",
            "file_counts": None,
        }
        await store.file_batches.insert(conn, project, obj)
        seen: set[str] = set()
        for file_id, strategy, attributes in entries:
            if file_id in seen:
                continue
            seen.add(file_id)
            await attach(
                conn, store, project, vs_id, file_id, strategy, attributes,
                batch_id=obj["id"], param=param,
            )  # fmt: skip
        return await _batch_view(conn, store, project, vs_id, obj["id"])


async def get_batch(store: Store, project: str, vs_id: str, batch_id: str) -> JSONObject:
    async with store.db.read() as conn:
        await _load(conn, store, project, vs_id)
        return await _batch_view(conn, store, project, vs_id, batch_id)


async def cancel_batch(store: Store, project: str, vs_id: str, batch_id: str) -> JSONObject:
    """Files of the batch still waiting or being read end ``cancelled``; finished ones stay."""
    t = tables.vector_store_files
    async with store.db.write() as conn:
        await _load(conn, store, project, vs_id, for_update=True)
        batch = await _batch_view(conn, store, project, vs_id, batch_id)
        if batch["status"] != "in_progress":
            return batch
        rows = (
            await conn.execute(
                select(t.c.body, t.c.generation).where(
                    t.c.batch_id == batch_id, t.c.status == "in_progress"
                )
            )
        ).all()
        for row in rows:
            obj = orjson.loads(row.body)
            obj["status"] = "cancelled"
            await store.vector_store_files.save(
                conn, project, obj, extra={"lease_owner": None, "lease_expires_at": None}
            )
            await _purge(conn, vs_id, row.generation)
        batch["status"] = "cancelled"
        stored = {k: v for k, v in batch.items() if k != "file_counts"}
        await store.file_batches.save(conn, project, {**stored, "file_counts": None})
        return await _batch_view(conn, store, project, vs_id, batch_id)


# -- search ---------------------------------------------------------------------------------------


async def search(
    store: Store, searcher: Searcher, project: str, vs_id: str, body: dict[str, Any]
) -> JSONObject:
    raw = body["query"]
    queries = [raw] if isinstance(raw, str) else list(raw)
    if body.get("rewrite_query"):
        queries = [rewrite(q) for q in queries]
    ranking = body.get("ranking_options") or {}
    async with store.db.read() as conn:
        obj = await _load(conn, store, project, vs_id)
        if _expired(obj, clock.now()):
            raise InvalidRequestError(f"Vector store {vs_id} has expired.", param="vector_store_id")
        allowed = await searchable(conn, vs_id, body.get("filters"))
    results = await searcher.search(
        [(vs_id, set(allowed))],
        [q for q in queries if q.strip()] or [""],
        body.get("max_num_results") or 10,
        threshold=float(ranking.get("score_threshold") or 0.0),
    )
    async with store.db.read() as conn:
        names = await filenames(conn, project, (allowed[r.hit.generation][0] for r in results))
    await touch(store, [vs_id])
    data = []
    for r in results:
        file_id, attributes = allowed[r.hit.generation]
        data.append(
            {
                "file_id": file_id,
                "filename": names.get(file_id, ""),
                "score": r.score,
                "attributes": attributes,
                "content": [{"type": "text", "text": r.hit.text}],
            }
        )
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": data,
        "has_more": False,
        "next_page": None,
    }


# -- helpers used by assistants, threads and messages ---------------------------------------------


async def create_from_helper(
    conn: AsyncConnection,
    store: Store,
    project: str,
    helper: dict[str, Any],
    *,
    days: int | None,
) -> str:
    """``tool_resources.file_search.vector_stores[0]``: a new store from those files."""
    obj = await insert_store(
        conn,
        store,
        project,
        metadata=helper.get("metadata"),
        expires_after={"anchor": "last_active_at", "days": days} if days else None,
        file_ids=helper.get("file_ids") or [],
        chunking_strategy=helper.get("chunking_strategy"),
        param="tool_resources.file_search.vector_stores[0].file_ids",
    )
    return str(obj["id"])


async def attach_to_thread(
    conn: AsyncConnection,
    store: Store,
    project: str,
    thread: JSONObject,
    messages: Sequence[JSONObject],
) -> bool:
    """Files attached to ``messages`` for ``file_search`` join the thread's vector store, which
    is created (expiring 7 days after its last activity) if the thread has none. Returns
    whether ``thread`` changed and must be saved."""
    wanted = [
        (i, a["file_id"])
        for i, m in enumerate(messages)
        for a in m.get("attachments") or []
        if any(t.get("type") == "file_search" for t in a.get("tools") or [])
    ]
    if not wanted:
        return False
    changed = False
    existing = file_search_ids(thread)
    vs_table = tables.vector_stores
    if (
        existing
        and (
            await conn.execute(
                select(vs_table.c.id).where(
                    vs_table.c.id == existing[0], vs_table.c.project_id == project
                )
            )
        ).scalar_one_or_none()
    ):
        vs_id = existing[0]
    else:
        created = await insert_store(
            conn,
            store,
            project,
            expires_after={"anchor": "last_active_at", "days": THREAD_STORE_DAYS},
        )
        vs_id = created["id"]
        resources = dict(thread.get("tool_resources") or {})
        resources["file_search"] = {"vector_store_ids": [vs_id]}
        thread["tool_resources"] = resources
        changed = True
    for _index, file_id in wanted:
        await attach(conn, store, project, vs_id, file_id, Strategy(), None, param="attachments")
    return changed
