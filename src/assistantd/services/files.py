"""Files: upload (multipart, streamed to the blob store), list, retrieve, content, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO

import orjson
from sqlalchemy import delete, or_, select
from sqlalchemy.sql.elements import ColumnElement

from assistantd import clock, ids
from assistantd.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from assistantd.services.shapes import deleted
from assistantd.services.vector_stores import detach_everywhere
from assistantd.storage import tables
from assistantd.storage.blobs import BlobStore, BlobTooLarge
from assistantd.storage.objects import JSONObject, Page, PageQuery
from assistantd.storage.store import Store

MAX_FILE_BYTES = 512 * 1024 * 1024
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
LIST_PURPOSES = (*UPLOAD_PURPOSES, "assistants_output", "batch_output", "fine-tune-results")
EXPIRY_RANGE = (3600, 2_592_000)


@dataclass(frozen=True)
class Upload:
    filename: str
    purpose: str
    source: BinaryIO
    expires_after_seconds: int | None = None


def _live(now: int) -> ColumnElement[bool]:
    t = tables.files
    return or_(t.c.expires_at.is_(None), t.c.expires_at > now)


def validate_purpose(purpose: str | None) -> str:
    if not purpose:
        raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose")
    if purpose not in UPLOAD_PURPOSES:
        allowed = ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES)
        raise InvalidRequestError(
            f"Invalid value for 'purpose': '{purpose}'. Supported values are: {allowed}.",
            param="purpose",
        )
    return purpose


def validate_expiry(anchor: str | None, seconds: str | None) -> int | None:
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequestError(
            "Invalid value for 'expires_after[anchor]': expected 'created_at'.",
            param="expires_after.anchor",
        )
    try:
        value = int(seconds or "")
    except ValueError:
        raise InvalidRequestError(
            "Invalid 'expires_after[seconds]': expected an integer.",
            param="expires_after.seconds",
        ) from None
    low, high = EXPIRY_RANGE
    if not low <= value <= high:
        raise InvalidRequestError(
            f"Invalid 'expires_after[seconds]': expected a value between {low} and {high}, "
            f"but got {value} instead.",
            param="expires_after.seconds",
        )
    return value


def expiry_from_json(raw: str) -> tuple[str, str]:
    """``expires_after`` sent as one JSON part (how OpenAPI encodes an object in a multipart
    body by default), as the two form values ``validate_expiry`` checks. The SDKs send
    ``expires_after[anchor]`` and ``expires_after[seconds]`` instead."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError(
            "Invalid 'expires_after': expected an object with 'anchor' and 'seconds'.",
            param="expires_after",
        )
    anchor, seconds = value.get("anchor", ""), value.get("seconds", "")
    # No coercion: only a JSON string anchor and a JSON integer count as such.
    return (
        anchor if isinstance(anchor, str) else repr(anchor),
        str(seconds) if type(seconds) is int else repr(seconds),
    )


async def create(
    store: Store,
    blobs: BlobStore,
    project: str,
    upload: Upload,
    *,
    purpose_override: str | None = None,
) -> JSONObject:
    file_id = ids.new_id(ids.FILE)
    key = f"{project}/{file_id}"
    try:
        size = await blobs.put_file(key, upload.source, MAX_FILE_BYTES)
    except BlobTooLarge:
        raise PayloadTooLargeError(
            f"File is too large: the limit is {MAX_FILE_BYTES} bytes.", param="file"
        ) from None
    now = clock.now()
    expires = upload.expires_after_seconds
    obj: JSONObject = {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": now,
        "filename": upload.filename,
        "purpose": purpose_override or upload.purpose,
        "status": "processed",
    }
    # Optional and not nullable in the spec: present only with a value (the deprecated
    # `status_details` never has one here).
    if expires is not None:
        obj["expires_at"] = now + expires
    try:
        async with store.db.write() as conn:
            await store.files.insert(conn, project, obj, extra={"blob_key": key})
    except BaseException:
        await blobs.delete(key)
        raise
    return obj


async def get(store: Store, project: str, file_id: str, *, param: str | None = None) -> JSONObject:
    async with store.db.read() as conn:
        obj = await store.files.get(conn, project, file_id, param=param)
    if obj.get("expires_at") is not None and obj["expires_at"] <= clock.now():
        raise NotFoundError("file", file_id, param=param)
    return obj


async def blob_key(store: Store, project: str, file_id: str) -> str:
    await get(store, project, file_id)
    async with store.db.read() as conn:
        cols = await store.files.columns(conn, file_id, "blob_key")
    return str(cols["blob_key"])


async def content(
    store: Store, blobs: BlobStore, project: str, file_id: str
) -> tuple[JSONObject, AsyncIterator[bytes]]:
    obj = await get(store, project, file_id)
    key = await blob_key(store, project, file_id)
    return obj, blobs.read(key)


async def delete_file(store: Store, blobs: BlobStore, project: str, file_id: str) -> JSONObject:
    key = await blob_key(store, project, file_id)
    async with store.db.write() as conn:
        # "Delete a file and remove it from all vector stores": its chunks are purged too.
        await detach_everywhere(conn, store, project, file_id)
        await store.files.delete(conn, project, file_id)
    await blobs.delete(key)
    return deleted(file_id, "file")


async def page(store: Store, project: str, query: PageQuery, purpose: str | None) -> Page:
    if purpose is not None and purpose not in LIST_PURPOSES:
        raise InvalidRequestError(f"Invalid value for 'purpose': '{purpose}'.", param="purpose")
    scope = {"purpose": purpose} if purpose else {}
    async with store.db.read() as conn:
        return await store.files.page(
            conn,
            project,
            query,
            where=[_live(clock.now())],
            **scope,
        )


async def purge_expired(store: Store, blobs: BlobStore, limit: int = 500) -> int:
    """Delete files whose expiry has passed (they already read as not found)."""
    t = tables.files
    now = clock.now()
    async with store.db.read() as conn:
        rows = (
            await conn.execute(
                select(t.c.id, t.c.blob_key).where(t.c.expires_at <= now).limit(limit)
            )
        ).all()
    if not rows:
        return 0
    async with store.db.write() as conn:
        await conn.execute(delete(t).where(t.c.id.in_([r.id for r in rows])))
    for row in rows:
        await blobs.delete(row.blob_key)
    return len(rows)
