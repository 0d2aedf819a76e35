"""Operations endpoints, without a key: ``/readyz`` for load balancers and orchestrators,
``/metrics`` for Prometheus. (``/healthz``, the liveness check, is in ``models.py``.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import text

from assistantd.api.deps import RuntimeDep
from assistantd.api.responses import json_response
from assistantd.runtime import Runtime
from assistantd.storage import migrate

log = logging.getLogger("assistantd.api")

router = APIRouter(tags=["ops"])
metrics_router = APIRouter(tags=["ops"])

CHECK_TIMEOUT = 2.0
"""Seconds one readiness check may take; a database or Redis that hangs fails it."""


@cache
def _revisions() -> tuple[str | None, frozenset[str]]:
    """The newest migration this code ships, and all of them (read once per process)."""
    return migrate.head_revision(), migrate.known_revisions()


async def _database(rt: Runtime) -> str:
    async with rt.db.read() as conn:
        await conn.execute(text("SELECT 1"))
    return "ok"


class Behind(Exception):
    """The database's schema is older than the one this code expects."""


async def _migrations(rt: Runtime) -> str:
    # Read the version table directly: Alembic's MigrationContext logs two INFO lines each
    # time it is set up, which every probe of a load balancer would repeat.
    async with rt.db.read() as conn:
        current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    head, known = _revisions()
    if current == head:
        return "ok"
    if current is None or current in known:
        raise Behind(f"the database is at revision {current}, the code expects {head}")
    # A newer build migrated it during a rolling upgrade. This build stays ready until it is
    # replaced: assistantd's migrations add to the schema or re-index it, never take away
    # what an older build reads or writes.
    return f"ok (the database is at revision {current}, newer than this build's {head})"


async def _redis(rt: Runtime) -> str:
    assert rt.redis is not None
    await rt.redis.ping()
    return "ok"


async def _check(
    name: str, probe: Callable[[Runtime], Awaitable[str]], rt: Runtime
) -> tuple[bool, str]:
    """(passed, what to show). Anyone may call ``/readyz``, so a failure shows only its kind;
    the details (addresses, driver messages) go to the log."""
    try:
        return True, await asyncio.wait_for(probe(rt), CHECK_TIMEOUT)
    except Behind as exc:
        return False, str(exc)
    except TimeoutError:
        log.warning("readiness: %s did not answer within %gs", name, CHECK_TIMEOUT)
        return False, f"no answer within {CHECK_TIMEOUT:g}s"
    except Exception as exc:
        log.warning("readiness: %s failed: %r", name, exc)
        return False, f"failed ({type(exc).__name__})"


@router.get("/readyz")
async def readyz(rt: RuntimeDep) -> Response:
    """200 when this process can serve: the database answers, its schema is at the newest
    migration, and Redis answers (in the distributed mode). 503 names what failed."""
    probes: dict[str, Callable[[Runtime], Awaitable[str]]] = {
        "database": _database,
        "migrations": _migrations,
    }
    if rt.redis is not None:
        probes["redis"] = _redis
    results = await asyncio.gather(*(_check(n, p, rt) for n, p in probes.items()))
    checks = {name: detail for name, (_ok, detail) in zip(probes, results, strict=True)}
    failing = [name for name, (ok, _detail) in zip(probes, results, strict=True) if not ok]
    if not failing:
        return json_response({"status": "ready", "checks": checks})
    return json_response(
        {
            "error": {
                "message": f"Not ready: {', '.join(failing)} failed.",
                "type": "server_error",
                "param": None,
                "code": None,
            },
            "status": "not_ready",
            "checks": checks,
        },
        status_code=503,
    )


@metrics_router.get("/metrics")
async def metrics(request: Request, rt: RuntimeDep) -> Response:
    """This process's metrics for Prometheus (see docs/deployment.md)."""
    body, content_type = await rt.executor.metrics.exposition(request.headers.get("accept"))
    return Response(body, headers={"content-type": content_type})
