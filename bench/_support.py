"""Shared pieces of the benchmarks: subprocesses on loopback, CPU pinning, machine facts and
latency statistics. Nothing here talks to anything but 127.0.0.1 and local files."""

from __future__ import annotations

import math
import os
import platform
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    versions = {}
    for pkg in (
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "sqlalchemy",
        "aiosqlite",
        "asyncpg",
        "orjson",
    ):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": cpus(),
        "cpu_model": model,
        "mem_total_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
    }


def _pinned(cpu: int | None) -> Any:
    if cpu is None:
        return None

    def pin() -> None:  # runs in the child before exec: every thread it starts inherits it
        os.sched_setaffinity(0, {cpu})

    return pin


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    cpu: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Proc:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_pinned(self.cpu),
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {timeout}s:\n{self.log()}")

    def cpu_seconds(self) -> float:
        t = psutil.Process(self.pid).cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def percentile(sorted_values: Sequence[int], p: float) -> int:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return int(sorted_values[min(rank, len(sorted_values)) - 1])


def postgres_cpu_seconds(data_dir: str) -> float:
    """CPU time of the PostgreSQL started for this benchmark: the postmaster whose data
    directory is ``data_dir`` and every process under it (other PostgreSQL servers on the
    machine, e.g. a test suite's, are not counted)."""
    total = 0.0
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] != "postgres" or data_dir not in cmdline:
            continue
        try:
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent not idle, summed over all CPUs."""
    t = psutil.cpu_times()
    fields = ("user", "nice", "system", "irq", "softirq")
    return float(sum(getattr(t, f, 0.0) for f in fields))


def children_cpu_seconds() -> float:
    """CPU time of this process's finished, waited-for children (the load generators)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def self_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def wait_until_quiet(max_cores: float, timeout: float, ours: list[int]) -> float:
    """Wait (up to ``timeout`` s) until processes other than ``ours`` (and this one) use less
    than ``max_cores`` CPUs over a 1 s window; returns the last measured load, in cores."""
    deadline = time.monotonic() + timeout
    procs = [psutil.Process(pid) for pid in ours]

    def our_cpu() -> float:
        total = self_cpu_seconds()
        for p in procs:
            t = p.cpu_times()
            total += t.user + t.system
        return total

    while True:
        busy0, ours0, t0 = busy_cpu_seconds(), our_cpu(), time.perf_counter()
        time.sleep(1.0)
        load = max(0.0, busy_cpu_seconds() - busy0 - (our_cpu() - ours0))
        load /= time.perf_counter() - t0
        if load < max_cores or time.monotonic() > deadline:
            return load


def print_variants(results: dict[str, list[float]]) -> None:
    """A markdown table of each variant's median and range over the rounds."""
    print("| variant | median | range |")
    print("|---|---|---|")
    for name, values in results.items():
        print(
            f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} to {max(values):.1f} |"
        )
