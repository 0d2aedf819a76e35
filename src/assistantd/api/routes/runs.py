from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assistantd.api.deps import IncludeDep, PageDep, ProjectDep, RuntimeDep, read_body
from assistantd.api.responses import json_response, raw_response
from assistantd.errors import InvalidRequestError
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


def _no_stream_yet(body: dict[str, object]) -> None:
    if body.get("stream"):
        raise InvalidRequestError(
            "Streaming runs ('stream': true) are not available on this server yet.",
            param="stream",
        )


@router.post("/runs")
async def create_thread_and_run(request: Request, rt: RuntimeDep, project: ProjectDep) -> Response:
    body = await read_body(request, CreateThreadAndRunRequest)
    _no_stream_yet(body)
    _thread, run = await runs.create_thread_and_run(
        rt.store, project, body, rt.settings.run_expiry_seconds
    )
    rt.worker.notify()
    return json_response(run)


@router.post("/{thread_id}/runs")
async def create_run(
    thread_id: str, request: Request, rt: RuntimeDep, project: ProjectDep, include: IncludeDep
) -> Response:
    body = await read_body(request, CreateRunRequest)
    _no_stream_yet(body)
    run = await runs.create(rt.store, project, thread_id, body, rt.settings.run_expiry_seconds)
    rt.worker.notify()
    return json_response(run)


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
    run = await runs.cancel(rt.store, project, thread_id, run_id)
    rt.worker.notify()
    return json_response(run)


@router.post("/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(
    thread_id: str, run_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, SubmitToolOutputsRunRequest)
    _no_stream_yet(body)
    run = await runs.submit_tool_outputs(rt.store, project, thread_id, run_id, body)
    rt.worker.notify()
    return json_response(run)


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
