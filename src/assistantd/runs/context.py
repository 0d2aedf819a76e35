"""Thread and run history -> the chat messages one model call sees.

The system message is the run's effective instructions. Then come the thread's messages
(those the run did not write itself), then the run's own rounds: its earlier assistant text and
each tool call with its output. Truncation applies to the thread's messages only; the run's own
rounds are needed to continue it and are never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistantd.storage.objects import JSONObject

ChatMessage = dict[str, Any]
# Chat formats add a few tokens per message for role and separators.
PER_MESSAGE_OVERHEAD = 4


class PromptTooLong(Exception):
    """Even with truncation, the prompt does not fit the budget."""


@dataclass(frozen=True)
class Context:
    messages: list[ChatMessage]
    prompt_tokens: int
    dropped: int


def message_to_chat(message: JSONObject) -> ChatMessage:
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    has_image = False
    for part in message.get("content") or []:
        kind = part.get("type")
        if kind == "text":
            texts.append(part["text"]["value"])
            parts.append({"type": "text", "text": part["text"]["value"]})
        elif kind == "image_url":
            has_image = True
            parts.append({"type": "image_url", "image_url": dict(part["image_url"])})
        elif kind == "image_file":
            note = f"[image file {part['image_file']['file_id']}]"
            texts.append(note)
            parts.append({"type": "text", "text": note})
        elif kind == "refusal":
            texts.append(part.get("refusal", ""))
            parts.append({"type": "text", "text": part.get("refusal", "")})
    role = message["role"]
    if has_image and role == "user":
        return {"role": role, "content": parts}
    return {"role": role, "content": "\n".join(texts)}


def tool_round_to_chat(step: JSONObject) -> list[ChatMessage]:
    """A completed tool_calls step: the assistant's calls, then one tool message per call."""
    calls = step["step_details"]["tool_calls"]
    assistant: ChatMessage = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": _call_name(c), "arguments": _call_arguments(c)},
            }
            for c in calls
        ],
    }
    results = [{"role": "tool", "tool_call_id": c["id"], "content": _call_output(c)} for c in calls]
    return [assistant, *results]


def _call_name(call: JSONObject) -> str:
    if call["type"] == "function":
        return str(call["function"]["name"])
    return str(call["type"])


def _call_arguments(call: JSONObject) -> str:
    if call["type"] == "function":
        return str(call["function"]["arguments"])
    if call["type"] == "code_interpreter":
        import json

        return json.dumps({"code": call["code_interpreter"]["input"]})
    return str(call.get("_arguments", "{}"))


def _call_output(call: JSONObject) -> str:
    if call["type"] == "function":
        return str(call["function"].get("output") or "")
    if call["type"] == "code_interpreter":
        outputs = call["code_interpreter"].get("outputs") or []
        return "\n".join(o.get("logs", "") for o in outputs if o.get("type") == "logs")
    return str(call.get("_output", ""))


def _tokens(message: ChatMessage, count: Callable[[str], int]) -> int:
    content = message.get("content")
    total = PER_MESSAGE_OVERHEAD
    if isinstance(content, str):
        total += count(content)
    elif isinstance(content, list):
        for part in content:
            # Images are billed by the upstream; a flat estimate keeps budgets conservative.
            total += count(part.get("text", "")) if part.get("type") == "text" else 85
    for call in message.get("tool_calls") or []:
        total += count(call["function"]["name"]) + count(call["function"]["arguments"])
    return total


def build(
    instructions: str,
    history: list[ChatMessage],
    own_rounds: list[ChatMessage],
    *,
    truncation: JSONObject | None,
    budget: int,
    count: Callable[[str], int],
) -> Context:
    """Fit ``history`` into ``budget`` tokens by the run's truncation strategy."""
    kept = list(history)
    dropped = 0
    if truncation and truncation.get("type") == "last_messages" and truncation.get("last_messages"):
        n = int(truncation["last_messages"])
        dropped = max(0, len(kept) - n)
        kept = kept[-n:] if n < len(kept) else kept
    system = [{"role": "system", "content": instructions}] if instructions else []
    fixed = sum(_tokens(m, count) for m in system + own_rounds)
    sizes = [_tokens(m, count) for m in kept]
    total = fixed + sum(sizes)
    # "auto": drop the oldest thread messages until the prompt fits, keeping the newest one.
    while total > budget and len(kept) > 1:
        total -= sizes.pop(0)
        kept.pop(0)
        dropped += 1
    if total > budget:
        raise PromptTooLong(f"The prompt needs {total} tokens; the budget is {budget}.")
    return Context(messages=system + kept + own_rounds, prompt_tokens=total, dropped=dropped)
