"""Token windows over a stream of text segments.

A chunk is at most ``max_tokens`` tokens (o200k, the tokenizer of current OpenAI models) and
overlaps the previous one by ``overlap`` tokens, as OpenAI's static strategy describes; ``auto``
is 800 / 400. The text arrives in segments; a window may span segment boundaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from assistantd.providers.tokens import _encoding

AUTO_MAX_TOKENS = 800
AUTO_OVERLAP = 400
ENCODING = "o200k_base"


@dataclass(frozen=True)
class Strategy:
    max_tokens: int = AUTO_MAX_TOKENS
    overlap: int = AUTO_OVERLAP

    @classmethod
    def from_wire(cls, value: dict[str, object] | None) -> Strategy:
        if value and value.get("type") == "static":
            static = value["static"]
            assert isinstance(static, dict)
            return cls(int(static["max_chunk_size_tokens"]), int(static["chunk_overlap_tokens"]))
        return cls()

    def to_wire(self) -> dict[str, object]:
        # The response union has no "auto" variant: auto is reported as the static it means.
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": self.max_tokens,
                "chunk_overlap_tokens": self.overlap,
            },
        }


def chunk_texts(texts: Iterable[str], strategy: Strategy) -> Iterator[str]:
    """Windows of ``strategy.max_tokens`` tokens, each ``max - overlap`` after the last."""
    enc = _encoding(ENCODING)
    step = max(1, strategy.max_tokens - strategy.overlap)
    tokens: list[int] = []
    emitted_to = 0  # tokens[:emitted_to] already ended a chunk
    for text in texts:
        tokens += enc.encode_ordinary(text)
        while len(tokens) >= strategy.max_tokens:
            yield _decode(enc, tokens[: strategy.max_tokens])
            emitted_to = strategy.max_tokens - step
            tokens = tokens[step:]
    # The tail: only when it holds tokens no chunk has shown yet.
    if tokens and (len(tokens) > emitted_to or emitted_to == 0):
        text = _decode(enc, tokens)
        if text.strip():
            yield text


def _decode(enc: object, tokens: list[int]) -> str:
    # A window may start or end inside a multi-byte character: drop the partial bytes.
    data: bytes = enc.decode_bytes(tokens)  # type: ignore[attr-defined]
    return data.decode("utf-8", errors="ignore")
