"""Soak: a long mixed load against one assistantd process (docs/benchmarks.md, "Soak").

Simulated users, each a loop with the real ``openai`` SDK (async, strict response validation,
no retries), pick weighted actions until the time is up:

- CRUD: assistants (create, retrieve, update, list, delete, then a 404), threads with messages
  (create, add, auto-paginate, update, delete), files (upload, retrieve, content, delete),
  vector stores (upload and poll, search, delete);
- runs: ``create_and_poll``, ``stream`` to the end, a function call answered with
  ``submit_tool_outputs_stream``, a ``file_search`` run;
- cancels: of a polled run, and of a stream the client walks away from mid-answer.

Every answer is checked (statuses, texts, counts); anything unexpected is an error. Meanwhile
the server's RSS, open descriptors and threads are sampled every two seconds. At the end the
load stops, the runs get a minute to settle, and the database is asked for runs that are not
terminal. The verdict is printed and written with the samples to ``bench/results/``; the RSS
curve is plotted to ``docs/soak-rss.png``. Exit status 1 if there was an error, a run left
non-terminal, an ERROR line in the server's log or memory that kept growing (see ``flat``).

The model is ``bench.fake_upstream`` on loopback; the server is ``assistantd serve`` on SQLite
with its in-process worker, the one-machine default.

    python -m bench.soak --minutes 10 --users 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import random
import sqlite3
import statistics
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI

from bench.runs import Stack, pct

RESULTS = Path(__file__).parent / "results"
PLOT = Path(__file__).parent.parent / "docs" / "soak-rss.png"
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
NOT_TERMINAL = ("queued", "in_progress", "requires_action", "cancelling")
REPLY_CHUNKS = 20


class Unexpected(Exception):
    """An answer that was well-formed but wrong."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise Unexpected(what)


@dataclass
class Fixtures:
    """Assistants and a vector store made once, shared by every user."""

    plain: str = ""
    tool: str = ""
    searcher: str = ""
    slow: str = ""
    store: str = ""


@dataclass
class Tally:
    done: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[float] = field(default_factory=list)  # completion times of actions


def _text(message: Any) -> str:
    return "".join(part.text.value for part in message.content if part.type == "text")


def _reply_ok(text: str, chunks: int) -> bool:
    """``bench.fake_upstream`` sends ``chunks`` pieces, each ``<unix time>|``."""
    return text.count("|") == chunks


async def crud_assistant(c: AsyncOpenAI, f: Fixtures) -> None:
    made = await c.beta.assistants.create(
        model="bench-1-0", name="soak", metadata={"k": "v"}, instructions="Be brief."
    )
    got = await c.beta.assistants.retrieve(made.id)
    check(got.metadata == {"k": "v"}, "assistant metadata")
    updated = await c.beta.assistants.update(made.id, name="soak 2", temperature=0.5)
    check(updated.name == "soak 2" and updated.temperature == 0.5, "assistant update")
    page = await c.beta.assistants.list(limit=5)
    check(0 < len(page.data) <= 5, "assistant page size")
    gone = await c.beta.assistants.delete(made.id)
    check(gone.deleted, "assistant deleted")
    try:
        await c.beta.assistants.retrieve(made.id)
    except openai.NotFoundError:
        return
    raise Unexpected("a deleted assistant was found")


async def crud_thread(c: AsyncOpenAI, f: Fixtures) -> None:
    thread = await c.beta.threads.create(
        messages=[{"role": "user", "content": f"m{i}"} for i in range(3)], metadata={"s": "1"}
    )
    extra = await c.beta.threads.messages.create(thread.id, role="user", content="m3")
    seen = [_text(m) async for m in c.beta.threads.messages.list(thread.id, limit=2, order="asc")]
    check(seen == ["m0", "m1", "m2", "m3"], f"messages in order: {seen}")
    changed = await c.beta.threads.messages.update(
        extra.id, thread_id=thread.id, metadata={"x": "y"}
    )
    check(changed.metadata == {"x": "y"}, "message update")
    await c.beta.threads.messages.delete(extra.id, thread_id=thread.id)
    left = await c.beta.threads.messages.list(thread.id)
    check(len(left.data) == 3 and not left.has_more, "message deleted")
    await c.beta.threads.update(thread.id, metadata={"s": "2"})
    check((await c.beta.threads.delete(thread.id)).deleted, "thread deleted")


async def files(c: AsyncOpenAI, f: Fixtures) -> None:
    body = random.randbytes(2048).hex().encode()
    made = await c.files.create(file=("soak.txt", io.BytesIO(body)), purpose="assistants")
    got = await c.files.retrieve(made.id)
    check(got.bytes == len(body) and got.filename == "soak.txt", "file metadata")
    content = await c.files.content(made.id)
    check(content.read() == body, "file content")
    await c.files.list(limit=5)
    check((await c.files.delete(made.id)).deleted, "file deleted")


