"""``file_search``: the model searches the vector stores of the assistant and the thread.

The model sees a function ``file_search(queries)``. The server runs a hybrid search over the
stores in ``tool_resources.file_search.vector_store_ids`` of the assistant and of the thread,
and answers with the chunks, each headed by a source marker ``【<call>:<n>†<filename>】``. The
model is asked to cite with those markers; once it has answered, every marker in the message
becomes a ``file_citation`` annotation whose ``text`` is the marker and whose file is the one
that result came from. ``<call>`` numbers the run's file_search calls, so markers stay unique
across several searches.

The step shows ``ranking_options`` and the ``results`` (``file_id``, ``file_name``, ``score``
and ``content``, which the API only shows with ``include[]``).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import orjson

from assistantd.retrieval import catalog
from assistantd.retrieval.search import Searcher
from assistantd.runs.tools.base import ToolCallContext, ToolOutcome
from assistantd.storage.objects import JSONObject, PageQuery
from assistantd.storage.store import Store

NAME = "file_search"
DEFAULT_RANKER = "default_2024_08_21"
# How long a search waits for files still being ingested (e.g. just attached to a message).
READY_TIMEOUT_SECONDS = 60.0
MARKER = re.compile(r"【(?:(\d+):)?(\d+)(?:†[^】]*)?】")
_ALL = PageQuery(limit=100, order="asc")

DESCRIPTION = (
    "Search the files the user has provided. Use it whenever the answer may be in those files. "
    "Each result starts with a source marker such as 【0:1†report.pdf】; when you use a result, "
    "cite it by writing its marker right after the sentence it supports."
)


def default_max_results(model: str) -> int:
    """CONFORMANCE section 6: 20 for gpt-4* models, 5 for gpt-3.5-turbo."""
    return 5 if model.startswith("gpt-3.5") else 20


class FileSearchTool:
    type = NAME

    def __init__(self, store: Store, searcher: Searcher) -> None:
        self.store = store
        self.searcher = searcher

    def chat_definition(self, tool: JSONObject) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": NAME,
                "description": DESCRIPTION,
                "parameters": {
                    "type": "object",
                    "properties": {
                        "queries": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "One or more search queries.",
                        }
                    },
                    "required": ["queries"],
                },
            },
        }

    def pending(self, call_id: str, arguments: str) -> JSONObject:
        return {"id": call_id, "type": NAME, "file_search": {}}

    async def run(self, ctx: ToolCallContext, call_id: str, arguments: str) -> ToolOutcome:
        settings = _settings(ctx.run)
        ranking = settings.get("ranking_options") or {}
        threshold = float(ranking.get("score_threshold") or 0.0)
        ranker = ranking.get("ranker") or "auto"
        limit = settings.get("max_num_results") or default_max_results(str(ctx.run["model"]))
        queries = _queries(arguments)
        ordinal = await self._ordinal(ctx, call_id)
        vs_ids = await self._stores(ctx)
        results: list[JSONObject] = []
        lines: list[str] = []
        if not queries:
            lines.append("No query was given: call file_search with a list of queries.")
        elif not vs_ids:
            lines.append("There are no files to search.")
        else:
            await self._wait_ready(vs_ids)
            results = await self._search(ctx, vs_ids, queries, limit, threshold)
            if not results:
                lines.append("No results found.")
        for n, result in enumerate(results):
            marker = f"【{ordinal}:{n}†{result['file_name']}】"
            lines.append(f"{marker}\n{result['content'][0]['text']}")
        output = "\n\n".join(lines)
        details: JSONObject = {
            "id": call_id,
            "type": NAME,
            "file_search": {
                "ranking_options": {
                    "ranker": DEFAULT_RANKER if ranker == "auto" else ranker,
                    "score_threshold": threshold,
                },
                "results": results,
            },
            # What the model said and read: runs/context.py replays them on the next call.
            "_arguments": arguments,
            "_output": output,
            "_ordinal": ordinal,
        }
        return ToolOutcome(output=output, details=details)

    async def _stores(self, ctx: ToolCallContext) -> list[str]:
        async with self.store.db.read() as conn:
            ids: list[str] = []
            assistant_raw = await self.store.assistants.find_raw(
                conn, ctx.project, ctx.run["assistant_id"]
            )
            thread_raw = await self.store.threads.find_raw(conn, ctx.project, ctx.thread_id)
        for raw in (assistant_raw, thread_raw):
            if raw is not None:
                ids += catalog.file_search_ids(orjson.loads(raw))
        return list(dict.fromkeys(ids))

    async def _wait_ready(self, vs_ids: list[str]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not await catalog.pending_files(self.store, vs_ids):
                return
            await asyncio.sleep(0.2)

    async def _search(
        self,
        ctx: ToolCallContext,
        vs_ids: list[str],
        queries: list[str],
        limit: int,
        threshold: float,
    ) -> list[JSONObject]:
        scopes = []
        owners: dict[str, str] = {}
        async with self.store.db.read() as conn:
            for vs_id in vs_ids:
                raw = await self.store.vector_stores.find_raw(conn, ctx.project, vs_id)
                if raw is None:
                    continue
                allowed = await catalog.searchable(conn, vs_id, None)
                owners.update({g: file_id for g, (file_id, _attrs) in allowed.items()})
                scopes.append((vs_id, set(allowed)))
        found = await self.searcher.search(scopes, queries, limit, threshold=threshold)
        async with self.store.db.read() as conn:
            names = await catalog.filenames(
                conn, ctx.project, (owners[s.hit.generation] for s in found)
            )
        await catalog.touch(self.store, [s for s, _ in scopes])
        return [
            {
                "file_id": owners[s.hit.generation],
                "file_name": names.get(owners[s.hit.generation], ""),
                "score": s.score,
                "content": [{"type": "text", "text": s.hit.text}],
            }
            for s in found
        ]

    async def _ordinal(self, ctx: ToolCallContext, call_id: str) -> int:
        """This call's number among the run's file_search calls, in order."""
        n = 0
        async with self.store.db.read() as conn:
            steps = await self.store.steps.page(conn, ctx.project, _ALL, run_id=ctx.run_id)
        for step in steps.objects():
            for call in (step.get("step_details") or {}).get("tool_calls") or []:
                if call.get("type") != NAME:
                    continue
                if call["id"] == call_id:
                    return n
                n += 1
        return n

    async def annotations(self, ctx: ToolCallContext, text: str) -> list[JSONObject]:
        """``file_citation`` annotations for the markers in the run's message ``text``."""
        if "【" not in text:
            return []
        by_call: dict[int, list[JSONObject]] = {}
        async with self.store.db.read() as conn:
            steps = await self.store.steps.page(conn, ctx.project, _ALL, run_id=ctx.run_id)
        for step in steps.objects():
            for call in (step.get("step_details") or {}).get("tool_calls") or []:
                if call.get("type") == NAME and "_ordinal" in call:
                    by_call[int(call["_ordinal"])] = call["file_search"].get("results") or []
        if not by_call:
            return []
        latest = max(by_call)
        out: list[JSONObject] = []
        for match in MARKER.finditer(text):
            call_no = int(match.group(1)) if match.group(1) is not None else latest
            n = int(match.group(2))
            results = by_call.get(call_no) or []
            if n >= len(results):
                continue
            out.append(
                {
                    "type": "file_citation",
                    "text": match.group(0),
                    "start_index": match.start(),
                    "end_index": match.end(),
                    "file_citation": {"file_id": results[n]["file_id"]},
                }
            )
        return out


def _settings(run: JSONObject) -> JSONObject:
    for tool in run.get("tools") or []:
        if tool.get("type") == NAME:
            return dict(tool.get("file_search") or {})
    return {}


def _queries(arguments: str) -> list[str]:
    try:
        args = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return [arguments] if arguments.strip() else []
    if not isinstance(args, dict):
        return []
    raw = args.get("queries", args.get("query"))
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    return [q for q in raw if isinstance(q, str) and q.strip()][:5]
