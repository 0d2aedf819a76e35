from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.servers import BACKENDS, Server, running_server


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with running_server(request.param) as srv:
        yield srv


def make_client(server: Server, key: str, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base_url + "/v1",
        api_key=key,
        _strict_response_validation=True,
        max_retries=0,
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
