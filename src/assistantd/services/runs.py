"""Runs and run steps: what the HTTP layer can ask of them. Execution lives in ``runs/``."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import BindParameter, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from assistantd import clock, ids
from assistantd.errors import ConflictingStateError, InvalidRequestError, RateLimitError
from assistantd.runs import state
from assistantd.runs.tools.base import public_call
from assistantd.services import vector_stores
from assistantd.services.shapes import given, new_message
from assistantd.services.threads import insert_thread
from assistantd.storage import tables
from assistantd.storage.objects import DuplicateError, JSONObject, Page, PageQuery
from assistantd.storage.store import Store, active_run_id

FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def effective_instructions(assistant: JSONObject, body: dict[str, Any]) -> str:
    base = body["instructions"] if given(body, "instructions") else assistant.get("instructions")
    base = base or ""
    extra = body.get("additional_instructions")
    if extra:
        return f"{base}\n\n{extra}" if base else str(extra)
    return str(base)


def new_run(
    thread_id: str, assistant: JSONObject, body: dict[str, Any], expiry_seconds: int
) -> JSONObject:
    now = clock.now()

    def pick(key: str, default: Any) -> Any:
        if given(body, key):
            return body[key]
        value = assistant.get(key)
        return default if value is None else value

    run: JSONObject = {
        "id": ids.new_id(ids.RUN),
        "object": "thread.run",
        "created_at": now,
        "assistant_id": assistant["id"],
        "thread_id": thread_id,
        "status": "queued",
        "started_at": None,
        "expires_at": now + expiry_seconds,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "required_action": None,
        "last_error": None,
        "model": body["model"] if given(body, "model") else assistant["model"],
        "instructions": effective_instructions(assistant, body),
        "tools": body["tools"] if body.get("tools") is not None else assistant.get("tools") or [],
        "metadata": body.get("metadata") or {},
        "incomplete_details": None,
        "usage": None,
        "temperature": pick("temperature", 1.0),
        "top_p": pick("top_p", 1.0),
        "max_prompt_tokens": body.get("max_prompt_tokens"),
        "max_completion_tokens": body.get("max_completion_tokens"),
        "truncation_strategy": body.get("truncation_strategy")
        or {"type": "auto", "last_messages": None},
        "response_format": pick("response_format", "auto"),
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": (
            body["parallel_tool_calls"] if given(body, "parallel_tool_calls") else True
        ),
    }
    if given(body, "reasoning_effort"):
        run["reasoning_effort"] = body["reasoning_effort"]
    run["truncation_strategy"].setdefault("last_messages", None)
    return run


# The statuses as literals: a bound list would keep SQLite from using the partial index.
_ACTIVE: BindParameter[list[str]] = bindparam(
    "active", list(tables.ACTIVE_RUN_STATUSES), expanding=True, literal_execute=True
)
_ACTIVE_RUNS_LOCK = 0x72756E73  # first key of pg_advisory_xact_lock(int, int): "runs"


async def _check_active_runs(conn: AsyncConnection, project: str, limit: int) -> None:
    """429 when the project already has ``limit`` active runs (``limit`` 0: no limit).

    One query on the partial index of active runs, reading at most ``limit`` rows. On
    PostgreSQL the project's run creations take turns (an advisory lock until commit), so
    concurrent creations cannot all pass the same count; SQLite's writer is single anyway.
    """
    if limit <= 0:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:key, hashtext(:project))"),
            {"key": _ACTIVE_RUNS_LOCK, "project": project},
        )
    t = tables.runs
    active = select(t.c.id).where(t.c.project_id == project, t.c.status.in_(_ACTIVE))
    count = (
        await conn.execute(select(func.count()).select_from(active.limit(limit).subquery()))
    ).scalar_one()
    if count >= limit:
        raise RateLimitError(
            f"Too many active runs: this project already has {limit} runs queued, in "
            "progress, waiting for tool outputs or cancelling, the most it may have at once. "
            "Wait for one to end, or cancel one."
        )


async def _insert_run(
    store: Store,
    conn: AsyncConnection,
    project: str,
    thread_id: str,
    run: JSONObject,
    max_active: int,
) -> None:
    existing = await active_run_id(conn, thread_id)
    if existing is not None:
        raise ConflictingStateError(f"Thread {thread_id} already has an active run {existing}.")
    await _check_active_runs(conn, project, max_active)
    try:
        await store.runs.insert(conn, project, run)
    except DuplicateError:
        # Lost a race on PostgreSQL: the partial unique index is the final word.
        raise ConflictingStateError(f"Thread {thread_id} already has an active run.") from None


async def create(
    store: Store,
    project: str,
    thread_id: str,
    body: dict[str, Any],
    expiry_seconds: int,
    *,
    max_active: int = 0,
) -> JSONObject:
    async with store.db.write() as conn:
        assistant = await store.assistants.get(
            conn, project, body["assistant_id"], param="assistant_id"
        )
        thread = await store.threads.get(conn, project, thread_id, for_update=True)
        extra = [new_message(thread_id, m) for m in body.get("additional_messages") or []]
        if await vector_stores.attach_to_thread(conn, store, project, thread, extra):
            await store.threads.save(conn, project, thread)
        await store.messages.insert_many(conn, project, extra)
        run = new_run(thread_id, assistant, body, expiry_seconds)
        await _insert_run(store, conn, project, thread_id, run, max_active)
    return run


async def create_thread_and_run(
    store: Store, project: str, body: dict[str, Any], expiry_seconds: int, *, max_active: int = 0
) -> tuple[JSONObject, JSONObject]:
    thread_body = dict(body.get("thread") or {})
    if body.get("tool_resources") is not None:
        thread_body["tool_resources"] = body["tool_resources"]
    async with store.db.write() as conn:
        assistant = await store.assistants.get(
            conn, project, body["assistant_id"], param="assistant_id"
        )
        thread = await insert_thread(store, conn, project, thread_body)
        run = new_run(thread["id"], assistant, body, expiry_seconds)
        await _insert_run(store, conn, project, thread["id"], run, max_active)
    return thread, run


async def get_raw(store: Store, project: str, thread_id: str, run_id: str) -> str:
    async with store.db.read() as conn:
        await store.threads.get_raw(conn, project, thread_id)
        return await store.runs.get_raw(conn, project, run_id, scope={"thread_id": thread_id})


async def modify(
    store: Store, project: str, thread_id: str, run_id: str, body: dict[str, Any]
) -> JSONObject:
    async with store.db.write() as conn:
        await store.threads.get(conn, project, thread_id)
        run = await store.runs.get(
            conn, project, run_id, scope={"thread_id": thread_id}, for_update=True
        )
        if "metadata" in body:
            run["metadata"] = body["metadata"] or {}
        await store.runs.save(conn, project, run)
    return run


async def cancel(
    store: Store, project: str, thread_id: str, run_id: str
) -> tuple[JSONObject, bool]:
    """Ask for cancellation; returns the run and whether this call moved it to cancelling."""
    async with store.db.write() as conn:
        await store.threads.get(conn, project, thread_id)
        run = await store.runs.get(
            conn, project, run_id, scope={"thread_id": thread_id}, for_update=True
        )
        status = run["status"]
        if status == "cancelling":
            return run, False
        if status not in state.CANCELLABLE:
            raise ConflictingStateError(f"Cannot cancel run with status '{status}'.")
        run = state.transition(run, "cancelling", clock.now())
        await store.runs.save(conn, project, run)
    return run, True


async def submit_tool_outputs(
    store: Store, project: str, thread_id: str, run_id: str, body: dict[str, Any]
) -> tuple[JSONObject, list[JSONObject]]:
    """Fill in the outputs; returns the run (queued again) and the steps this completed."""
    outputs: list[dict[str, Any]] = body["tool_outputs"]
    async with store.db.write() as conn:
        await store.threads.get(conn, project, thread_id)
        run = await store.runs.get(
            conn, project, run_id, scope={"thread_id": thread_id}, for_update=True
        )
        action = run.get("required_action")
        if run["status"] != "requires_action" or not action:
            raise ConflictingStateError(
                f'Runs in status "{run["status"]}" do not accept tool outputs.'
            )
        expected = [c["id"] for c in action["submit_tool_outputs"]["tool_calls"]]
        got = [o.get("tool_call_id") for o in outputs]
        if sorted(expected) != sorted(str(g) for g in got) or len(set(got)) != len(got):
            raise InvalidRequestError(
                f"Expected tool outputs for call_ids {expected}, got {got}",
                param="tool_outputs",
            )
        by_call = {str(o["tool_call_id"]): o.get("output") or "" for o in outputs}
        steps = await _complete_tool_steps(store, conn, project, run, by_call)
        run = state.transition(run, "queued", clock.now())
        await store.runs.save(conn, project, run)
    return run, steps


async def _complete_tool_steps(
    store: Store,
    conn: AsyncConnection,
    project: str,
    run: JSONObject,
    by_call: dict[str, str],
) -> list[JSONObject]:
    page = await store.steps.page(
        conn, project, PageQuery(limit=100, order="desc"), run_id=run["id"]
    )
    now = clock.now()
    completed: list[JSONObject] = []
    for step in page.objects():
        if step["status"] != "in_progress" or step["type"] != "tool_calls":
            continue
        for call in step["step_details"]["tool_calls"]:
            if call["type"] == "function" and call["id"] in by_call:
                call["function"]["output"] = by_call[call["id"]]
        pending = await store.steps.columns(conn, step["id"], "pending_usage")
        step["status"] = "completed"
        step["completed_at"] = now
        step["usage"] = orjson.loads(pending["pending_usage"] or "null")
        await store.steps.save(conn, project, step, extra={"pending_usage": None})
        completed.append(step)
    return completed


async def page(store: Store, project: str, thread_id: str, query: PageQuery) -> Page:
    async with store.db.read() as conn:
        # The page checks the thread itself; only an empty one needs telling from a 404.
        result = await store.runs.page(conn, project, query, thread_id=thread_id)
        if not result.ids:
            await store.threads.get_raw(conn, project, thread_id)
        return result


def _public_step(step: JSONObject, include: list[str]) -> JSONObject:
    """A step as the API shows it: no server-internal keys on tool calls, and file-search
    result ``content`` only when ``include[]`` asked for it."""
    details = step.get("step_details") or {}
    if details.get("tool_calls"):
        content = FILE_SEARCH_CONTENT in include
        details["tool_calls"] = [public_call(c, content=content) for c in details["tool_calls"]]
    return step


async def get_step(
    store: Store, project: str, thread_id: str, run_id: str, step_id: str, include: list[str]
) -> JSONObject:
    async with store.db.read() as conn:
        await store.threads.get_raw(conn, project, thread_id)
        await store.runs.get_raw(conn, project, run_id, scope={"thread_id": thread_id})
        step = await store.steps.get(conn, project, step_id, scope={"run_id": run_id})
    return _public_step(step, include)


async def page_steps(
    store: Store, project: str, thread_id: str, run_id: str, query: PageQuery, include: list[str]
) -> tuple[Page, list[JSONObject] | None]:
    """The page, and when it holds server-tool calls to tidy, the rewritten objects."""
    async with store.db.read() as conn:
        result = await store.steps.page(conn, project, query, thread_id=thread_id, run_id=run_id)
        if not result.ids:
            await store.threads.get_raw(conn, project, thread_id)
            await store.runs.get_raw(conn, project, run_id, scope={"thread_id": thread_id})
    if "file_search" not in "".join(result.bodies):
        return result, None
    return result, [_public_step(s, include) for s in result.objects()]
