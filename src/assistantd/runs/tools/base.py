"""The seam for tools that run on the server (``file_search``, ``code_interpreter``).

A function tool pauses the run: its calls go to the client as ``required_action`` and come back
through ``submit_tool_outputs``. A server tool is offered to the model as a function with a
reserved name; when the model calls it, the executor runs it here and feeds the output back to
the model without leaving ``in_progress``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from assistantd.storage.objects import JSONObject


@dataclass(frozen=True)
class ToolCallContext:
    project: str
    thread_id: str
    run_id: str
    run: JSONObject


@dataclass(frozen=True)
class ToolOutcome:
    output: str
    """What the model reads as the call's result."""
    details: JSONObject
    """The tool call as the run step shows it (``{"id", "type", <type>: {...}}``)."""


class ServerTool(Protocol):
    type: str
    """The assistant tool type this serves, e.g. ``"file_search"``."""

    def chat_definition(self, tool: JSONObject) -> dict[str, Any]:
        """The function the model sees for the assistant tool ``tool``."""
        ...

    def pending(self, call_id: str, arguments: str) -> JSONObject:
        """The step's view of a call that has not run yet."""
        ...

    async def run(self, ctx: ToolCallContext, call_id: str, arguments: str) -> ToolOutcome:
        """Execute one call. Errors should come back as an output the model can read.

        ``details`` may carry keys starting with ``_`` (``_arguments``, ``_output``): they are
        stored for ``runs/context.py`` to replay the call to the model, and never shown."""
        ...

    # Optional: ``async def annotations(ctx, text) -> list[JSONObject]``, the annotations
    # (e.g. ``file_citation``) of the run's final message text; see ``ToolBox.annotate``.


def public_call(call: JSONObject, *, content: bool) -> JSONObject:
    """A tool call as clients see it: no ``_`` keys; file-search results' ``content`` only
    when ``include[]`` asked for it."""
    out = {k: v for k, v in call.items() if not k.startswith("_")}
    if call.get("type") == "file_search" and not content:
        fs = dict(out.get("file_search") or {})
        if fs.get("results") is not None:
            fs["results"] = [{k: v for k, v in r.items() if k != "content"} for r in fs["results"]]
        out["file_search"] = fs
    return out


@dataclass
class RunOutputs:
    """What server tools produced during one run, for the run's next assistant message:
    images to show (``image_file`` parts) and sandbox paths to link (``file_path``)."""

    images: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)


class ToolBox:
    """The server tools this process offers, by assistant tool type."""

    def __init__(self, tools: list[ServerTool] | None = None) -> None:
        self.by_type: dict[str, ServerTool] = {t.type: t for t in tools or []}
        self.unavailable: dict[str, str] = {}
        self._outputs: dict[str, RunOutputs] = {}

    def register(self, tool: ServerTool) -> None:
        self.by_type[tool.type] = tool

    def outputs(self, run_id: str) -> RunOutputs:
        return self._outputs.setdefault(run_id, RunOutputs())

    def finish_message(self, run_id: str) -> list[JSONObject]:
        """Content parts to append to the run's next assistant message (the images tools
        produced since the last one); forgets the run's outputs."""
        outputs = self._outputs.pop(run_id, None)
        images = outputs.images if outputs is not None else []
        return [{"type": "image_file", "image_file": {"file_id": f}} for f in images]

    def chat_tools(self, run_tools: list[JSONObject]) -> list[dict[str, Any]]:
        """The Chat Completions ``tools`` for a run's tools (unserved server tools are left out)."""
        out: list[dict[str, Any]] = []
        for tool in run_tools:
            if tool["type"] == "function":
                fn = dict(tool["function"])
                fn.setdefault("parameters", {"type": "object", "properties": {}})
                out.append({"type": "function", "function": fn})
            elif tool["type"] in self.by_type:
                out.append(self.by_type[tool["type"]].chat_definition(tool))
        return out

    def server_tool_for(self, name: str) -> ServerTool | None:
        return self.by_type.get(name)

    async def annotate(self, ctx: ToolCallContext, text: str) -> list[JSONObject]:
        """Annotations of a run's final message text, from every tool that makes them."""
        found: list[JSONObject] = []
        for tool in self.by_type.values():
            make = getattr(tool, "annotations", None)
            if make is not None:
                found += await make(ctx, text)
        return sorted(found, key=lambda a: (a["start_index"], a["end_index"]))
