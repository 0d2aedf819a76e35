"""Building wire objects from validated request bodies: the defaults OpenAI echoes back."""

from __future__ import annotations

from typing import Any

from assistantd import clock, ids
from assistantd.storage.objects import JSONObject


def given(body: dict[str, Any], key: str) -> bool:
    """A field the client sent with a non-null value (explicit nulls mean "not set")."""
    return body.get(key) is not None


def tool_resources(value: dict[str, Any] | None) -> JSONObject:
    """Normalise ``tool_resources`` to the stored shape: only ids, no helper blocks (the
    ``vector_stores`` helper leaves an empty id list for the service to fill in)."""
    out: JSONObject = {}
    if not value:
        return out
    ci = value.get("code_interpreter")
    if ci is not None:
        out["code_interpreter"] = {"file_ids": list(ci.get("file_ids") or [])}
    fs = value.get("file_search")
    if fs is not None:
        out["file_search"] = {"vector_store_ids": list(fs.get("vector_store_ids") or [])}
    return out


def vector_store_helper(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``tool_resources.file_search.vector_stores[0]`` helper of a request, if any."""
    helpers = ((value or {}).get("file_search") or {}).get("vector_stores") or []
    return dict(helpers[0]) if helpers else None


def merge_tool_resources(current: JSONObject | None, update: dict[str, Any] | None) -> JSONObject:
    """Modify semantics: each given list replaces the stored one; others are kept."""
    merged = dict(current or {})
    merged.update(tool_resources(update))
    return merged


def content_parts(content: str | list[dict[str, Any]]) -> list[JSONObject]:
    """Request content (a string or request parts) to stored message content."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    parts: list[JSONObject] = []
    for part in content:
        kind = part["type"]
        if kind == "text":
            parts.append({"type": "text", "text": {"value": part["text"], "annotations": []}})
        elif kind == "image_file":
            image = dict(part["image_file"])
            if image.get("detail") is None:  # absent or an explicit null: the default
                image["detail"] = "auto"
            parts.append({"type": "image_file", "image_file": image})
        else:
            image = dict(part["image_url"])
            if image.get("detail") is None:
                image["detail"] = "auto"
            parts.append({"type": "image_url", "image_url": image})
    return parts


def new_message(
    thread_id: str,
    body: dict[str, Any],
    *,
    created_at: int | None = None,
    run_id: str | None = None,
    assistant_id: str | None = None,
) -> JSONObject:
    return {
        "id": ids.new_id(ids.MESSAGE),
        "object": "thread.message",
        "created_at": clock.now() if created_at is None else created_at,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "run_id": run_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": None,
        "incomplete_at": None,
        "role": body["role"],
        "content": content_parts(body["content"]),
        "attachments": [
            {"file_id": a["file_id"], "tools": [{"type": t["type"]} for t in a.get("tools") or []]}
            for a in body.get("attachments") or []
        ],
        "metadata": body.get("metadata") or {},
    }


def new_thread(body: dict[str, Any]) -> JSONObject:
    return {
        "id": ids.new_id(ids.THREAD),
        "object": "thread",
        "created_at": clock.now(),
        "tool_resources": tool_resources(body.get("tool_resources")),
        "metadata": body.get("metadata") or {},
    }


def deleted(object_id: str, kind: str) -> JSONObject:
    return {"id": object_id, "object": kind, "deleted": True}
