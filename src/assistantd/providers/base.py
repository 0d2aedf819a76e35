"""The protocol every model provider implements, and the provider-neutral stream events.

A provider turns one chat request into an async stream of small events. It always streams,
even when nobody is watching, for two reasons: a run can be cancelled at once by closing the
stream (the executor's task is cancelled, which aborts the in-flight HTTP request), and deltas
can be forwarded to streaming clients as they arrive.

Errors are reported as :class:`ProviderError` subclasses, never as library exceptions, so the
executor maps them to a run's ``last_error`` in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ChatRequest:
    """An OpenAI Chat Completions request, in its JSON form."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of one tool call. ``index`` orders calls within the response; ``id`` and
    ``name`` arrive (at least) with the first fragment of a call."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Finish:
    """``reason`` as Chat Completions reports it: stop, length, tool_calls, content_filter."""

    reason: str


ChatEvent = TextDelta | ToolCallDelta | Usage | Finish


class ProviderError(Exception):
    """The model could not answer. ``retryable`` errors may succeed if tried again."""

    code = "server_error"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RateLimited(ProviderError):
    code = "rate_limit_exceeded"


class UpstreamUnavailable(ProviderError):
    """5xx, timeouts, refused connections and streams that broke off: worth another try."""

    retryable = True


class InvalidPrompt(ProviderError):
    """The upstream refused the request itself (4xx other than 429)."""

    code = "invalid_prompt"


class Provider(Protocol):
    """A source of chat completions."""

    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Stream the completion of ``request``.

        Yields any number of :class:`TextDelta` and :class:`ToolCallDelta`, then exactly one
        :class:`Finish`, with a :class:`Usage` before or after it when the model reports one.
        Raises :class:`ProviderError` on failure. Closing the iterator (or cancelling the task
        consuming it) aborts the request.
        """
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this provider's model (an estimate is acceptable)."""
        ...

    @property
    def context_window(self) -> int:
        """How many tokens of prompt plus completion the model accepts."""
        ...

    async def close(self) -> None:
        """Release connections or model memory."""
        ...
