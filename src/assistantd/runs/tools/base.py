"""The seam for tools that run on the server (``file_search``, ``code_interpreter``).

A function tool pauses the run: its calls go to the client as ``required_action`` and come back
through ``submit_tool_outputs``. A server tool is offered to the model as a function with a
reserved name; when the model calls it, the executor runs it here and feeds the output back to
the model without leaving ``in_progress``.
"""

from __future__ import annotations

from dataclasses import dataclass
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
        """Execute one call. Errors should come back as an output the model can read."""
        ...


class ToolBox:
    """The server tools this process offers, by assistant tool type."""

    def __init__(self, tools: list[ServerTool] | None = None) -> None:
        self.by_type: dict[str, ServerTool] = {t.type: t for t in tools or []}

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
