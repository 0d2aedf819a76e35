"""The distributed mode for real: PostgreSQL, Redis, N ``serve --no-worker`` API processes
behind nginx (round robin, so consecutive requests land on different processes) and M
``assistantd worker`` processes, all on loopback, started and stopped by the tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.servers import Server, free_port, postgres_url

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"

_NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    client_max_body_size 600m;
    upstream assistantd {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://assistantd;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 3600s;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    url: str | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye, no hand-back."""
        if self.process is not None and self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM: the graceful path (hand back runs in flight)."""
        if self.process is not None and self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster(Server):
    apis: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    redis: Proc | None = None
    nginx: Proc | None = None
    redis_url: str = ""

    def log(self) -> str:
        parts = [f"== {p.name}\n{p.log()}" for p in [*self.apis, *self.workers]]
        return "\n".join(parts)

    def add_worker(self, *extra: str) -> Proc:
        n = len(self.workers)
        proc = Proc(
            f"worker{n}",
            [sys.executable, "-m", "assistantd", "worker", *extra],
            self.env,
            self.log_path.parent / f"worker{n}.log",  # type: ignore[union-attr]
        )
        proc.start()
        self.workers.append(proc)
        _wait_log(proc, "ready")
        return proc

    def restart(self, proc: Proc, *, kill: bool = False) -> None:
        proc.kill() if kill else proc.stop()
        seen = proc.log().count("ready")
        proc.start()
        if proc.url is not None:
            _wait_http(proc)
        else:
            _wait_log(proc, "ready", skip=seen)


def _wait_http(proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log()}")
        try:
            if httpx.get(f"{proc.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready in {timeout}s:\n{proc.log()}")


def _wait_log(proc: Proc, word: str, timeout: float = 60, skip: int = 0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log()}")
        if proc.log().count(word) > skip:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready in {timeout}s:\n{proc.log()}")


def _wait_port(port: int, proc: Proc, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not listen on {port}:\n{proc.log()}")


@contextmanager
def running_cluster(*, apis: int = 2, workers: int = 2, **settings: str) -> Iterator[Cluster]:
    tmp = Path(tempfile.mkdtemp(prefix="assistantd-cluster-"))
    redis_port, proxy_port = free_port(), free_port()
    redis = Proc(
        "redis",
        [
            REDIS,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
        ],
        dict(os.environ),
        tmp / "redis.log",
    )
    redis.start()
    _wait_port(redis_port, redis)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTD_")}
    env["ASSISTANTD_DATA_DIR"] = str(tmp / "data")
    env["ASSISTANTD_DATABASE_URL"] = postgres_url()
    env["ASSISTANTD_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    env["ASSISTANTD_LOG_LEVEL"] = "warning"
    for key, value in settings.items():
        env[f"ASSISTANTD_{key.upper()}"] = value
    cluster = Cluster(
        base_url=f"http://127.0.0.1:{proxy_port}",
        env=env,
        log_path=tmp / "cluster.log",
        redis=redis,
        redis_url=env["ASSISTANTD_REDIS_URL"],
    )
    cluster.keys = {p: cluster.new_key(p) for p in ("alpha", "beta")}
    try:
        for n in range(apis):
            port = free_port()
            proc = Proc(
                f"api{n}",
                [sys.executable, "-m", "assistantd", "serve", "--no-worker", "--port", str(port)],
                env,
                tmp / f"api{n}.log",
                url=f"http://127.0.0.1:{port}",
            )
            proc.start()
            cluster.apis.append(proc)
        for proc in cluster.apis:
            _wait_http(proc)
        servers = "\n".join(
            f"        server {p.url.removeprefix('http://')} max_fails=0;"  # type: ignore[union-attr]
            for p in cluster.apis
        )
        conf = tmp / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(tmp=tmp, servers=servers, port=proxy_port))
        cluster.nginx = Proc(
            "nginx",
            [NGINX, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"],
            dict(os.environ),
            tmp / "nginx.log",
        )
        cluster.nginx.start()
        _wait_port(proxy_port, cluster.nginx)
        for _ in range(workers):
            cluster.add_worker()
        yield cluster
    finally:
        for proc in [*cluster.workers, *cluster.apis]:
            proc.stop(timeout=15)
        for proc in (cluster.nginx, redis):
            if proc is not None:
                proc.stop(timeout=5)
