"""Drives one run: context -> model stream -> steps and messages -> tools -> next state.

Persistence happens at step boundaries only (a step or message is created, a model call ends),
never per token: tokens travel through ``RunEvents``. No transaction is held across a model
call. Every write re-reads the run under a row lock and goes on only if it is still
``in_progress``, so a cancel, an expiry or a deleted thread always wins over the executor.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from assistantd import clock, ids
from assistantd.config import Settings
from assistantd.errors import NotFoundError
from assistantd.observability import logs
from assistantd.observability.metrics import Metrics
from assistantd.providers.base import (
    ChatEvent,
    ChatRequest,
    Finish,
    ProviderError,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistantd.providers.router import Route, Router
from assistantd.runs import context, state
from assistantd.runs.events import RunEvents
from assistantd.runs.records import new_step, usage_of
from assistantd.runs.tools.base import ToolBox, ToolCallContext, public_call
from assistantd.storage.objects import JSONObject, PageQuery
from assistantd.storage.store import Store

log = logging.getLogger("assistantd.executor")

_LEASE_OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "assistantd_lease_owner", default=None
)

MAX_MODEL_CALLS = 32
_ALL = PageQuery(limit=100, order="asc")
HISTORY_LIMIT = 100


class Interrupted(Exception):
    """The run left ``in_progress`` (cancel, expiry, deletion) while we were working on it."""


@dataclass
class CallState:
    """What one model call has produced so far."""

    message: JSONObject | None = None
    message_step: JSONObject | None = None
    tool_step: JSONObject | None = None
    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    usage: Usage | None = None
    finish: str | None = None
    emitted: bool = False


class RunExecutor:
    def __init__(
        self,
        store: Store,
        router: Router,
        settings: Settings,
        events: RunEvents,
        tools: ToolBox,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.settings = settings
        self.events = events
        self.tools = tools
        self.metrics = metrics or Metrics()
        """Where model calls, tokens and run endings are counted (``/metrics`` serves it)."""

    # -- entry ----------------------------------------------------------------------------

    async def execute(self, project: str, run_id: str, *, owner: str | None = None) -> None:
        """Run until terminal, paused for tool outputs, or interrupted. ``owner``: the lease
        the caller holds on the run; every write checks it is still held."""
        token = _LEASE_OWNER.set(owner)
        try:
            with logs.bind_run(run_id):
                await self._execute(project, run_id)
        finally:
            _LEASE_OWNER.reset(token)

    async def _execute(self, project: str, run_id: str) -> None:
        run = await self._begin(project, run_id)
        if run is None:
            return
        try:
            for _ in range(MAX_MODEL_CALLS):
                run = await self._model_call(project, run)
                if run["status"] != "in_progress":
                    return
            await self._fail(
                project, run["id"], "server_error", "The run made too many tool calls.", None
            )
        except (Interrupted, NotFoundError):
            return

    async def _begin(self, project: str, run_id: str) -> JSONObject | None:
        async with self.store.db.write() as conn:
            run = await self.store.runs.get(conn, project, run_id, for_update=True)
            try:
                await self._check_lease(conn, run_id)
            except Interrupted:
                return None
            if run["status"] == "queued":
                run = state.transition(run, "in_progress", clock.now())
                await self.store.runs.save(conn, project, run)
            elif run["status"] == "in_progress":
                await self._discard_unfinished(conn, project, run)
            else:
                return None
        await self.events.publish(run_id, "thread.run.in_progress", run)
        return run

    async def _discard_unfinished(self, conn: Any, project: str, run: JSONObject) -> None:
        """Resuming after a crash: the interrupted model call left steps (and a message) that
        never finished. They are removed and the call is made again, so the finished run has
        exactly one of each."""
        steps = await self.store.steps.page(conn, project, _ALL, run_id=run["id"])
        for step in steps.objects():
            if step["status"] != "in_progress":
                continue
            if step["type"] == "message_creation":
                message_id = step["step_details"]["message_creation"]["message_id"]
                await self.store.messages.delete_where(conn, id=message_id)
            await self.store.steps.delete_where(conn, id=step["id"])

    # -- one model call ---------------------------------------------------------------------

    async def _model_call(self, project: str, run: JSONObject) -> JSONObject:
        try:
            route = self.router.resolve(run["model"])
        except ProviderError as exc:
            return await self._fail(project, run["id"], exc.code, exc.message, None)
        async with self.store.db.read() as conn:
            totals = await self.store.runs.columns(
                conn, run["id"], "prompt_tokens", "completion_tokens"
            )
            history = await self._history(conn, project, run)
            rounds = await self._own_rounds(conn, project, run)
        max_completion = run.get("max_completion_tokens")
        remaining_completion = None
        if max_completion is not None:
            remaining_completion = max_completion - totals["completion_tokens"]
            if remaining_completion <= 0:
                return await self._incomplete(project, run, "max_completion_tokens", None)
        budget = route.provider.context_window - min(
            remaining_completion or 1024, route.provider.context_window // 4
        )
        max_prompt = run.get("max_prompt_tokens")
        if max_prompt is not None:
            budget = min(budget, max_prompt - totals["prompt_tokens"])
        try:
            ctx = context.build(
                run["instructions"],
                history,
                rounds,
                truncation=run.get("truncation_strategy"),
                budget=budget,
                count=route.provider.count_tokens,
            )
        except context.PromptTooLong as exc:
            if max_prompt is not None:
                return await self._incomplete(project, run, "max_prompt_tokens", None)
            return await self._fail(project, run["id"], "invalid_prompt", str(exc), None)
        request = self._request(run, route, ctx.messages, remaining_completion)
        call = await self._stream_with_retries(project, run, route, request)
        if call is None:
            return await self._reload(project, run["id"])
        if call.usage is None:
            produced = "".join(call.text) + "".join(c["arguments"] for c in call.calls.values())
            call.usage = Usage(ctx.prompt_tokens, route.provider.count_tokens(produced))
        self.metrics.count_tokens(
            route.model, call.usage.prompt_tokens, call.usage.completion_tokens
        )
        return await self._conclude(project, run, call, remaining_completion)

    def _request(
        self, run: JSONObject, route: Route, messages: list[dict[str, Any]], max_tokens: int | None
    ) -> ChatRequest:
        tools = self.tools.chat_tools(run["tools"])
        choice = run.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") != "function":
            choice = {"type": "function", "function": {"name": choice["type"]}}
        fmt = run.get("response_format")
        return ChatRequest(
            model=route.model,
            messages=messages,
            tools=tools,
            tool_choice=choice if tools else None,
            parallel_tool_calls=run.get("parallel_tool_calls") if tools else None,
            response_format=fmt if isinstance(fmt, dict) and fmt.get("type") != "text" else None,
            temperature=run.get("temperature"),
            top_p=run.get("top_p"),
            max_tokens=max_tokens,
        )

    async def _history(self, conn: Any, project: str, run: JSONObject) -> list[dict[str, Any]]:
        """The newest thread messages (oldest first) that this run did not write."""
        page = await self.store.messages.page(
            conn, project, PageQuery(limit=HISTORY_LIMIT, order="desc"), thread_id=run["thread_id"]
        )
        messages = [m for m in reversed(page.objects()) if m.get("run_id") != run["id"]]
        return [context.message_to_chat(m) for m in messages]

    async def _own_rounds(self, conn: Any, project: str, run: JSONObject) -> list[dict[str, Any]]:
        steps = await self.store.steps.page(conn, project, _ALL, run_id=run["id"])
        out: list[dict[str, Any]] = []
        for step in steps.objects():
            if step["status"] != "completed":
                continue
            if step["type"] == "tool_calls":
                out += context.tool_round_to_chat(step)
            else:
                message_id = step["step_details"]["message_creation"]["message_id"]
                message = await self.store.messages.get(conn, project, message_id)
                out.append(context.message_to_chat(message))
        return out

    async def _stream_with_retries(
        self, project: str, run: JSONObject, route: Route, request: ChatRequest
    ) -> CallState | None:
        attempts = max(1, self.settings.upstream_max_attempts)
        for attempt in range(1, attempts + 1):
            call = CallState()
            try:
                with self.metrics.model_call(route.provider.name) as timing:
                    async for event in route.provider.stream(request):
                        timing.saw(event)
                        await self._on_event(project, run, call, event)
                return call
            except ProviderError as exc:
                # Retrying after output reached clients would show them the text twice.
                if exc.retryable and attempt < attempts and not call.emitted:
                    delay = min(8.0, 0.25 * 2 ** (attempt - 1)) * (1 + random.random() / 2)
                    log.warning(
                        "run %s: upstream failed (%s), retry in %.2fs", run["id"], exc, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                await self._fail(project, run["id"], exc.code, exc.message, call)
                return None
            except asyncio.CancelledError:
                await asyncio.shield(self._save_partial(project, call))
                raise
            except Interrupted:
                await self._save_partial(project, call)
                raise
        return None

    async def _on_event(
        self, project: str, run: JSONObject, call: CallState, event: ChatEvent
    ) -> None:
        if isinstance(event, TextDelta):
            if call.message is None:
                await self._open_message(project, run, call)
            assert call.message is not None
            first = not call.text
            call.text.append(event.text)
            text: JSONObject = {"value": event.text}
            if first:
                text["annotations"] = []
            call.emitted = True
            await self.events.publish(
                run["id"],
                "thread.message.delta",
                {
                    "id": call.message["id"],
                    "object": "thread.message.delta",
                    "delta": {"content": [{"index": 0, "type": "text", "text": text}]},
                },
            )
        elif isinstance(event, ToolCallDelta):
            if call.tool_step is None:
                call.tool_step = await self._open_step(
                    project, run, {"type": "tool_calls", "tool_calls": []}
                )
            await self._on_tool_delta(run, call, event)
        elif isinstance(event, Usage):
            call.usage = event
        elif isinstance(event, Finish):
            call.finish = event.reason

    async def _on_tool_delta(self, run: JSONObject, call: CallState, event: ToolCallDelta) -> None:
        assert call.tool_step is not None
        fragment: JSONObject
        if event.index not in call.calls:
            local_index = len(call.calls)
            call_id = event.id or ids.new_id(ids.TOOL_CALL)
            call.calls[event.index] = {
                "index": str(local_index),
                "id": call_id,
                "name": event.name or "",
                "arguments": event.arguments,
            }
            server_tool = self.tools.server_tool_for(event.name or "")
            if server_tool is not None:
                # A server tool shows as its own kind of call, never as a function.
                fragment = {"index": local_index, **server_tool.pending(call_id, "")}
            else:
                fragment = {
                    "index": local_index,
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": event.name or "",
                        "arguments": event.arguments,
                        "output": None,
                    },
                }
        else:
            entry = call.calls[event.index]
            entry["arguments"] += event.arguments
            if event.name and not entry["name"]:
                entry["name"] = event.name
            if self.tools.server_tool_for(entry["name"]) is not None:
                return  # its arguments are the model's business, not the client's
            fragment = {
                "index": int(entry["index"]),
                "type": "function",
                "function": {"arguments": event.arguments},
            }
        call.emitted = True
        await self.events.publish(
            run["id"],
            "thread.run.step.delta",
            {
                "id": call.tool_step["id"],
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [fragment]}},
            },
        )

    # -- persistence at step boundaries ------------------------------------------------------

    async def _guarded(self, conn: Any, project: str, run_id: str) -> JSONObject:
        run = await self.store.runs.get(conn, project, run_id, for_update=True)
        if run["status"] != "in_progress":
            raise Interrupted(run["status"])
        await self._check_lease(conn, run_id)
        return run

    async def _check_lease(self, conn: Any, run_id: str) -> None:
        """Fencing: a worker whose lease ran out (it stalled past the lease time and another
        worker took the run over) must not write anything more for the run."""
        owner = _LEASE_OWNER.get()
        if owner is None:
            return
        held = await self.store.runs.columns(conn, run_id, "lease_owner")
        if held["lease_owner"] != owner:
            raise Interrupted("lease lost")

    async def _open_step(self, project: str, run: JSONObject, details: JSONObject) -> JSONObject:
        step = new_step(run, details)
        async with self.store.db.write() as conn:
            await self._guarded(conn, project, run["id"])
            await self.store.steps.insert(conn, project, step)
        await self.events.publish(run["id"], "thread.run.step.created", step)
        await self.events.publish(run["id"], "thread.run.step.in_progress", step)
        return step

    async def _open_message(self, project: str, run: JSONObject, call: CallState) -> None:
        message = {
            "id": ids.new_id(ids.MESSAGE),
            "object": "thread.message",
            "created_at": clock.now(),
            "assistant_id": run["assistant_id"],
            "thread_id": run["thread_id"],
            "run_id": run["id"],
            "status": "in_progress",
            "incomplete_details": None,
            "completed_at": None,
            "incomplete_at": None,
            "role": "assistant",
            "content": [],
            "attachments": [],
            "metadata": {},
        }
        step = new_step(
            run, {"type": "message_creation", "message_creation": {"message_id": message["id"]}}
        )
        async with self.store.db.write() as conn:
            await self._guarded(conn, project, run["id"])
            await self.store.steps.insert(conn, project, step)
            await self.store.messages.insert(conn, project, message)
        call.message, call.message_step = message, step
        await self.events.publish(run["id"], "thread.run.step.created", step)
        await self.events.publish(run["id"], "thread.run.step.in_progress", step)
        await self.events.publish(run["id"], "thread.message.created", message)
        await self.events.publish(run["id"], "thread.message.in_progress", message)

    async def _save_partial(self, project: str, call: CallState) -> None:
        """Keep the text a cancelled or failed call had produced, in its unfinished message."""
        if call.message is None or not call.text:
            return
        message = dict(call.message)
        message["content"] = [_text_part("".join(call.text))]
        try:
            async with self.store.db.write() as conn:
                current = await self.store.messages.find_raw(conn, project, message["id"])
                if current is not None and orjson.loads(current)["status"] == "in_progress":
                    await self.store.messages.save(conn, project, message)
        except Exception:
            log.exception("could not save the partial message %s", message["id"])
        call.message = message

    async def _conclude(
        self, project: str, run: JSONObject, call: CallState, remaining_completion: int | None
    ) -> JSONObject:
        assert call.usage is not None
        now = clock.now()
        usage = call.usage
        truncated = call.finish == "length" and remaining_completion is not None
        function_calls = [
            c for c in call.calls.values() if self.tools.server_tool_for(c["name"]) is None
        ]
        server_calls = [
            c for c in call.calls.values() if self.tools.server_tool_for(c["name"]) is not None
        ]
        if call.message is None and not call.calls:
            await self._open_message(project, run, call)
        annotations: list[JSONObject] = []
        if call.message is not None and call.text:
            ctx = ToolCallContext(project, run["thread_id"], run["id"], run)
            annotations = await self.tools.annotate(ctx, "".join(call.text))
        published: list[tuple[str, JSONObject]] = []
        async with self.store.db.write() as conn:
            run = await self._guarded(conn, project, run["id"])
            totals = await self.store.runs.columns(
                conn, run["id"], "prompt_tokens", "completion_tokens"
            )
            totals = {
                "prompt_tokens": totals["prompt_tokens"] + usage.prompt_tokens,
                "completion_tokens": totals["completion_tokens"] + usage.completion_tokens,
            }
            call_usage = usage_of(usage.prompt_tokens, usage.completion_tokens)
            if call.message is not None and call.message_step is not None:
                message = dict(call.message)
                message["content"] = [
                    _text_part("".join(call.text), annotations),
                    *self.tools.finish_message(run["id"]),
                ]
                if annotations:
                    # Each annotation once, with its index (the SDK sums repeated numbers).
                    delta = [{"index": i, **a} for i, a in enumerate(annotations)]
                    published.append(
                        (
                            "thread.message.delta",
                            {
                                "id": message["id"],
                                "object": "thread.message.delta",
                                "delta": {
                                    "content": [
                                        {"index": 0, "type": "text", "text": {"annotations": delta}}
                                    ]
                                },
                            },
                        )
                    )
                if truncated and not call.calls:
                    message.update(
                        status="incomplete",
                        incomplete_at=now,
                        incomplete_details={"reason": "max_tokens"},
                    )
                else:
                    message.update(status="completed", completed_at=now)
                await self.store.messages.save(conn, project, message)
                step = dict(call.message_step)
                step.update(
                    status="completed", completed_at=now, usage=None if call.calls else call_usage
                )
                if call.calls:
                    step["usage"] = usage_of(0, 0)
                await self.store.steps.save(conn, project, step)
                published += [
                    (
                        "thread.message.incomplete"
                        if message["status"] == "incomplete"
                        else "thread.message.completed",
                        message,
                    ),
                    ("thread.run.step.completed", step),
                ]
            if call.calls:
                assert call.tool_step is not None
                tool_step = dict(call.tool_step)
                tool_step["step_details"] = {
                    "type": "tool_calls",
                    "tool_calls": [self._step_call(c) for c in call.calls.values()],
                }
                call.tool_step = tool_step
                pending = orjson.dumps(call_usage).decode()
                await self.store.steps.save(
                    conn, project, tool_step, extra={"pending_usage": pending}
                )
            if function_calls:
                run = state.transition(run, "requires_action", now)
                run["required_action"] = {
                    "type": "submit_tool_outputs",
                    "submit_tool_outputs": {
                        "tool_calls": [
                            {
                                "id": c["id"],
                                "type": "function",
                                "function": {"name": c["name"], "arguments": c["arguments"]},
                            }
                            for c in function_calls
                        ]
                    },
                }
                await self.store.runs.save(
                    conn, project, run, extra={**totals, "lease_owner": None}
                )
                published.append(("thread.run.requires_action", run))
            elif server_calls:
                await self.store.runs.save(conn, project, run, extra=totals)
            else:
                target = "incomplete" if truncated else "completed"
                run = state.transition(run, target, now)
                if truncated:
                    run["incomplete_details"] = {"reason": "max_completion_tokens"}
                run["usage"] = usage_of(totals["prompt_tokens"], totals["completion_tokens"])
                await self.store.runs.save(conn, project, run, extra=totals)
                published.append((f"thread.run.{target}", run))
        for name, data in published:
            await self.events.publish(run["id"], name, data)
        self.record_end(run)
        if server_calls and not function_calls:
            await self._run_server_tools(project, run, call)
        return run

    def _step_call(self, c: dict[str, str]) -> JSONObject:
        tool = self.tools.server_tool_for(c["name"])
        if tool is not None:
            return tool.pending(c["id"], c["arguments"])
        return {
            "id": c["id"],
            "type": "function",
            "function": {"name": c["name"], "arguments": c["arguments"], "output": None},
        }

    async def _run_server_tools(self, project: str, run: JSONObject, call: CallState) -> None:
        assert call.tool_step is not None
        ctx = ToolCallContext(project, run["thread_id"], run["id"], run)
        details = []
        for c in call.calls.values():
            tool = self.tools.server_tool_for(c["name"])
            assert tool is not None
            index = int(c["index"])
            if tool.type == "code_interpreter":
                # The code as one input fragment (its first delta carried input ""), so a
                # streaming client sees what runs before it runs.
                code = tool.pending(c["id"], c["arguments"])["code_interpreter"]["input"]
                await self._tool_delta(run["id"], call.tool_step["id"], index, {"input": code})
            outcome = await tool.run(ctx, c["id"], c["arguments"])
            details.append(outcome.details)
            if tool.type == "code_interpreter":
                outputs = outcome.details["code_interpreter"]["outputs"]
                await self._tool_delta(
                    run["id"],
                    call.tool_step["id"],
                    index,
                    {"outputs": [{"index": i, **o} for i, o in enumerate(outputs)]},
                )
        async with self.store.db.write() as conn:
            await self._guarded(conn, project, run["id"])
            step = dict(call.tool_step)
            cols = await self.store.steps.columns(conn, step["id"], "pending_usage")
            step["step_details"] = {"type": "tool_calls", "tool_calls": details}
            step.update(
                status="completed",
                completed_at=clock.now(),
                usage=orjson.loads(cols["pending_usage"] or "null"),
            )
            await self.store.steps.save(conn, project, step, extra={"pending_usage": None})
        shown = dict(step)
        shown["step_details"] = {
            "type": "tool_calls",
            "tool_calls": [public_call(c, content=False) for c in details],
        }
        await self.events.publish(run["id"], "thread.run.step.completed", shown)

    async def _tool_delta(self, run_id: str, step_id: str, index: int, body: JSONObject) -> None:
        await self.events.publish(
            run_id,
            "thread.run.step.delta",
            {
                "id": step_id,
                "object": "thread.run.step.delta",
                "delta": {
                    "step_details": {
                        "type": "tool_calls",
                        "tool_calls": [
                            {"index": index, "type": "code_interpreter", "code_interpreter": body}
                        ],
                    }
                },
            },
        )

    # -- endings ------------------------------------------------------------------------------

    async def _reload(self, project: str, run_id: str) -> JSONObject:
        async with self.store.db.read() as conn:
            return await self.store.runs.get(conn, project, run_id)

    async def _incomplete(
        self, project: str, run: JSONObject, reason: str, call: CallState | None
    ) -> JSONObject:
        async with self.store.db.write() as conn:
            run = await self._guarded(conn, project, run["id"])
            totals = await self.store.runs.columns(
                conn, run["id"], "prompt_tokens", "completion_tokens"
            )
            run = state.transition(run, "incomplete", clock.now())
            run["incomplete_details"] = {"reason": reason}
            run["usage"] = usage_of(totals["prompt_tokens"], totals["completion_tokens"])
            await self.store.runs.save(conn, project, run)
        await self.events.publish(run["id"], "thread.run.incomplete", run)
        self.record_end(run)
        return run

    async def _fail(
        self, project: str, run_id: str, code: str, message: str, call: CallState | None
    ) -> JSONObject:
        now = clock.now()
        error = {"code": code, "message": message}
        published: list[tuple[str, JSONObject]] = []
        async with self.store.db.write() as conn:
            run = await self._guarded(conn, project, run_id)
            steps = await self.store.steps.page(conn, project, _ALL, run_id=run_id)
            for step in steps.objects():
                if step["status"] == "in_progress":
                    step.update(status="failed", failed_at=now, last_error=error)
                    await self.store.steps.save(conn, project, step)
                    published.append(("thread.run.step.failed", step))
            if call is not None and call.message is not None:
                msg = dict(call.message)
                msg["content"] = [_text_part("".join(call.text))] if call.text else []
                msg.update(
                    status="incomplete",
                    incomplete_at=now,
                    incomplete_details={"reason": "run_failed"},
                )
                await self.store.messages.save(conn, project, msg)
                published.insert(0, ("thread.message.incomplete", msg))
            totals = await self.store.runs.columns(
                conn, run_id, "prompt_tokens", "completion_tokens"
            )
            run = state.transition(run, "failed", now)
            run["last_error"] = error
            run["usage"] = usage_of(totals["prompt_tokens"], totals["completion_tokens"])
            await self.store.runs.save(conn, project, run)
            published.append(("thread.run.failed", run))
        for name, data in published:
            await self.events.publish(run_id, name, data)
        self.record_end(run)
        return run

    def record_end(self, run: JSONObject) -> None:
        """Count and log a run that was just moved to a terminal status (by this executor,
        or by the worker: cancelled, expired, crashed)."""
        status = run["status"]
        if status not in state.TERMINAL:
            return
        self.metrics.run_finished(status)
        error = run.get("last_error") or run.get("incomplete_details")
        log.info(
            "run %s %s%s",
            run["id"],
            status,
            f": {error}" if error else "",
            extra={"run_id": run["id"], "run_status": status},
        )


def _text_part(value: str, annotations: list[JSONObject] | None = None) -> JSONObject:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}
