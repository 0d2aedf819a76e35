"""Threads and their messages."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from assistantd.errors import ConflictingStateError
from assistantd.services import vector_stores
from assistantd.services.shapes import (
    deleted,
    merge_tool_resources,
    new_message,
    new_thread,
    vector_store_helper,
)
from assistantd.storage.objects import JSONObject, Page, PageQuery
from assistantd.storage.store import Store, active_run_id


async def insert_thread(
    store: Store, conn: AsyncConnection, project: str, body: dict[str, Any]
) -> JSONObject:
    """Create a thread and its initial messages inside the caller's transaction."""
    thread = new_thread(body)
    helper = vector_store_helper(body.get("tool_resources"))
    if helper is not None:
        # Stores made for a thread expire 7 days after their last activity, as on OpenAI.
        vs_id = await vector_stores.create_from_helper(
            conn, store, project, helper, days=vector_stores.THREAD_STORE_DAYS
        )
        thread["tool_resources"]["file_search"] = {"vector_store_ids": [vs_id]}
    messages = [
        new_message(thread["id"], m, created_at=thread["created_at"])
        for m in body.get("messages") or []
    ]
    await vector_stores.attach_to_thread(conn, store, project, thread, messages)
    await store.threads.insert(conn, project, thread)
    await store.messages.insert_many(conn, project, messages)
    return thread


async def create(store: Store, project: str, body: dict[str, Any]) -> JSONObject:
    async with store.db.write() as conn:
        return await insert_thread(store, conn, project, body)


async def get_raw(store: Store, project: str, thread_id: str) -> str:
    async with store.db.read() as conn:
        return await store.threads.get_raw(conn, project, thread_id)


async def modify(store: Store, project: str, thread_id: str, body: dict[str, Any]) -> JSONObject:
    async with store.db.write() as conn:
        thread = await store.threads.get(conn, project, thread_id, for_update=True)
        if "metadata" in body:
            thread["metadata"] = body["metadata"] or {}
        if "tool_resources" in body:
            thread["tool_resources"] = merge_tool_resources(
                thread.get("tool_resources"), body["tool_resources"]
            )
        await store.threads.save(conn, project, thread)
    return thread


async def delete(store: Store, project: str, thread_id: str) -> JSONObject:
    async with store.db.write() as conn:
        await store.threads.get(conn, project, thread_id, for_update=True)
        # Everything under the thread goes in the same transaction: no orphan is ever visible.
        # Runs go first: deleting them waits for an executor that holds a run's row lock,
        # so the steps and messages it wrote under that lock are deleted after it, not missed.
        await store.runs.delete_where(conn, thread_id=thread_id)
        await store.steps.delete_where(conn, thread_id=thread_id)
        await store.messages.delete_where(conn, thread_id=thread_id)
        await store.threads.delete(conn, project, thread_id)
    return deleted(thread_id, "thread.deleted")


async def ensure_unlocked(conn: AsyncConnection, thread_id: str) -> None:
    run_id = await active_run_id(conn, thread_id)
    if run_id is not None:
        raise ConflictingStateError(
            f"Can't add messages to {thread_id} while a run {run_id} is active."
        )


async def create_message(
    store: Store, project: str, thread_id: str, body: dict[str, Any]
) -> JSONObject:
    async with store.db.write() as conn:
        # The row lock serialises this against run creation on PostgreSQL.
        thread = await store.threads.get(conn, project, thread_id, for_update=True)
        await ensure_unlocked(conn, thread_id)
        message = new_message(thread_id, body)
        if await vector_stores.attach_to_thread(conn, store, project, thread, [message]):
            await store.threads.save(conn, project, thread)
        await store.messages.insert(conn, project, message)
    return message


async def get_message_raw(store: Store, project: str, thread_id: str, message_id: str) -> str:
    async with store.db.read() as conn:
        await store.threads.get_raw(conn, project, thread_id)
        return await store.messages.get_raw(
            conn, project, message_id, scope={"thread_id": thread_id}
        )


async def modify_message(
    store: Store, project: str, thread_id: str, message_id: str, body: dict[str, Any]
) -> JSONObject:
    async with store.db.write() as conn:
        await store.threads.get(conn, project, thread_id)
        message = await store.messages.get(
            conn, project, message_id, scope={"thread_id": thread_id}, for_update=True
        )
        if "metadata" in body:
            message["metadata"] = body["metadata"] or {}
        await store.messages.save(conn, project, message)
    return message


async def delete_message(store: Store, project: str, thread_id: str, message_id: str) -> JSONObject:
    async with store.db.write() as conn:
        await store.threads.get(conn, project, thread_id)
        await store.messages.delete(conn, project, message_id, scope={"thread_id": thread_id})
    return deleted(message_id, "thread.message.deleted")


async def page_messages(
    store: Store, project: str, thread_id: str, query: PageQuery, run_id: str | None
) -> Page:
    async with store.db.read() as conn:
        if run_id is None:
            result = await store.messages.page(conn, project, query, thread_id=thread_id)
        else:
            result = await store.messages.page(
                conn, project, query, thread_id=thread_id, run_id=run_id
            )
        if not result.ids:  # an empty page, or no such thread
            await store.threads.get_raw(conn, project, thread_id)
        return result
