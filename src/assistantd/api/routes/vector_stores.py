from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assistantd.api.deps import PageDep, ProjectDep, RuntimeDep, read_body
from assistantd.api.responses import json_response, raw_response
from assistantd.retrieval.extract import ExtractionError, extract_all
from assistantd.runtime import Runtime
from assistantd.schemas.vector_stores import (
    CreateVectorStoreFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    UpdateVectorStoreFileAttributesRequest,
    UpdateVectorStoreRequest,
    VectorStoreSearchRequest,
)
from assistantd.services import vector_stores as vs

router = APIRouter(prefix="/v1/vector_stores", tags=["vector_stores"])


def _polled(rt: Runtime, obj: object) -> Response:
    # The SDK's poll helpers read this to decide how long to sleep between polls.
    return json_response(obj, headers={"openai-poll-after-ms": str(rt.settings.poll_after_ms)})


@router.post("")
async def create_vector_store(request: Request, rt: RuntimeDep, project: ProjectDep) -> Response:
    body = await read_body(request, CreateVectorStoreRequest, optional=True)
    obj = await vs.create(rt.store, project, body)
    await rt.dispatch.ingestion_ready()
    return json_response(obj)


@router.get("")
async def list_vector_stores(rt: RuntimeDep, project: ProjectDep, query: PageDep) -> Response:
    return json_response(await vs.page(rt.store, project, query))


@router.get("/{vector_store_id}")
async def get_vector_store(vector_store_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    return _polled(rt, await vs.get(rt.store, project, vector_store_id))


@router.post("/{vector_store_id}")
async def modify_vector_store(
    vector_store_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, UpdateVectorStoreRequest, optional=True)
    return json_response(await vs.modify(rt.store, project, vector_store_id, body))


@router.delete("/{vector_store_id}")
async def delete_vector_store(
    vector_store_id: str, rt: RuntimeDep, project: ProjectDep
) -> Response:
    obj = await vs.delete_store(rt.store, project, vector_store_id)
    await rt.dispatch.ingestion_ready()
    return json_response(obj)


@router.post("/{vector_store_id}/search")
async def search_vector_store(
    vector_store_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, VectorStoreSearchRequest)
    return json_response(await vs.search(rt.store, rt.searcher, project, vector_store_id, body))


# -- files --------------------------------------------------------------------------------------


@router.post("/{vector_store_id}/files")
async def create_vector_store_file(
    vector_store_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, CreateVectorStoreFileRequest)
    obj = await vs.create_file(rt.store, project, vector_store_id, body)
    await rt.dispatch.ingestion_ready()
    return json_response(obj)


@router.get("/{vector_store_id}/files")
async def list_vector_store_files(
    vector_store_id: str, request: Request, rt: RuntimeDep, project: ProjectDep, query: PageDep
) -> Response:
    status = request.query_params.get("filter")  # "" is not a status: 400, like order=
    return raw_response(await vs.page_files(rt.store, project, vector_store_id, query, status))


@router.get("/{vector_store_id}/files/{file_id}")
async def get_vector_store_file(
    vector_store_id: str, file_id: str, rt: RuntimeDep, project: ProjectDep
) -> Response:
    return _polled(rt, await vs.get_file(rt.store, project, vector_store_id, file_id))


@router.post("/{vector_store_id}/files/{file_id}")
async def update_vector_store_file(
    vector_store_id: str, file_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, UpdateVectorStoreFileAttributesRequest)
    return json_response(await vs.update_file(rt.store, project, vector_store_id, file_id, body))


@router.delete("/{vector_store_id}/files/{file_id}")
async def delete_vector_store_file(
    vector_store_id: str, file_id: str, rt: RuntimeDep, project: ProjectDep
) -> Response:
    obj = await vs.delete_file(rt.store, project, vector_store_id, file_id)
    await rt.dispatch.ingestion_ready()
    return json_response(obj)


@router.get("/{vector_store_id}/files/{file_id}/content")
async def vector_store_file_content(
    vector_store_id: str, file_id: str, rt: RuntimeDep, project: ProjectDep
) -> Response:
    found = await vs.file_content(rt.store, project, vector_store_id, file_id)
    texts: list[str] = []
    if found is not None:
        filename, key = found
        data = await rt.blobs.read_all(key)
        try:
            texts = await asyncio.to_thread(extract_all, filename, data)
        except ExtractionError:
            texts = []
    return json_response(vs.content_page(texts))


# -- batches ------------------------------------------------------------------------------------


@router.post("/{vector_store_id}/file_batches")
async def create_file_batch(
    vector_store_id: str, request: Request, rt: RuntimeDep, project: ProjectDep
) -> Response:
    body = await read_body(request, CreateVectorStoreFileBatchRequest)
    obj = await vs.create_batch(rt.store, project, vector_store_id, body)
    await rt.dispatch.ingestion_ready()
    return json_response(obj)


@router.get("/{vector_store_id}/file_batches/{batch_id}")
async def get_file_batch(
    vector_store_id: str, batch_id: str, rt: RuntimeDep, project: ProjectDep
) -> Response:
    return _polled(rt, await vs.get_batch(rt.store, project, vector_store_id, batch_id))


@router.post("/{vector_store_id}/file_batches/{batch_id}/cancel")
async def cancel_file_batch(
    vector_store_id: str, batch_id: str, rt: RuntimeDep, project: ProjectDep
) -> Response:
    obj = await vs.cancel_batch(rt.store, project, vector_store_id, batch_id)
    await rt.dispatch.ingestion_ready()
    return json_response(obj)


@router.get("/{vector_store_id}/file_batches/{batch_id}/files")
async def list_file_batch_files(
    vector_store_id: str,
    batch_id: str,
    request: Request,
    rt: RuntimeDep,
    project: ProjectDep,
    query: PageDep,
) -> Response:
    status = request.query_params.get("filter")  # "" is not a status: 400, like order=
    return raw_response(
        await vs.page_files(rt.store, project, vector_store_id, query, status, batch_id=batch_id)
    )
