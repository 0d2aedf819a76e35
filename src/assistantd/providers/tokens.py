"""Token counting that works offline: bpe-openai's o200k/cl100k tables ship in its wheel."""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    with warnings.catch_warnings():
        # bpe-openai reads its tables with importlib.resources' legacy API.
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai

        return bpe_openai.get_encoding(name)


def count(text: str, encoding: str = "o200k_base") -> int:
    if not text:
        return 0
    return len(_encoding(encoding).encode(text))
