"""The command line contract, run as a user runs it: ``python -m assistantd`` subprocesses on a
fresh SQLite database each.

* ``keys create [--project NAME]`` prints the new key as the last line of stdout;
* ``keys list`` shows every key and its state, never a secret;
* ``keys revoke KEY_ID`` revokes (and fails, exit 1, on an unknown or revoked key);
* ``serve`` with no key anywhere makes one for the default project and prints it once, on the
  first start only, and that key works against the API; revoking it does not make the next
  start mint another;
* with ``ASSISTANTD_API_KEY`` set, that key works for the default project and none is printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import Server, _wait_ready, free_port

SECRET = re.compile(r"sk-ad-[A-Za-z0-9_-]{20,}")


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTD_")}
    out["ASSISTANTD_DATA_DIR"] = str(tmp_path / "data")
    out["ASSISTANTD_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'assistantd.db'}"
    out["ASSISTANTD_LOG_LEVEL"] = "warning"
    return out


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "assistantd", *args],
        env=env,
        # Not the repository: Settings also reads a .env file from the working directory.
        cwd=Path(env["ASSISTANTD_DATA_DIR"]).parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def create_key(env: dict[str, str], *project: str) -> tuple[str, str]:
    """(key id, secret) from ``keys create``; the secret must be the last line."""
    lines = cli(env, "keys", "create", *project).stdout.strip().splitlines()
    name = project[-1] if project else "default"
    match = re.fullmatch(rf"created key (key_\S+) for project {re.escape(name)}", lines[0])
    assert match, lines
    assert SECRET.fullmatch(lines[-1]), lines
    return match.group(1), lines[-1]


@dataclass
class Served:
    base_url: str
    stdout: Path

    def printed(self) -> str:
        return self.stdout.read_text()

    def status(self, key: str | None, path: str = "/v1/assistants") -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as c:
            return c.get(path).status_code


@contextmanager
def serving(env: dict[str, str], name: str) -> Iterator[Served]:
    tmp = Path(env["ASSISTANTD_DATA_DIR"]).parent
    port = free_port()
    stdout, stderr = tmp / f"{name}.out", tmp / f"{name}.err"
    server = Server(base_url=f"http://127.0.0.1:{port}", env=env, log_path=stderr)
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        server.process = subprocess.Popen(
            [sys.executable, "-m", "assistantd", "serve", "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=out,
            stderr=err,
        )
    try:
        _wait_ready(server)
        yield Served(server.base_url, stdout)
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def key_rows(env: dict[str, str]) -> list[list[str]]:
    return [line.split("\t") for line in cli(env, "keys", "list").stdout.splitlines()]


# --- keys ----------------------------------------------------------------------------------------


def test_keys_create_list_revoke(env: dict[str, str]) -> None:
    first_id, first = create_key(env, "--project", "team-a")
    second_id, second = create_key(env)  # the default project
    assert first != second and first_id != second_id

    listed = cli(env, "keys", "list").stdout
    assert first not in listed and second not in listed
    for secret in (first, second):
        # Not even most of it: at most the short hint shows.
        assert not any(secret[i : i + 16] in listed for i in range(len(secret) - 15))
    rows = [line.split("\t") for line in listed.splitlines()]
    assert sorted((r[0], r[1], r[3]) for r in rows) == sorted(
        [(first_id, "team-a", "active"), (second_id, "default", "active")]
    )

    assert cli(env, "keys", "revoke", first_id).stdout.strip() == f"revoked {first_id}"
    assert {r[0]: r[3] for r in key_rows(env)} == {first_id: "revoked", second_id: "active"}

    again = cli(env, "keys", "revoke", first_id, ok=False)
    assert again.returncode == 1 and f"no active key with id {first_id}" in again.stderr
    unknown = cli(env, "keys", "revoke", "key_doesnotexist", ok=False)
    assert unknown.returncode == 1 and "no active key with id key_doesnotexist" in unknown.stderr


def test_created_keys_work_and_revoked_keys_do_not(env: dict[str, str]) -> None:
    a_id, a = create_key(env, "--project", "a")
    _b_id, b = create_key(env, "--project", "b")
    with serving(env, "serve") as served:
        # A key existed before the first start: none is made or printed.
        assert not SECRET.search(served.printed())
        assert served.status(a) == 200 and served.status(b) == 200
        assert served.status("sk-ad-" + "x" * 40) == 401
        assert served.status(None) == 401
        # The server reads keys from the database on each request: revoking needs no restart.
        cli(env, "keys", "revoke", a_id)
        assert served.status(a) == 401 and served.status(b) == 200
        _later_id, later = create_key(env, "--project", "a")
        assert served.status(later) == 200


# --- the first start -----------------------------------------------------------------------------


def printed_keys(served: Served) -> list[str]:
    return SECRET.findall(served.printed())


def test_first_start_prints_a_key_once_and_never_again(env: dict[str, str]) -> None:
    with serving(env, "first") as served:
        keys = printed_keys(served)
        assert len(keys) == 1, served.printed()
        key = keys[0]
        assert "No API key was configured" in served.printed()
        assert served.status(key) == 200
        with httpx.Client(
            base_url=served.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as c:
            created = c.post("/v1/assistants", json={"model": "gpt-4o"})
            assert created.status_code == 200, created.text
    listed = cli(env, "keys", "list").stdout
    assert key not in listed
    assert [line.split("\t")[1::2] for line in listed.splitlines()] == [["default", "active"]]

    with serving(env, "second") as served:
        assert printed_keys(served) == [], served.printed()
        assert "No API key was configured" not in served.printed()
        assert served.status(key) == 200
        # The same project, so the same objects.
        with httpx.Client(
            base_url=served.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as c:
            assistants = c.get("/v1/assistants").json()["data"]
            assert [a["id"] for a in assistants] == [created.json()["id"]]
    ((key_id, _project, _hint, _state),) = key_rows(env)

    # Revoking every key locks the server; the next start must not mint and print a new one.
    cli(env, "keys", "revoke", key_id)
    with serving(env, "third") as served:
        assert printed_keys(served) == [], served.printed()
        assert served.status(key) == 401
    assert [r[3] for r in key_rows(env)] == ["revoked"]


def test_configured_api_key(env: dict[str, str]) -> None:
    configured = "sk-my-own-configured-key-0123456789"
    env = {**env, "ASSISTANTD_API_KEY": configured}
    with serving(env, "configured") as served:
        assert printed_keys(served) == [] and configured not in served.printed()
        assert "No API key was configured" not in served.printed()
        assert served.status(configured) == 200
        assert served.status(configured + "x") == 401
        with httpx.Client(
            base_url=served.base_url,
            headers={"Authorization": f"Bearer {configured}"},
            timeout=30,
        ) as c:
            assistant = c.post("/v1/assistants", json={"model": "gpt-4o"}).json()["id"]
        # It is the default project's key: another default-project key sees the same objects,
        # a key of another project does not.
        _id, default_key = create_key(env)
        _id, other_key = create_key(env, "--project", "other")
        assert served.status(default_key, f"/v1/assistants/{assistant}") == 200
        assert served.status(other_key, f"/v1/assistants/{assistant}") == 404
    # No key row was made for it.
    assert sorted(r[1] for r in key_rows(env)) == ["default", "other"]


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["migrate"], ["keys", "list"]])
def test_bad_settings_are_named_one_line_each_not_a_traceback(
    env: dict[str, str], command: list[str]
) -> None:
    env = {
        **env,
        "ASSISTANTD_SQLITE_CACHE_KIB": "8",
        "ASSISTANTD_RATE_LIMIT": "lots",
        "ASSISTANTD_MODEL_ROUTES": '{"gpt-4o": 3}',
    }
    done = cli(env, *command, ok=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = sorted(done.stderr.strip().splitlines())
    assert len(lines) == 3, lines
    assert lines[0].startswith("assistantd: ASSISTANTD_MODEL_ROUTES (at gpt-4o): "), lines
    assert lines[1].startswith("assistantd: ASSISTANTD_RATE_LIMIT: "), lines
    assert "'lots' is not a rate limit" in lines[1]
    assert lines[2].startswith("assistantd: ASSISTANTD_SQLITE_CACHE_KIB: "), lines
    assert "greater than or equal to 16" in lines[2]
    # Nothing was started or created.
    assert not Path(env["ASSISTANTD_DATABASE_URL"].split("///", 1)[1]).exists()