async def vector_store(c: AsyncOpenAI, f: Fixtures) -> None:
    store = await c.vector_stores.create(name="soak")
    word = random.choice(["apples", "bananas", "cherries", "dates"])
    text = f"# Notes\nThe soak note talks about {word}.\n".encode()
    vsf = await c.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("note.md", io.BytesIO(text))
    )
    check(vsf.status == "completed", f"vector store file {vsf.status}")
    hits = await c.vector_stores.search(vector_store_id=store.id, query=word)
    check(len(hits.data) == 1, "search hit")
    await c.vector_stores.files.delete(vsf.id, vector_store_id=store.id)
    await c.files.delete(vsf.id)
    check((await c.vector_stores.delete(store.id)).deleted, "vector store deleted")


async def _completed_run(c: AsyncOpenAI, assistant_id: str, content: str) -> Any:
    """A new thread with one message, run with ``create_and_run_poll``; it must complete."""
    run = await c.beta.threads.create_and_run_poll(
        assistant_id=assistant_id,
        thread={"messages": [{"role": "user", "content": content}]},
        poll_interval_ms=100,
    )
    check(run.status == "completed", f"polled run {run.status}")
    return run


async def run_poll(c: AsyncOpenAI, f: Fixtures) -> None:
    run = await _completed_run(c, f.plain, "hello")
    steps = await c.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id)
    check(len(steps.data) == 1, "one step")
    msgs = await c.beta.threads.messages.list(run.thread_id, run_id=run.id)
    check(len(msgs.data) == 1 and _reply_ok(_text(msgs.data[0]), REPLY_CHUNKS), "polled reply")
    await c.beta.threads.delete(run.thread_id)


async def stream(c: AsyncOpenAI, f: Fixtures) -> None:
    thread = await c.beta.threads.create(messages=[{"role": "user", "content": "stream"}])
    async with c.beta.threads.runs.stream(thread_id=thread.id, assistant_id=f.plain) as s:
        async for _ in s:
            pass
        run = await s.get_final_run()
        msgs = await s.get_final_messages()
    check(run.status == "completed", f"streamed run {run.status}")
    check(len(msgs) == 1 and _reply_ok(_text(msgs[0]), REPLY_CHUNKS), "streamed reply")


async def tool_stream(c: AsyncOpenAI, f: Fixtures) -> None:
    thread = await c.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])
    async with c.beta.threads.runs.stream(thread_id=thread.id, assistant_id=f.tool) as s:
        await s.until_done()
        run = await s.get_final_run()
    check(run.status == "requires_action" and run.required_action is not None, "requires_action")
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    outputs = [{"tool_call_id": call.id, "output": "sunny"} for call in calls]
    async with c.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=thread.id, tool_outputs=outputs
    ) as s:
        await s.until_done()
        final = await s.get_final_run()
    check(final.status == "completed", f"run after tool outputs {final.status}")
    steps = await c.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    check(len(steps.data) == 2, "tool call and message steps")


async def file_search_run(c: AsyncOpenAI, f: Fixtures) -> None:
    run = await _completed_run(c, f.searcher, "what do the notes say?")
    steps = await c.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc")
    kinds = [s.step_details.type for s in steps.data]
    check(kinds == ["tool_calls", "message_creation"], f"file_search steps {kinds}")


async def _settled(c: AsyncOpenAI, thread_id: str, run_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = await c.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in TERMINAL:
            return run.status
        await asyncio.sleep(0.1)
    raise Unexpected(f"run {run_id} still {run.status} a minute after its cancel")


async def cancel(c: AsyncOpenAI, f: Fixtures) -> None:
    thread = await c.beta.threads.create(messages=[{"role": "user", "content": "long"}])
    run = await c.beta.threads.runs.create(thread.id, assistant_id=f.slow)
    await asyncio.sleep(random.uniform(0, 1.0))
    await c.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    status = await _settled(c, thread.id, run.id)
    check(status == "cancelled", f"cancelled run ended {status}")
    # The thread takes a new run once the cancelled one is over.
    again = await c.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=f.plain, poll_interval_ms=100
    )
    check(again.status == "completed", f"run after a cancel {again.status}")


