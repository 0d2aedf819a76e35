"""The code_interpreter sandbox (bubblewrap backend) on this machine.

    python -m bench.sandbox [--runs N] [--sessions K]

Prints, and writes as JSON to ``bench/results/sandbox.json``:

- cold latency of ``print(1)``: a new session each time (bwrap, namespaces, the runner's start,
  the execution), p50/p99 over N sessions;
- warm latency of ``print(1)`` in a live session, p50/p99 over 10 x N executions;
- the first ``import numpy, pandas, matplotlib.pyplot`` of a session;
- memory of an idle session, summed over its processes (bwrap, the sandbox's pid 1, the
  runner) from /proc: RSS, and PSS, which splits pages shared between sessions (the Python
  binary, libraries) among them; fresh, and after the scientific imports;
- sessions per node at the default limits: RAM over the memory limit of one interpreter
  (every session at its limit), and RAM over the measured idle PSS (sessions kept warm).

Needs scripts/sandbox-env to have run (bubblewrap and .venv-sandbox).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import psutil

from assistantd.sandbox import BwrapSandbox, Limits

REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": p99 * 1000, "n": len(ordered)}


def session_memory(pid: int) -> dict[str, float]:
    """RSS and PSS in MiB of a session: its bwrap process and everything below it."""
    root = psutil.Process(pid)
    rss = pss = 0
    for process in [root, *root.children(recursive=True)]:
        rss += process.memory_info().rss
        with open(f"/proc/{process.pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
    return {"rss_mib": rss / MiB, "pss_mib": pss / MiB}


async def timed(box: BwrapSandbox, session: str, code: str) -> float:
    start = time.perf_counter()
    result = await box.execute(session, code)
    elapsed = time.perf_counter() - start
    if result.error is not None:
        raise RuntimeError(result.error)
    return elapsed


async def measure(runs: int, sessions: int) -> dict[str, Any]:
    limits = Limits()
    box = BwrapSandbox(REPO / ".venv-sandbox", limits=limits)
    reason = box.available()
    if reason is not None:
        raise SystemExit(f"sandbox unavailable: {reason}")
    try:
        cold = []
        for i in range(runs):
            cold.append(await timed(box, f"cold-{i}", "print(1)"))
            await box.close_session(f"cold-{i}")
        await timed(box, "warm", "print(1)")
        warm = [await timed(box, "warm", "print(1)") for _ in range(10 * runs)]
        imports = []
        for i in range(max(runs // 5, 3)):
            code = "import numpy, pandas, matplotlib.pyplot"
            imports.append(await timed(box, f"import-{i}", code))
            await box.close_session(f"import-{i}")

        names = [f"idle-{i}" for i in range(sessions)]
        for name in names:
            await timed(box, name, "print(1)")
        await asyncio.sleep(1)
        pids = box.session_pids()
        fresh = [session_memory(pids[name]) for name in names]
        for name in names:
            await timed(box, name, "import numpy, pandas, matplotlib.pyplot")
        await asyncio.sleep(1)
        loaded = [session_memory(pids[name]) for name in names]
    finally:
        await box.close()

    ram = psutil.virtual_memory().total
    idle_pss = statistics.median(m["pss_mib"] for m in fresh)
    loaded_pss = statistics.median(m["pss_mib"] for m in loaded)
    return {
        "cold_print_1": percentiles(cold),
        "warm_print_1": percentiles(warm),
        "first_scientific_import": percentiles(imports),
        "idle_session": {k: statistics.median(m[k] for m in fresh) for k in fresh[0]},
        "idle_session_after_imports": {
            k: statistics.median(m[k] for m in loaded) for k in loaded[0]
        },
        "sessions_per_node": {
            "ram_mib": ram / MiB,
            "memory_limit_mib": limits.memory_bytes / MiB,
            "all_at_memory_limit": int(ram // limits.memory_bytes),
            "idle_fresh": int(ram / MiB // idle_pss),
            "idle_after_imports": int(ram / MiB // loaded_pss),
        },
        "limits": {k: getattr(limits, k) for k in limits.__dataclass_fields__},
        "cpus": psutil.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="cold sessions; warm runs are 10x")
    parser.add_argument("--sessions", type=int, default=10, help="idle sessions measured")
    args = parser.parse_args()
    results = asyncio.run(measure(args.runs, args.sessions))
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sandbox.json").write_text(json.dumps(results, indent=2))
    print("| measure | p50 | p99 | n |\n|---|---|---|---|")
    for key in ("cold_print_1", "warm_print_1", "first_scientific_import"):
        row = results[key]
        print(f"| {key} | {row['p50_ms']:.1f} ms | {row['p99_ms']:.1f} ms | {row['n']:.0f} |")
    print("\n| idle session | RSS | PSS |\n|---|---|---|")
    for key in ("idle_session", "idle_session_after_imports"):
        mem = results[key]
        print(f"| {key} | {mem['rss_mib']:.1f} MiB | {mem['pss_mib']:.1f} MiB |")
    print("\nsessions per node:", json.dumps(results["sessions_per_node"]))


if __name__ == "__main__":
    main()
