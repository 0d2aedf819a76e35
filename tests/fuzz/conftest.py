from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.fuzz.world import World
from tests.servers import Server, running_server
from tests.upstream import ScriptedUpstream

# The fuzzer's servers: SQLite in CI; `make fuzz` adds PostgreSQL, in a process of its own:
# schemathesis keeps ids it read in responses and sends them again later, and in one process
# the second server would get the first one's ids (valid cases, but 404s instead of reaching
# the objects).
FUZZ_BACKENDS = [b for b in os.environ.get("ASSISTANTD_FUZZ_BACKENDS", "sqlite").split(",") if b]


@pytest.fixture(scope="session", params=FUZZ_BACKENDS)
def fuzz_server(request: pytest.FixtureRequest, upstream: ScriptedUpstream) -> Iterator[Server]:
    # Keyword-only retrieval: ingestion stays cheap however many files the fuzzer uploads.
    with running_server(
        request.param,
        upstream_base_url=upstream.base_url,
        upstream_max_attempts="1",
        embeddings="none",
    ) as srv:
        yield srv


@pytest.fixture(scope="session")
def fuzz_world(fuzz_server: Server, upstream: ScriptedUpstream) -> Iterator[World]:
    with httpx.Client(
        base_url=fuzz_server.base_url,
        headers={"Authorization": f"Bearer {fuzz_server.keys['alpha']}"},
        timeout=30,
    ) as http:
        url = fuzz_server.env["ASSISTANTD_DATABASE_URL"]
        backend = "sqlite" if url.startswith("sqlite") else "postgres"
        world = World(http, upstream, backend)
        WORLDS.append(world)
        yield world
        world.session.close()


WORLDS: list[World] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Cases sent and the statuses they got, per operation (the figures docs quote)."""
    for world in WORLDS:
        total = sum(sum(c.values()) for c in world.statuses.values())
        terminalreporter.section(f"spec fuzzing on {world.backend}: {total} cases")
        probes = 0
        for label, counts in sorted(world.statuses.items(), key=lambda kv: kv[0].split()[::-1]):
            if set(counts) == {405}:  # the coverage phase's other methods on each path
                probes += counts[405]
                continue
            shown = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
            terminalreporter.write_line(f"{label:<68} {shown}")
        if probes:
            terminalreporter.write_line(f"{'methods a path does not have':<68} 405: {probes}")
