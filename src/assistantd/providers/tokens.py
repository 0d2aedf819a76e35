"""Token counting that works offline: bpe-openai's o200k/cl100k tables ship in its wheel."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import bpe_openai


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    return bpe_openai.get_encoding(name)


def count(text: str, encoding: str = "o200k_base") -> int:
    if not text:
        return 0
    return len(_encoding(encoding).encode(text))
