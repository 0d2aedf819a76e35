"""Hybrid search: keyword (BM25 / full-text) and vector similarity, fused into one 0..1 score.

Each query runs both searches for ``CANDIDATES`` chunks. Keyword relevance is divided by the
best keyword score of that query (so the best keyword match scores 1); vector relevance is the
cosine similarity, clipped at 0. The fused score is their weighted sum (``VECTOR_WEIGHT``), a
"relative score fusion": unlike rank fusion it keeps how much better one match is than the
next, and it is always in 0..1, which ``score_threshold`` needs. With no embedder the score is
the keyword relevance alone. Several queries merge by the best score each chunk got.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from assistantd.retrieval.embedders import Embedder
from assistantd.retrieval.index.base import Hit, Index

CANDIDATES = 50
# Chosen on bench/retrieval.py's question set (docs/benchmarks.md): keyword relevance leads,
# similarity reorders close calls and finds what shares no word with the question.
VECTOR_WEIGHT = 0.3
Mode = Literal["hybrid", "vector", "keyword"]

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORD_TEXT = """a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in into is
it its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves tell please find
show give explain describe"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Scored:
    hit: Hit
    score: float
    store_id: str


def terms(query: str) -> list[str]:
    """Lower-cased words without stopwords (all words if only stopwords remain)."""
    words = [w.lower() for w in _WORD.findall(query)]
    kept = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(kept or words))


def rewrite(query: str) -> str:
    """``rewrite_query``: the query as search terms, without question words and filler."""
    kept = terms(query)
    return " ".join(kept) if kept else query.strip()


class Searcher:
    def __init__(self, index: Index, embedder: Embedder | None) -> None:
        self.index = index
        self.embedder = embedder

    @property
    def has_vectors(self) -> bool:
        return self.embedder is not None and self.index.vectors

    async def search(
        self,
        scopes: Sequence[tuple[str, Collection[str]]],
        queries: Sequence[str],
        k: int,
        *,
        threshold: float = 0.0,
        mode: Mode = "hybrid",
        vector_weight: float = VECTOR_WEIGHT,
    ) -> list[Scored]:
        """The ``k`` best chunks over ``scopes`` (store id, generations it may return)."""
        use_vectors = self.has_vectors and mode != "keyword"
        use_keywords = mode != "vector" or not use_vectors
        vectors: list[Any] = [None] * len(queries)
        if use_vectors:
            assert self.embedder is not None
            vectors = list(await self.embedder.embed(list(queries)))
        best: dict[tuple[str, int], Scored] = {}
        for store_id, generations in scopes:
            if not generations:
                continue
            for query, vector in zip(queries, vectors, strict=True):
                kw: list[Hit] = []
                if use_keywords:
                    kw = await self.index.keyword_search(
                        store_id, terms(query), CANDIDATES, generations
                    )
                vec: list[Hit] = []
                if use_vectors:
                    assert self.embedder is not None
                    vec = await self.index.vector_search(
                        store_id, vector, self.embedder.name, CANDIDATES, generations
                    )
                for scored in _fuse(store_id, kw, vec, use_keywords, use_vectors, vector_weight):
                    key = (store_id, scored.hit.chunk_id)
                    if key not in best or best[key].score < scored.score:
                        best[key] = scored
        ranked = sorted(best.values(), key=lambda s: (-s.score, s.hit.file_id, s.hit.seq))
        return [s for s in ranked if s.score >= threshold][:k]


def _fuse(
    store_id: str,
    kw: list[Hit],
    vec: list[Hit],
    use_keywords: bool,
    use_vectors: bool,
    vector_weight: float,
) -> list[Scored]:
    top_kw = max((h.score for h in kw), default=0.0)
    kw_score = {h.chunk_id: (h.score / top_kw if top_kw > 0 else 0.0) for h in kw}
    vec_score = {h.chunk_id: max(0.0, min(1.0, h.score)) for h in vec}
    hits = {h.chunk_id: h for h in [*kw, *vec]}
    if use_keywords and use_vectors:
        w = vector_weight
    elif use_vectors:
        w = 1.0
    else:
        w = 0.0
    out = []
    for chunk_id, hit in hits.items():
        score = w * vec_score.get(chunk_id, 0.0) + (1 - w) * kw_score.get(chunk_id, 0.0)
        out.append(Scored(hit, round(min(1.0, max(0.0, score)), 6), store_id))
    return out


# -- attribute filters ---------------------------------------------------------------------------


def matches(filters: dict[str, Any] | None, attributes: dict[str, Any] | None) -> bool:
    """Evaluate a ``ComparisonFilter`` / ``CompoundFilter`` against a file's attributes."""
    if not filters:
        return True
    attrs = attributes or {}
    kind = filters["type"]
    if kind == "and":
        return all(matches(f, attrs) for f in filters["filters"])
    if kind == "or":
        return any(matches(f, attrs) for f in filters["filters"])
    key, value = filters["key"], filters["value"]
    if key not in attrs:
        return kind in ("ne", "nin")
    have = attrs[key]
    if kind == "eq":
        return bool(_same(have, value))
    if kind == "ne":
        return not _same(have, value)
    if kind in ("in", "nin"):
        found = isinstance(value, list) and any(_same(have, v) for v in value)
        return found if kind == "in" else not found
    if isinstance(have, bool) or isinstance(value, bool):
        return False
    comparable = (isinstance(have, int | float) and isinstance(value, int | float)) or (
        isinstance(have, str) and isinstance(value, str)
    )
    if not comparable:
        return False
    if kind == "gt":
        return bool(have > value)
    if kind == "gte":
        return bool(have >= value)
    if kind == "lt":
        return bool(have < value)
    return bool(have <= value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)
