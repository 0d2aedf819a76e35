"""Any OpenAI-compatible Chat Completions endpoint: vLLM, Ollama, llama.cpp's server,
LM Studio, hosted providers. Uses the official ``openai`` async client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai

from assistantd.providers import tokens
from assistantd.providers.base import (
    ChatEvent,
    ChatRequest,
    Finish,
    InvalidPrompt,
    ProviderError,
    RateLimited,
    TextDelta,
    ToolCallDelta,
    UpstreamUnavailable,
    Usage,
)


def chat_kwargs(request: ChatRequest) -> dict[str, Any]:
    """The Chat Completions request body (minus ``stream``) for ``request``."""
    kwargs: dict[str, Any] = {"model": request.model, "messages": request.messages}
    if request.tools:
        kwargs["tools"] = request.tools
        if request.tool_choice is not None:
            kwargs["tool_choice"] = request.tool_choice
        if request.parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        kwargs["response_format"] = request.response_format
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.top_p is not None:
        kwargs["top_p"] = request.top_p
    if request.max_tokens is not None:
        kwargs["max_tokens"] = request.max_tokens
    return kwargs


class OpenAICompatibleProvider:
    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        *,
        context_window: int = 128_000,
        timeout: float = 120.0,
    ) -> None:
        self.name = name
        self._context_window = context_window
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            # The executor owns retries (with backoff and a run-level budget).
            max_retries=0,
            timeout=timeout,
        )

    @property
    def context_window(self) -> int:
        return self._context_window

    def count_tokens(self, text: str) -> int:
        return tokens.count(text)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        finish: str | None = None
        try:
            stream = await self.client.chat.completions.create(
                **chat_kwargs(request), stream=True, stream_options={"include_usage": True}
            )
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        yield Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    delta = choice.delta
                    if delta is not None:
                        if delta.content:
                            yield TextDelta(delta.content)
                        for call in delta.tool_calls or []:
                            fn = call.function
                            yield ToolCallDelta(
                                index=call.index,
                                id=call.id,
                                name=fn.name if fn is not None else None,
                                arguments=(fn.arguments or "") if fn is not None else "",
                            )
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except ProviderError:
            raise
        except openai.RateLimitError as exc:
            raise RateLimited(
                f"The model provider is rate limiting requests: {_detail(exc)}"
            ) from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise UpstreamUnavailable(
                    f"The model provider answered {exc.status_code}: {_detail(exc)}"
                ) from exc
            raise InvalidPrompt(
                f"The model provider refused the request ({exc.status_code}): {_detail(exc)}"
            ) from exc
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise UpstreamUnavailable(f"Could not reach the model provider: {exc}") from exc
        except (openai.APIError, ValueError) as exc:
            # Undecodable chunks, broken SSE framing, truncated bodies.
            raise UpstreamUnavailable(
                f"The model provider sent a malformed response: {type(exc).__name__}: {exc}"
            ) from exc
        if finish is None:
            raise UpstreamUnavailable("The model provider's stream ended before it finished.")
        yield Finish(finish)

    async def close(self) -> None:
        await self.client.close()


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return str(message)
    return str(exc.message)
