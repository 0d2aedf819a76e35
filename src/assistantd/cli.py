"""The ``assistantd`` command: serve, migrate, keys. No business logic lives here."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from assistantd.config import Settings
from assistantd.errors import ConfigError
from assistantd.observability import logs
from assistantd.storage import migrate
from assistantd.storage.db import Database
from assistantd.storage.keys import DEFAULT_PROJECT, KeyStore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistantd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API (and run the embedded worker)")
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    serve.add_argument("--no-worker", action="store_true", help="API only; runs wait for a worker")

    worker = sub.add_parser("worker", help="run workers only: execute runs and ingest files")
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="runs executed at once (default ASSISTANTD_RUN_CONCURRENCY)",
    )

    sub.add_parser("migrate", help="apply database migrations and exit")

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; the secret is the last line")
    create.add_argument("--project", default=DEFAULT_PROJECT)
    keys_sub.add_parser("list", help="list keys (never their secrets)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    return parser


async def _with_db(settings: Settings) -> Database:
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url(), sqlite_cache_kib=settings.sqlite_cache_kib)
    await migrate.upgrade(db)
    return db


async def _migrate(settings: Settings) -> None:
    db = await _with_db(settings)
    await db.dispose()


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    db = await _with_db(settings)
    try:
        store = KeyStore(db)
        if args.keys_command == "create":
            info, secret = await store.create(args.project)
            print(f"created key {info.id} for project {info.project}")
            print(secret)
        elif args.keys_command == "list":
            for k in await store.list():
                state = "revoked" if k.revoked_at else "active"
                print(f"{k.id}\t{k.project}\t{k.hint}\t{state}")
        else:
            if not await store.revoke(args.key_id):
                print(f"no active key with id {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
        return 0
    finally:
        await db.dispose()


async def _first_start(settings: Settings) -> None:
    """Migrate, and on a first start with no key anywhere, make one and show it once."""
    db = await _with_db(settings)
    try:
        store = KeyStore(db)
        # Revoked keys count: revoking every key must lock the server, not have the next
        # start mint a fresh one and print it to the log.
        if settings.api_key is None and await store.count_all() == 0:
            _info, secret = await store.create(DEFAULT_PROJECT)
            print(
                "No API key was configured, so one was created for the default project.\n"
                "It is shown only this once; keep it (or set ASSISTANTD_API_KEY):\n"
                f"    {secret}",
                flush=True,
            )
    finally:
        await db.dispose()


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from assistantd.app import create_app

    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    asyncio.run(_first_start(settings))
    from assistantd.providers.router import Router

    print(Router(settings).describe(), flush=True)
    app = create_app(settings, run_worker=not args.no_worker)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        log_config=None,  # observability: uvicorn logs through logs.configure()'s handler
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
    )
    return 0


async def _work(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT, then hand back what is in flight."""
    from assistantd.runtime import Runtime

    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start(run_worker=True)
    if settings.metrics and settings.metrics_port is not None:  # observability hook
        runtime.executor.metrics.serve_http(settings.host, settings.metrics_port)
    mode = "distributed" if runtime.dispatch.queue_mode else "embedded"
    print(
        f"worker {runtime.worker.owner} ready ({mode}, {settings.run_concurrency} runs at once)",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await runtime.close()


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    if args.concurrency is not None:
        if args.concurrency < 1:
            print("--concurrency must be at least 1", file=sys.stderr)
            return 2
        settings.run_concurrency = args.concurrency
    asyncio.run(_migrate(settings))
    asyncio.run(_work(settings))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            field, *inner = (str(part) for part in error["loc"])
            where = f" (at {'.'.join(inner)})" if inner else ""
            print(f"assistantd: ASSISTANTD_{field.upper()}{where}: {error['msg']}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    try:
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "worker":
            return _worker(settings, args)
    except ConfigError as exc:
        print(f"assistantd: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        return 0
    return asyncio.run(_keys(settings, args))


if __name__ == "__main__":
    sys.exit(main())
