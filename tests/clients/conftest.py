"""One real server per backend for the client programs, talking to the instructed fake model.

Each program runs as a subprocess with nothing changed but its environment:
``OPENAI_BASE_URL`` (this server) and ``OPENAI_API_KEY`` (a key of a project of its own, so
what it lists is exactly what it created).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.clients.model import InstructedModel
from tests.servers import BACKENDS, Server, running_server
from tests.upstream import Turn

PROGRAMS = Path(__file__).resolve().parent / "programs"
NODE_DIR = Path(__file__).resolve().parent.parent / "node"
LINE = re.compile(r"^([a-z][a-z0-9 _-]*): (.*)$")


@dataclass
class Outcome:
    """What a program printed, with its ``label: value`` lines gathered by label."""

    stdout: str
    stderr: str
    returncode: int
    api_key: str
    values: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def one(self, label: str) -> str:
        found = self.values.get(label, [])
        assert len(found) == 1, f"expected one {label!r} line, got {found}\n{self.stdout}"
        return found[0]

    def all(self, label: str) -> list[str]:
        return list(self.values.get(label, []))


@dataclass
class Clients:
    """Runs programs against the server and inspects the result with the Python SDK."""

    server: Server
    model: InstructedModel
    _projects: int = 0
    _sdks: dict[str, openai.OpenAI] = field(default_factory=dict)

    def project_key(self) -> str:
        self._projects += 1
        return self.server.new_key(f"clients-{os.getpid()}-{self._projects}")

    def script(self, instructions: str, *turns: Turn) -> list[dict[str, Any]]:
        """Queue the model's next answers to runs whose instructions start with this line.

        Returns the list that collects what the model receives for them from now on.
        """
        self.model.scripts[instructions].clear()
        self.model.by_key[instructions] = []
        self.model.script(instructions, *turns)
        return self.model.by_key[instructions]

    def sdk(self, api_key: str) -> openai.OpenAI:
        """A strict SDK client of the project that ``api_key`` belongs to, for checking."""
        if api_key not in self._sdks:
            self._sdks[api_key] = openai.OpenAI(
                base_url=self.server.base_url + "/v1",
                api_key=api_key,
                _strict_response_validation=True,
                max_retries=0,
            )
        return self._sdks[api_key]

    def close(self) -> None:
        for sdk in self._sdks.values():
            sdk.close()

    def run(
        self, argv: Sequence[str], *, api_key: str | None = None, cwd: Path | None = None
    ) -> Outcome:
        """Run ``argv`` with only OPENAI_BASE_URL and OPENAI_API_KEY set for it; it must exit 0."""
        key = api_key or self.server.keys["alpha"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ASSISTANTD_"))}
        env["OPENAI_BASE_URL"] = self.server.base_url + "/v1"
        env["OPENAI_API_KEY"] = key
        proc = subprocess.run(
            list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=180
        )
        outcome = Outcome(proc.stdout, proc.stderr, proc.returncode, key)
        for line in proc.stdout.splitlines():
            match = LINE.match(line)
            if match:
                outcome.values[match.group(1)].append(match.group(2))
        assert proc.returncode == 0, (
            f"{' '.join(argv)} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
            f"stderr:\n{proc.stderr}\nserver log:\n{self.server.log()[-4000:]}"
        )
        return outcome


@pytest.fixture(scope="package")
def model() -> Iterator[InstructedModel]:
    fake = InstructedModel().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="package", params=BACKENDS)
def clients(request: pytest.FixtureRequest, model: InstructedModel) -> Iterator[Clients]:
    with running_server(
        request.param, upstream_base_url=model.base_url, upstream_max_attempts="2"
    ) as server:
        clients = Clients(server, model)
        yield clients
        clients.close()
