from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from assistantd.api.deps import ProjectDep, RuntimeDep
from assistantd.api.responses import json_response

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_models(rt: RuntimeDep, _project: ProjectDep) -> Response:
    return json_response({"object": "list", "data": rt.models()})


@router.get("/healthz")
async def healthz(rt: RuntimeDep) -> Response:
    return json_response({"status": "ok"})
