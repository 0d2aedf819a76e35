"""The baseline: a bare FastAPI app on uvicorn that answers ``GET /v1/threads/{id}/runs`` with
bytes held in memory, the very bytes assistantd returned for the same page.

``python -m bench.bare_app --port P --pages DIR`` serves ``DIR/<limit>.json`` for ``?limit=``
(``20.json`` when absent). Same framework, same uvicorn settings as ``assistantd serve``
(``cli._serve``: loop and http implementation left on ``auto``, so uvloop and httptools when
installed, access log off); no middleware, no auth, no database.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response


def create_app(pages: dict[str, bytes]) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/v1/threads/{thread_id}/runs")
    async def list_runs(thread_id: str, request: Request) -> Response:
        body = pages[request.query_params.get("limit", "20")]
        return Response(body, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pages", type=Path, required=True)
    args = parser.parse_args()
    pages = {p.stem: p.read_bytes() for p in args.pages.glob("*.json")}
    uvicorn.run(
        create_app(pages),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
