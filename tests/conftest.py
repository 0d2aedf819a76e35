from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.servers import SERVER_BACKENDS, Server, running_server
from tests.upstream import Hang, ScriptedUpstream


@pytest.fixture(scope="session")
def upstream() -> Iterator[ScriptedUpstream]:
    """The scripted model every test server talks to (over real HTTP)."""
    scripted = ScriptedUpstream().start()
    yield scripted
    scripted.stop()


@pytest.fixture(scope="session", params=SERVER_BACKENDS)
def server(request: pytest.FixtureRequest, upstream: ScriptedUpstream) -> Iterator[Server]:
    settings = {"upstream_base_url": upstream.base_url, "upstream_max_attempts": "2"}
    if request.param == "cluster":
        from tests.cluster import running_cluster

        with running_cluster(**settings) as cluster:
            yield cluster
        return
    with running_server(request.param, **settings) as srv:
        yield srv


def hanging_assistant(client: openai.OpenAI, upstream: ScriptedUpstream, **kwargs: object) -> str:
    """An assistant whose next run stays in_progress (the model streams, then stalls)."""
    key = f"hang-{uuid.uuid4().hex}"
    instructions = upstream.script(key, Hang(["thinking"], seconds=60))
    return client.beta.assistants.create(model="m", instructions=instructions, **kwargs).id  # type: ignore[arg-type]


def make_client(server: Server, key: str, **kwargs: object) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(
        base_url=server.base_url + "/v1",
        api_key=key,
        _strict_response_validation=True,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[openai.OpenAI]:
    with make_client(server, server.keys["alpha"]) as c:
        yield c


@pytest.fixture(scope="session")
def other_client(server: Server) -> Iterator[openai.OpenAI]:
    with make_client(server, server.keys["beta"]) as c:
        yield c


@pytest.fixture(scope="session")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.keys['alpha']}", "OpenAI-Beta": "assistants=v2"},
        timeout=30,
    ) as c:
        yield c
