from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from assistantd.api import limits
from assistantd.api.deps import IncludeDep, PageDep, ProjectDep, RuntimeDep, read_body
from assistantd.api.responses import json_response, raw_response
from assistantd.api.sse import RunLoader, stream_response
from assistantd.errors import NotFoundError
from assistantd.runtime import Runtime
from assistantd.schemas import (
    CreateRunRequest,
    CreateThreadAndRunRequest,
    ModifyRunRequest,
    SubmitToolOutputsRunRequest,
)
from assistantd.services import runs

router = APIRouter(prefix="/v1/threads", tags=["runs"])


def _poll_headers(rt: Runtime) -> dict[str, str]:
    return {"openai-poll-after-ms": str(rt.settings.poll_after_ms)}


def _loader(rt: Runtime, project: str, thread_id: str, run_id: str) -> RunLoader:
    async def load() -> dict[str, Any] | None:
        try:
            return orjson.loads(await runs.get_raw(rt.store, project, thread_id, run_id))  # type: ignore[no-any-return]
        except NotFoundError:
            return None

    return load


async def _announce(rt: Runtime, run: dict[str, Any], *before: tuple[str, Any]) -> None:
    """Publish a new run's first events, then let the worker at it (in that order, so a
    stream replays ``created`` and ``queued`` before the executor's ``in_progress``)."""
    for event, data in before:
        await rt.bus.publish(run["id"], event, data)
    await rt.bus.publish(run["id"], "thread.run.created", run)
    await rt.bus.publish(run["id"], "thread.run.queued", run)
    await rt.dispatch.run_ready(run["id"], run["thread_id"])


def _respond(
    rt: Runtime, project: str, run: dict[str, Any], body: dict[str, Any], after: int
) -> Response:
    if body.get("stream"):
        loader = _loader(rt, project, run["thread_id"], run["id"])
        return stream_response(rt.bus, run["id"], after, loader, rt.settings.send_timeout_seconds)
    return json_response(run)


@router.post("/runs")
async def create_thread_and_run(request: Request, rt: RuntimeDep, project: ProjectDep) -> Response:
    body = await read_body(request, CreateThreadAndRunRequest)
    await limits.admit_run(request, stream=bool(body.get("stream")))
    thread, run = await runs.create_thread_and_run(
        rt.store,
        project,
        body,
        rt.settings.run_expiry_seconds,
        max_active=rt.settings.max_active_runs_per_project,
    )
    await _announce(rt, run, ("thread.created", thread))
    return _respond(rt, project, run, body, 0)


@router.post("/{thread_id}/runs")
async def create_run(
    thread_id: str, request: Request, rt: RuntimeDep, project: ProjectDep, include: IncludeDep
) -> Response:
    body = await read_body(request, CreateRunRequest)
    await limits.admit_run(request, stream=bool(body.get("stream")))
    run = await runs.create(
        rt.store,
        project,
        thread_id,
        body,
        rt.settings.run_expiry_seconds,
        max_active=rt.settings.max_active_runs_per_project,
    )
    await _announce(rt, run)
    return _respond(rt, project, run, body, 0)


@router.get("/{thread_id}/runs")
async def list_runs(
    thread_id: str, rt: RuntimeDep, project: ProjectDep, query: PageDep
) -> Response:
    return raw_response((await runs.page(rt.store, project, thread_id, query)).to_json())


@router.get("/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    raw = await runs.get_raw(rt.store, project, thread_id, run_id)
    return raw_response(raw, headers=_poll_headers(rt))


@router.post("/{thread_id}/runs/{run_id}")
async def modify_run(
    thread_id: str, run_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, ModifyRunRequest, optional=True)
    return json_response(await runs.modify(rt.store, project, thread_id, run_id, body))


@router.post("/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(thread_id: str, run_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    run, changed = await runs.cancel(rt.store, project, thread_id, run_id)
    if changed:
        await rt.bus.publish(run_id, "thread.run.cancelling", run)
    await rt.dispatch.wake_workers()
    return json_response(run)


@router.post("/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(
    thread_id: str, run_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, SubmitToolOutputsRunRequest)
    if body.get("stream"):
        await limits.admit_stream(request)
    run, steps = await runs.submit_tool_outputs(rt.store, project, thread_id, run_id, body)
    # The stream of a submission starts after what the client already saw of the run.
    after = await rt.bus.last_seq(run_id)
    for step in steps:
        await rt.bus.publish(run_id, "thread.run.step.completed", step)
    await rt.bus.publish(run_id, "thread.run.queued", run)
    await rt.dispatch.run_ready(run_id, thread_id)
    return _respond(rt, project, run, body, after)


@router.get("/{thread_id}/runs/{run_id}/steps")
async def list_run_steps(
    thread_id: str,
    run_id: str,
    rt: RuntimeDep,
    project: ProjectDep,
    query: PageDep,
    include: IncludeDep,
) -> Response:
    page, rewritten = await runs.page_steps(rt.store, project, thread_id, run_id, query, include)
    if rewritten is None:
        return raw_response(page.to_json())
    return json_response(
        {
            "object": "list",
            "data": rewritten,
            "first_id": page.ids[0] if page.ids else None,
            "last_id": page.ids[-1] if page.ids else None,
            "has_more": page.has_more,
        }
    )


@router.get("/{thread_id}/runs/{run_id}/steps/{step_id}")
async def get_run_step(
    thread_id: str,
    run_id: str,
    step_id: str,
    rt: RuntimeDep,
    project: ProjectDep,
    include: IncludeDep,
) -> Response:
    step = await runs.get_step(rt.store, project, thread_id, run_id, step_id, include)
    return json_response(step)
