from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import UploadFile

from assistantd.api.deps import ProjectDep, RuntimeDep, page_query
from assistantd.api.responses import json_response, raw_response
from assistantd.errors import InvalidRequestError, PayloadTooLargeError
from assistantd.services import files

router = APIRouter(prefix="/v1/files", tags=["files"])

# Multipart framing around the file is small; anything beyond this is over the file limit.
_MAX_REQUEST = files.MAX_FILE_BYTES + 1024 * 1024
# The spec's CreateFileRequest; `expires_after` comes as one JSON part or as the SDKs' two.
_UPLOAD_FIELDS = frozenset(
    {"file", "purpose", "expires_after", "expires_after[anchor]", "expires_after[seconds]"}
)


@router.post("")
async def create_file(request: Request, rt: RuntimeDep, project: ProjectDep) -> Response:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > _MAX_REQUEST:
        raise PayloadTooLargeError(
            f"File is too large: the limit is {files.MAX_FILE_BYTES} bytes.", param="file"
        )
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequestError(
            "This endpoint expects a multipart/form-data body with 'file' and 'purpose'."
        )
    # Starlette spools file parts beyond 1 MB to a temporary file on disk, so a large
    # upload never sits in memory; the blob store copies from there in a thread.
    async with request.form(max_files=1, max_fields=16) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError("Missing required parameter: 'file'.", param="file")
        for name in form:
            if name not in _UPLOAD_FIELDS:  # as in JSON bodies: closed, unknown is an error
                raise InvalidRequestError(f"Unknown parameter: '{name}'.", param=name)
        purpose = form.get("purpose")
        anchor = form.get("expires_after[anchor]")
        seconds = form.get("expires_after[seconds]")
        whole = form.get("expires_after")
        if isinstance(whole, str) and anchor is None and seconds is None:
            anchor, seconds = files.expiry_from_json(whole)
        obj = await files.create(
            rt.store,
            rt.blobs,
            project,
            files.Upload(
                filename=upload.filename or "upload",
                purpose=files.validate_purpose(purpose if isinstance(purpose, str) else None),
                source=upload.file,
                expires_after_seconds=files.validate_expiry(
                    anchor if isinstance(anchor, str) else None,
                    seconds if isinstance(seconds, str) else None,
                ),
            ),
        )
    return json_response(obj)


@router.get("")
async def list_files(request: Request, rt: RuntimeDep, project: ProjectDep) -> Response:
    query = page_query(request, max_limit=10_000, default_limit=10_000)
    purpose = request.query_params.get("purpose") or None
    return raw_response((await files.page(rt.store, project, query, purpose)).to_json())


@router.get("/{file_id}")
async def retrieve_file(file_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    return json_response(await files.get(rt.store, project, file_id))


@router.delete("/{file_id}")
async def delete_file(file_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    return json_response(await files.delete_file(rt.store, rt.blobs, project, file_id))


@router.get("/{file_id}/content")
async def file_content(file_id: str, rt: RuntimeDep, project: ProjectDep) -> Response:
    obj, chunks = await files.content(rt.store, rt.blobs, project, file_id)
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={"Content-Length": str(obj["bytes"])},
    )
