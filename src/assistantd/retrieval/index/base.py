"""What a chunk index must do. Two implementations share one contract suite
(``tests/contract/test_index.py``): ``sqlite.SQLiteIndex`` and ``postgres.PostgresIndex``.

Chunks are grouped by *generation*: an opaque id unique to one attachment of one file to one
vector store. Re-attaching a file starts a new generation, and removing one never touches
another, so a late clean-up cannot delete the chunks of a newer attachment. Searches say which
generations they may return (the completed files the database knows), so chunks that are
being written, or waiting to be purged, are never seen.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Chunk:
    seq: int
    text: str
    vector: Vector | None = None


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    file_id: str
    generation: str
    seq: int
    text: str
    score: float
    """Cosine similarity (vector search) or the engine's relevance, higher is better."""


class Index(Protocol):
    vectors: bool
    """Whether this index can store and search vectors."""

    async def start(self) -> None:
        """Create what is missing (idempotent)."""
        ...

    async def close(self) -> None: ...

    async def add(
        self,
        store_id: str,
        file_id: str,
        generation: str,
        chunks: Sequence[Chunk],
        model: str | None,
    ) -> None:
        """Append chunks; ``model`` names the vector space of their vectors (if any)."""
        ...

    async def delete_generation(self, generation: str) -> None: ...

    async def delete_store(self, store_id: str) -> None: ...

    async def keyword_search(
        self, store_id: str, terms: Sequence[str], k: int, generations: Collection[str]
    ) -> list[Hit]:
        """Chunks matching any of ``terms`` (already normalised words), best first."""
        ...

    async def vector_search(
        self,
        store_id: str,
        vector: Vector,
        model: str,
        k: int,
        generations: Collection[str],
    ) -> list[Hit]:
        """Nearest chunks by cosine similarity among those embedded by ``model``."""
        ...

    async def count(self, store_id: str, generation: str | None = None) -> int: ...
