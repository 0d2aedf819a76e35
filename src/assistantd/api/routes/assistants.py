from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assistantd.api.deps import PageDep, ProjectDep, RuntimeDep, read_body
from assistantd.api.responses import json_response, raw_response
from assistantd.schemas import CreateAssistantRequest, ModifyAssistantRequest
from assistantd.services import assistants

router = APIRouter(prefix="/v1/assistants", tags=["assistants"])


@router.post("")
async def create_assistant(request: Request, rt: RuntimeDep, project: ProjectDep) -> Response:
    body = await read_body(request, CreateAssistantRequest)
    return json_response(await assistants.create(rt.store, project, body))


@router.get("")
async def list_assistants(rt: RuntimeDep, project: ProjectDep, query: PageDep) -> Response:
    return raw_response((await assistants.page(rt.store, project, query)).to_json())


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    return raw_response(await assistants.get_raw(rt.store, project, assistant_id))


@router.post("/{assistant_id}")
async def modify_assistant(
    assistant_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, ModifyAssistantRequest, optional=True)
    return json_response(await assistants.modify(rt.store, project, assistant_id, body))


@router.delete("/{assistant_id}")
async def delete_assistant(assistant_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    return json_response(await assistants.delete(rt.store, project, assistant_id))
