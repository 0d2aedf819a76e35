"""Real objects for the fuzzer to aim at.

Generated path parameters are random strings, so on their own they only ever reach the 404
branch of each route. ``World`` keeps one real object of each kind (created over HTTP on the
server under test) and ``World.aim`` swaps most generated ids for real ones before a case is
sent, leaving the rest random so the 404 paths are fuzzed too. Which ids are swapped is a
function of the generated values themselves (a CRC of each), so a case is the same request
every time Hypothesis replays or shrinks it, in every phase (examples, coverage, fuzzing).

Cases change the world: a 2xx ``DELETE`` removes its object, a cancel or a tool-output
submission moves the paused run on, a new run locks its thread for a moment. ``World.after``
drops what a case used up; the next case that needs it gets a fresh one.
"""

from __future__ import annotations

import json
import re
import time
import uuid
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests

from tests.upstream import ScriptedUpstream, ToolCalls

TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
FUNCTION_TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def _pick(value: object, *, out_of: int = 4) -> bool:
    """True for about (out_of - 1) / out_of of values: use a real id instead of ``value``."""
    return zlib.crc32(repr(value).encode("utf-8", "surrogatepass")) % out_of != 0


def kind_of(method: str, path: str) -> str | None:
    """Which world object the path parameters of an operation name (spec paths, no /v1)."""
    if "{" not in path and method != "POST":
        return None
    if path.startswith("/assistants/"):
        return "assistant"
    if path.startswith("/files/"):
        return "file"
    if path.endswith(("/cancel", "/submit_tool_outputs")) and path.startswith("/threads/"):
        return "paused"
    if path.startswith("/threads/{"):
        return "conversation"
    if path.startswith("/vector_stores/{"):
        return "store"
    return None


