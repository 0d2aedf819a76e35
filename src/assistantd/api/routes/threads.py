from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assistantd.api.deps import PageDep, ProjectDep, RuntimeDep, read_body
from assistantd.api.responses import json_response, raw_response
from assistantd.schemas import (
    CreateMessageRequest,
    CreateThreadRequest,
    ModifyMessageRequest,
    ModifyThreadRequest,
)
from assistantd.services import threads

router = APIRouter(prefix="/v1/threads", tags=["threads"])


@router.post("")
async def create_thread(request: Request, rt: RuntimeDep, project: ProjectDep) -> Response:
    body = await read_body(request, CreateThreadRequest, optional=True)
    return json_response(await threads.create(rt.store, project, body))


@router.get("/{thread_id}")
async def get_thread(thread_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    return raw_response(await threads.get_raw(rt.store, project, thread_id))


@router.post("/{thread_id}")
async def modify_thread(
    thread_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, ModifyThreadRequest, optional=True)
    return json_response(await threads.modify(rt.store, project, thread_id, body))


@router.delete("/{thread_id}")
async def delete_thread(thread_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    return json_response(await threads.delete(rt.store, project, thread_id))


@router.post("/{thread_id}/messages")
async def create_message(
    thread_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, CreateMessageRequest)
    return json_response(await threads.create_message(rt.store, project, thread_id, body))


@router.get("/{thread_id}/messages")
async def list_messages(
    thread_id: str, request: Request, rt: RuntimeDep, project: ProjectDep, query: PageDep
) -> Response:
    run_id = request.query_params.get("run_id") or None
    page = await threads.page_messages(rt.store, project, thread_id, query, run_id)
    return raw_response(page.to_json())


@router.get("/{thread_id}/messages/{message_id}")
async def get_message(
    thread_id: str, message_id: str, rt: RuntimeDep, project: ProjectDep
) -> Response:
    return raw_response(await threads.get_message_raw(rt.store, project, thread_id, message_id))


@router.post("/{thread_id}/messages/{message_id}")
async def modify_message(
    thread_id: str, message_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, ModifyMessageRequest, optional=True)
    message = await threads.modify_message(rt.store, project, thread_id, message_id, body)
    return json_response(message)


@router.delete("/{thread_id}/messages/{message_id}")
async def delete_message(
    thread_id: str, message_id: str, rt: RuntimeDep, project: ProjectDep
) -> Response:
    return json_response(await threads.delete_message(rt.store, project, thread_id, message_id))