async def abandon_stream(c: AsyncOpenAI, f: Fixtures) -> None:
    """Read a few deltas, hang up, then cancel: the server must notice and clean up."""
    thread = await c.beta.threads.create(messages=[{"role": "user", "content": "long"}])
    run_id = ""
    deltas = 0
    async with c.beta.threads.runs.stream(thread_id=thread.id, assistant_id=f.slow) as s:
        async for event in s:
            if event.event == "thread.run.created":
                run_id = event.data.id
            if event.event == "thread.message.delta":
                deltas += 1
                if deltas == 3:
                    break
    check(bool(run_id) and deltas == 3, "stream before hanging up")
    await c.beta.threads.runs.cancel(run_id, thread_id=thread.id)
    status = await _settled(c, thread.id, run_id)
    check(status == "cancelled", f"abandoned run ended {status}")


Action = Callable[[AsyncOpenAI, Fixtures], Awaitable[None]]
ACTIONS: dict[str, tuple[Action, int]] = {
    "crud_assistant": (crud_assistant, 12),
    "crud_thread": (crud_thread, 12),
    "files": (files, 8),
    "vector_store": (vector_store, 4),
    "run_poll": (run_poll, 14),
    "stream": (stream, 16),
    "tool_stream": (tool_stream, 10),
    "file_search_run": (file_search_run, 6),
    "cancel": (cancel, 10),
    "abandon_stream": (abandon_stream, 8),
}


async def setup(c: AsyncOpenAI) -> Fixtures:
    store = await c.vector_stores.create(name="soak shared")
    batch = await c.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id,
        files=[
            (f"{name}.md", io.BytesIO(f"# {name}\nThe {name} note is about {name}.".encode()))
            for name in ("alpha", "beta", "gamma")
        ],
    )
    check(batch.file_counts.completed == 3, "shared vector store")
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"queries": {"type": "array"}}},
        },
    }
    made = await asyncio.gather(
        c.beta.assistants.create(model=f"bench-{REPLY_CHUNKS}-5"),
        c.beta.assistants.create(model="benchtool-5-5", tools=[weather]),  # type: ignore[list-item]
        c.beta.assistants.create(
            model="benchtool-5-5",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        ),
        c.beta.assistants.create(model="bench-300-20"),  # six seconds of tokens
    )
    return Fixtures(*(a.id for a in made), store=store.id)


async def user(
    c: AsyncOpenAI, f: Fixtures, tally: Tally, until: float, seed: int, names: list[str]
) -> None:
    rng = random.Random(seed)
    weights = [ACTIONS[n][1] for n in names]
    while time.monotonic() < until:
        name = rng.choices(names, weights)[0]
        started = time.monotonic()
        try:
            await asyncio.wait_for(ACTIONS[name][0](c, f), timeout=120)
        except Exception as exc:
            tally.errors.append(
                {"action": name, "at": round(started, 1), "error": f"{type(exc).__name__}: {exc}"}
            )
            continue
        now = time.monotonic()
        tally.done[name] += 1
        tally.latency[name].append(now - started)
        tally.timeline.append(now)


async def sample(
    stack: Stack, samples: list[dict[str, float]], t0: float, stop: asyncio.Event
) -> None:
    proc = stack.server
    while not stop.is_set():
        with proc.oneshot():
            rss = proc.memory_info().rss + sum(
                child.memory_info().rss for child in proc.children(recursive=True)
            )
            samples.append(
                {
                    "t": round(time.monotonic() - t0, 1),
                    "rss_mb": round(rss / 2**20, 1),
                    "fds": proc.num_fds(),
                    "threads": proc.num_threads(),
                }
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2)


def not_terminal(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT status, COUNT(*) FROM runs WHERE status IN (?, ?, ?, ?) GROUP BY status",
            NOT_TERMINAL,
        ).fetchall()
    return {status: count for status, count in rows}