@dataclass
class World:
    http: httpx.Client
    upstream: ScriptedUpstream
    backend: str
    objects: dict[str, dict[str, str]] = field(default_factory=dict)
    pending_runs: list[tuple[str, str]] = field(default_factory=list)
    created: int = 0
    # Operation label -> how many answers of each status the fuzzer got.
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    # schemathesis sends cases with requests; one session keeps its connection alive.
    session: requests.Session = field(default_factory=requests.Session)

    # --- building objects ----------------------------------------------------------------------

    def _post(self, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.post(path, **kwargs)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        self.created += 1
        body: dict[str, Any] = response.json()
        return body

    def _wait_run(self, thread_id: str, run_id: str, statuses: set[str]) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            run: dict[str, Any] = self.http.get(f"/v1/threads/{thread_id}/runs/{run_id}").json()
            if run.get("status") in statuses:
                return run
            assert time.monotonic() < deadline, f"run {run_id} stuck: {run}"
            time.sleep(0.02)

    def _upload(self, text: str) -> str:
        files = {"file": ("notes.txt", text.encode(), "text/plain")}
        return str(self._post("/v1/files", data={"purpose": "assistants"}, files=files)["id"])

    def _build(self, kind: str) -> dict[str, str]:
        if kind == "assistant":
            return {"assistant_id": self._post("/v1/assistants", json={"model": "m"})["id"]}
        if kind == "file":
            return {"file_id": self._upload("a file the fuzzer may read or delete")}
        if kind == "conversation":
            assistant = self._post("/v1/assistants", json={"model": "m"})["id"]
            thread = self._post(
                "/v1/threads", json={"messages": [{"role": "user", "content": "hello"}]}
            )["id"]
            run = self._post(f"/v1/threads/{thread}/runs", json={"assistant_id": assistant})
            self._wait_run(thread, run["id"], TERMINAL)
            steps = self.http.get(f"/v1/threads/{thread}/runs/{run['id']}/steps").json()
            messages = self.http.get(f"/v1/threads/{thread}/messages").json()
            return {
                "thread_id": thread,
                "run_id": run["id"],
                "step_id": steps["data"][0]["id"],
                "message_id": messages["data"][-1]["id"],
            }
        if kind == "paused":
            key = f"fuzz-{uuid.uuid4().hex}"
            instructions = self.upstream.script(key, ToolCalls([("lookup", "{}")]))
            assistant = self._post(
                "/v1/assistants",
                json={"model": "m", "instructions": instructions, "tools": [FUNCTION_TOOL]},
            )["id"]
            run = self._post("/v1/threads/runs", json={"assistant_id": assistant})
            run = self._wait_run(run["thread_id"], run["id"], TERMINAL | {"requires_action"})
            assert run["status"] == "requires_action", run
            calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
            return {
                "thread_id": run["thread_id"],
                "run_id": run["id"],
                "tool_call_id": calls[0]["id"],
            }
        if kind == "store":
            attached = self._upload("alpha beta gamma: the vector store's own file")
            batched = self._upload("delta epsilon: a file that came in a batch")
            store = self._post("/v1/vector_stores", json={"name": "fuzz", "file_ids": [attached]})
            batch = self._post(
                f"/v1/vector_stores/{store['id']}/file_batches", json={"file_ids": [batched]}
            )
            return {"vector_store_id": store["id"], "file_id": attached, "batch_id": batch["id"]}
        raise AssertionError(kind)

    def get(self, kind: str) -> dict[str, str]:
        if kind == "conversation":
            self._settle_runs()
        if kind not in self.objects:
            self.objects[kind] = self._build(kind)
        return self.objects[kind]

    def _settle_runs(self) -> None:
        """Wait for runs the fuzzer started on the conversation's thread, which lock it."""
        while self.pending_runs:
            thread_id, run_id = self.pending_runs.pop()
            try:
                self._wait_run(thread_id, run_id, TERMINAL | {"requires_action"})
            except AssertionError:
                self.objects.pop("conversation", None)

    # --- aiming cases --------------------------------------------------------------------------

    def aim(
        self, method: str, path: str, path_parameters: dict[str, Any], body: Any
    ) -> tuple[dict[str, Any], Any]:
        """Path parameters and body with most generated ids swapped for real ones.

        Copies, never edits: schemathesis builds some cases from values it keeps (the spec's
        examples), and an id written into those would outlive this server's objects.
        """
        kind = kind_of(method, path)
        aimed = dict(path_parameters)
        if kind is not None and aimed and _pick(sorted(aimed.items())):
            real = self.get(kind)
            for name, value in aimed.items():
                # Now and then one id of several stays random: a real thread, an unknown run.
                if name in real and (len(aimed) == 1 or _pick(value, out_of=6)):
                    aimed[name] = real[name]
        return aimed, self._aim_body(body, kind)

    def _aim_body(self, node: Any, kind: str | None) -> Any:
        if isinstance(node, list):
            return [self._aim_body(item, kind) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "assistant_id" and isinstance(value, str) and _pick(value):
                out[key] = self.get("assistant")["assistant_id"]
            elif key == "file_id" and isinstance(value, str) and _pick(value):
                out[key] = self.get("file")["file_id"]
            elif key == "file_ids" and isinstance(value, list) and _pick(value):
                out[key] = [self.get("file")["file_id"]] * min(len(value), 1)
            elif key == "vector_store_ids" and isinstance(value, list) and _pick(value):
                out[key] = [self.get("store")["vector_store_id"]] * min(len(value), 1)
            elif key == "tool_call_id" and kind == "paused" and _pick(value):
                out[key] = self.get("paused")["tool_call_id"]
            else:
                out[key] = self._aim_body(value, kind)
        return out

    # --- what a case used up -------------------------------------------------------------------

    def _check_not_lost(self, method: str, path: str, text: str) -> None:
        """The world's objects exist until a case it saw succeed removed them: a 404 naming
        one means the server lost it (or the world lost track of it; either is a bug)."""
        found = re.search(r"found with id '(.*)'\.", text, re.S)
        alive = {v for obj in self.objects.values() for k, v in obj.items() if k != "tool_call_id"}
        missing = found.group(1) if found else None
        assert missing not in alive, f"{method} {path}: 404 for {missing}, which exists: {text}"

    def after(self, method: str, path: str, path_parameters: dict[str, Any], response: Any) -> None:
        """Forget what a successful case used up; remember a run it started on our thread."""
        self.statuses[f"{method} {path}"][response.status_code] += 1
        if response.status_code == 404:
            self._check_not_lost(method, path, response.text)
        kind = kind_of(method, path)
        real = self.objects.get(kind or "")
        if response.status_code != 200 or not real:
            return
        if any(real.get(name) != value for name, value in path_parameters.items()):
            return  # not (all) our ids: it answered about someone else's object
        if method == "DELETE" or kind == "paused" or path.endswith("/cancel"):
            self.objects.pop(kind or "", None)
        elif path == "/threads/{thread_id}/runs":
            try:
                run_id = json.loads(response.content)["id"]
            except (ValueError, KeyError, TypeError):
                return  # a streamed run: its stream ran to the end, so it is over
            self.pending_runs.append((real["thread_id"], run_id))
