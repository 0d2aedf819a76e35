"""The ``code_interpreter`` tool: the model's Python runs in the thread's sandbox session.

One session per thread (state persists across calls and runs). The thread's and assistant's
``code_interpreter`` files and the thread's ``code_interpreter`` attachments appear under
``/mnt/data``. Figures come back as image files, files written to ``/mnt/data`` as files with
purpose ``assistants_output``; the next assistant message shows the images and links the files.
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
from collections.abc import Awaitable, Callable
from typing import Any

from assistantd.errors import NotFoundError
from assistantd.runs.tools.base import ToolBox, ToolCallContext, ToolOutcome
from assistantd.sandbox.base import InputFile, Sandbox, SandboxUnavailable
from assistantd.services import files
from assistantd.storage.blobs import BlobStore
from assistantd.storage.objects import JSONObject, PageQuery
from assistantd.storage.store import Store

log = logging.getLogger("assistantd.code_interpreter")

DESCRIPTION = (
    "Run Python code in a stateful Jupyter-like sandbox and see its output. Variables and "
    "files persist between calls in this conversation. Files provided by the user are in "
    "/mnt/data; save files you create there and link them as sandbox:/mnt/data/<name>. "
    "numpy, pandas and matplotlib are installed; there is no internet access."
)
MAX_MODEL_OUTPUT = 20_000


def parse_code(arguments: str) -> str:
    """The code from the call's arguments (models sometimes send the bare code)."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, str) else arguments


class CodeInterpreterTool:
    type = "code_interpreter"

    def __init__(
        self,
        sandbox: Sandbox,
        store: Store,
        blobs: BlobStore,
        toolbox: ToolBox,
        *,
        pin: Callable[[str, float], Awaitable[None]] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.store = store
        self.blobs = blobs
        self.toolbox = toolbox
        self.pin = pin
        """Called with the thread after each execution: its session lives in this process
        (the distributed mode sends the thread's next runs here)."""

    def chat_definition(self, tool: JSONObject) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": "code_interpreter",
                "description": DESCRIPTION,
                "parameters": {
                    "type": "object",
                    "properties": {"code": {"type": "string", "description": "Python code"}},
                    "required": ["code"],
                },
            },
        }

    def pending(self, call_id: str, arguments: str) -> JSONObject:
        return {
            "id": call_id,
            "type": "code_interpreter",
            "code_interpreter": {"input": parse_code(arguments), "outputs": []},
        }

    async def run(self, ctx: ToolCallContext, call_id: str, arguments: str) -> ToolOutcome:
        code = parse_code(arguments)
        try:
            execution = await self.sandbox.execute(
                ctx.thread_id, code, files=await self._input_files(ctx)
            )
        except SandboxUnavailable as exc:
            message = f"The code interpreter is unavailable on this server: {exc}"
            return ToolOutcome(
                message, self._details(call_id, code, [{"type": "logs", "logs": message}])
            )
        if self.pin is not None:
            await self.pin(ctx.thread_id, self.sandbox.limits.idle_seconds)
        logs = execution.logs
        if execution.error:
            logs = f"{logs}\n{execution.error}" if logs else execution.error
        outputs: list[JSONObject] = []
        if logs:
            outputs.append({"type": "logs", "logs": logs})
        produced = self.toolbox.outputs(ctx.run_id)
        notes: list[str] = []
        for n, png in enumerate(execution.images, start=1):
            image = await self._save(ctx.project, f"{call_id}-figure-{n}.png", png)
            outputs.append({"type": "image", "image": {"file_id": image["id"]}})
            produced.images.append(image["id"])
            notes.append(f"[figure {n} is shown to the user]")
        for out in execution.files:
            saved = await self._save(ctx.project, posixpath.basename(out.name), out.data)
            path = f"/mnt/data/{out.name}"
            produced.paths[path] = saved["id"]
            notes.append(f"[file written: sandbox:{path}]")
        for_model = "\n".join(filter(None, [logs[:MAX_MODEL_OUTPUT], *notes])) or "(no output)"
        return ToolOutcome(for_model, self._details(call_id, code, outputs))

    async def annotations(self, ctx: ToolCallContext, text: str) -> list[JSONObject]:
        """``file_path`` annotations on every ``sandbox:/mnt/data/...`` link in ``text`` to a
        file the code wrote during this run."""
        found: list[JSONObject] = []
        for path, file_id in self.toolbox.outputs(ctx.run_id).paths.items():
            link = f"sandbox:{path}"
            start = text.find(link)
            while start != -1:
                found.append(
                    {
                        "type": "file_path",
                        "text": link,
                        "start_index": start,
                        "end_index": start + len(link),
                        "file_path": {"file_id": file_id},
                    }
                )
                start = text.find(link, start + len(link))
        return found

    @staticmethod
    def _details(call_id: str, code: str, outputs: list[JSONObject]) -> JSONObject:
        return {
            "id": call_id,
            "type": "code_interpreter",
            "code_interpreter": {"input": code, "outputs": outputs},
        }

    async def _save(self, project: str, name: str, data: bytes) -> JSONObject:
        upload = files.Upload(filename=name, purpose="assistants_output", source=io.BytesIO(data))
        return await files.create(self.store, self.blobs, project, upload)

    async def _input_files(self, ctx: ToolCallContext) -> list[InputFile]:
        """The files the thread's code may read: tool_resources of the assistant and the
        thread, and attachments for code_interpreter on the thread's messages."""
        wanted: list[str] = []
        async with self.store.db.read() as conn:
            thread = await self.store.threads.get(conn, ctx.project, ctx.thread_id)
            try:
                assistant = await self.store.assistants.get(
                    conn, ctx.project, ctx.run["assistant_id"]
                )
            except NotFoundError:
                assistant = {}
            for owner in (assistant, thread):
                resources = owner.get("tool_resources") or {}
                wanted += (resources.get("code_interpreter") or {}).get("file_ids") or []
            messages = await self.store.messages.page(
                conn, ctx.project, PageQuery(limit=100, order="desc"), thread_id=ctx.thread_id
            )
            for message in messages.objects():
                for attachment in message.get("attachments") or []:
                    if any(
                        t.get("type") == "code_interpreter" for t in attachment.get("tools") or []
                    ):
                        wanted.append(attachment["file_id"])
        result: list[InputFile] = []
        seen: set[str] = set()
        for file_id in wanted:
            if file_id in seen:
                continue
            seen.add(file_id)
            try:
                meta = await files.get(self.store, ctx.project, file_id)
                key = await files.blob_key(self.store, ctx.project, file_id)
            except NotFoundError:
                log.info("run %s: file %s is gone; not placed in /mnt/data", ctx.run_id, file_id)
                continue
            name = posixpath.basename(str(meta["filename"]).replace("\\", "/")) or file_id
            if name in (".", ".."):
                name = file_id
            result.append(InputFile(name=name, data=await self.blobs.read_all(key)))
        return result