def flat(samples: list[dict[str, float]], warmup_s: float) -> dict[str, float]:
    """Memory after warm-up: the median of the first and the last fifth of the remaining
    samples, and a least-squares slope. Flat means the last fifth is within 5% (or 10 MB,
    whichever is more) of the first."""
    rest = [s for s in samples if s["t"] >= warmup_s]
    fifth = max(1, len(rest) // 5)
    first = statistics.median(s["rss_mb"] for s in rest[:fifth])
    last = statistics.median(s["rss_mb"] for s in rest[-fifth:])
    slope = statistics.linear_regression([s["t"] for s in rest], [s["rss_mb"] for s in rest]).slope
    return {
        "rss_first_mb": first,
        "rss_last_mb": last,
        "growth_mb": round(last - first, 1),
        "slope_mb_per_min": round(slope * 60, 2),
        "allowed_mb": round(max(10.0, first * 0.05), 1),
        "flat": last - first <= max(10.0, first * 0.05),
    }


def plot(samples: list[dict[str, float]], timeline: list[float], t0: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t"] / 60 for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, height_ratios=[3, 1])
    top.plot(minutes, [s["rss_mb"] for s in samples], color="tab:blue")
    top.set_ylabel("server RSS (MiB)")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    top.set_title(title, fontsize=10)
    per_10s: Counter[int] = Counter(int((t - t0) // 10) for t in timeline)
    xs = sorted(per_10s)
    bottom.bar([x / 6 for x in xs], [per_10s[x] / 10 for x in xs], width=1 / 6, color="tab:gray")
    bottom.set_ylabel("actions/s")
    bottom.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)


async def soak(
    stack: Stack, minutes: float, users: int, warmup_s: float, names: list[str]
) -> dict[str, Any]:
    clients = [
        AsyncOpenAI(
            base_url=f"http://127.0.0.1:{stack.port}/v1",
            api_key=stack.key,
            max_retries=0,
            _strict_response_validation=True,
        )
        for _ in range(users)
    ]
    fixtures = await setup(clients[0])
    tally = Tally()
    samples: list[dict[str, float]] = []
    stop = asyncio.Event()
    t0 = time.monotonic()
    sampler = asyncio.create_task(sample(stack, samples, t0, stop))
    until = t0 + minutes * 60
    await asyncio.gather(
        *(user(c, fixtures, tally, until, i, names) for i, c in enumerate(clients))
    )
    load_s = time.monotonic() - t0
    deadline = time.monotonic() + 60
    left = not_terminal(stack.db_path)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(1)
        left = not_terminal(stack.db_path)
    stop.set()
    await sampler
    for c in clients:
        await c.close()
    log_errors = [
        line
        for line in stack.log_path.read_text(errors="replace").splitlines()
        if " ERROR " in line or line.startswith("Traceback")
    ]
    memory = flat(samples, warmup_s)
    total = sum(tally.done.values())
    return {
        "minutes": minutes,
        "users": users,
        "load_seconds": round(load_s, 1),
        "actions": dict(tally.done),
        "actions_total": total,
        "actions_per_s": round(total / load_s, 1),
        "latency_p50_p99_s": {
            name: [round(pct(v, 50), 3), round(pct(v, 99), 3)] for name, v in tally.latency.items()
        },
        "errors": len(tally.errors),
        "error_samples": tally.errors[:20],
        "server_log_errors": log_errors[:20],
        "runs_not_terminal": left,
        "memory": memory,
        "fds_first_last": [samples[0]["fds"], samples[-1]["fds"]],
        "threads_first_last": [samples[0]["threads"], samples[-1]["threads"]],
        "samples": samples,
        "_timeline": tally.timeline,
        "_t0": t0,
    }


def main() -> None:
    # The SDK marks every Assistants call deprecated; once per call site would bury the report.
    warnings.filterwarnings("ignore", ".*deprecated", DeprecationWarning)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=120, help="seconds left out of 'flat'")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--only",
        default=",".join(ACTIONS),
        help=f"a comma-separated subset of {', '.join(ACTIONS)}",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a server setting (ASSISTANTD_NAME), e.g. --set sqlite_cache_kib=2000; repeatable",
    )
    args = parser.parse_args()
    names = args.only.split(",")
    if unknown := set(names) - set(ACTIONS):
        parser.error(f"unknown actions: {', '.join(sorted(unknown))}")
    if bad := [item for item in args.set if "=" not in item]:
        parser.error(f"--set takes NAME=VALUE, not {bad[0]!r}")
    # A limiter far above the load, so its bookkeeping is soaked too.
    settings = {"rate_limit": "100000/minute", "max_streams_per_key": "200"}
    settings.update({name: value for name, value in (item.split("=", 1) for item in args.set)})
    with Stack(64, **settings) as stack:
        result = asyncio.run(soak(stack, args.minutes, args.users, args.warmup, names))
    timeline, t0 = result.pop("_timeline"), result.pop("_t0")
    result["settings"] = settings
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"soak-{stamp}.json").write_text(json.dumps(result, indent=1))
    memory = result["memory"]
    ok = (
        result["errors"] == 0
        and not result["runs_not_terminal"]
        and not result["server_log_errors"]
        and memory["flat"]
    )
    if not args.no_plot:
        plot(
            result["samples"],
            timeline,
            t0,
            f"soak {stamp}: {args.minutes:g} min, {args.users} users, "
            f"{result['actions_total']} actions, {result['errors']} errors",
        )
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=1))
    print(f"results: bench/results/soak-{stamp}.json" + ("" if args.no_plot else f", plot: {PLOT}"))
    print("PASS" if ok else "FAIL")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
