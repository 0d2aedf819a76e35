"""Assistants: create, read, modify, delete, list."""

from __future__ import annotations

from typing import Any

from assistantd import clock, ids
from assistantd.services import vector_stores
from assistantd.services.shapes import (
    deleted,
    given,
    merge_tool_resources,
    tool_resources,
    vector_store_helper,
)
from assistantd.storage.objects import JSONObject, Page, PageQuery
from assistantd.storage.store import Store

_EDITABLE = (
    "model",
    "name",
    "description",
    "instructions",
    "tools",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
)


async def create(store: Store, project: str, body: dict[str, Any]) -> JSONObject:
    assistant: JSONObject = {
        "id": ids.new_id(ids.ASSISTANT),
        "object": "assistant",
        "created_at": clock.now(),
        "name": body.get("name"),
        "description": body.get("description"),
        "model": body["model"],
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "tool_resources": tool_resources(body.get("tool_resources")),
        "metadata": body.get("metadata") or {},
        "temperature": body["temperature"] if given(body, "temperature") else 1.0,
        "top_p": body["top_p"] if given(body, "top_p") else 1.0,
        "response_format": body.get("response_format") or "auto",
    }
    if given(body, "reasoning_effort"):
        assistant["reasoning_effort"] = body["reasoning_effort"]
    helper = vector_store_helper(body.get("tool_resources"))
    async with store.db.write() as conn:
        if helper is not None:
            vs_id = await vector_stores.create_from_helper(conn, store, project, helper, days=None)
            assistant["tool_resources"]["file_search"] = {"vector_store_ids": [vs_id]}
        await store.assistants.insert(conn, project, assistant)
    return assistant


async def get_raw(store: Store, project: str, assistant_id: str) -> str:
    async with store.db.read() as conn:
        return await store.assistants.get_raw(conn, project, assistant_id)


async def modify(store: Store, project: str, assistant_id: str, body: dict[str, Any]) -> JSONObject:
    async with store.db.write() as conn:
        assistant = await store.assistants.get(conn, project, assistant_id, for_update=True)
        for key in _EDITABLE:
            if key not in body:
                continue
            value = body[key]
            if key in ("tools",):
                value = value or []
            elif key == "metadata":
                value = value or {}
            elif key == "model" and value is None:
                continue
            assistant[key] = value
        if "tool_resources" in body:
            assistant["tool_resources"] = merge_tool_resources(
                assistant.get("tool_resources"), body["tool_resources"]
            )
        if given(body, "reasoning_effort"):
            assistant["reasoning_effort"] = body["reasoning_effort"]
        await store.assistants.save(conn, project, assistant)
    return assistant


async def delete(store: Store, project: str, assistant_id: str) -> JSONObject:
    async with store.db.write() as conn:
        await store.assistants.delete(conn, project, assistant_id)
    return deleted(assistant_id, "assistant.deleted")


async def page(store: Store, project: str, query: PageQuery) -> Page:
    async with store.db.read() as conn:
        return await store.assistants.page(conn, project, query)
