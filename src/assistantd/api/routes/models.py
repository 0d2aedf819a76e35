from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import text

from assistantd.api.deps import ProjectDep, RuntimeDep
from assistantd.api.responses import json_response

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_models(rt: RuntimeDep, _project: ProjectDep) -> Response:
    return json_response({"object": "list", "data": rt.models()})


@router.get("/healthz")
async def healthz(rt: RuntimeDep) -> Response:
    """200 once the server can reach its database; 503 otherwise (for load balancers)."""
    try:
        async with rt.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return json_response(
            {
                "error": {
                    "message": "The database is unreachable.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
            status_code=503,
        )
    return json_response({"status": "ok"})
