"""Prefixed object ids that sort in creation order.

An id is ``<prefix><24 chars>``: 10 base32 characters of the millisecond clock followed by
14 characters of a counter that starts at a random value each millisecond and only ever
increases within a process. Because the id sorts like the creation order, list endpoints use
the id itself as the keyset: a cursor never needs the object it names to still exist, and
objects created in the same second keep their order (``created_at`` has 1 s resolution).
The alphabet is ``0-9a-v`` so that byte order, ASCII order and common collations agree.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
_TIME_CHARS = 10
_RAND_CHARS = 14
_RAND_BITS = _RAND_CHARS * 5
_RAND_MAX = (1 << _RAND_BITS) - 1

ASSISTANT = "asst_"
THREAD = "thread_"
MESSAGE = "msg_"
RUN = "run_"
STEP = "step_"
TOOL_CALL = "call_"
FILE = "file-"
VECTOR_STORE = "vs_"
FILE_BATCH = "vsfb_"
PROJECT = "proj_"
API_KEY = "key_"


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class _Generator:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def next(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._last_ms:
                self._last_ms = ms
                # Leave headroom so the counter cannot overflow within one millisecond.
                self._counter = secrets.randbits(_RAND_BITS - 2)
            else:
                ms = self._last_ms
                self._counter += 1 + secrets.randbits(8)
                if self._counter > _RAND_MAX:
                    # Borrow the next millisecond rather than break monotonicity.
                    self._last_ms = ms = ms + 1
                    self._counter = secrets.randbits(_RAND_BITS - 2)
            return _encode(ms, _TIME_CHARS) + _encode(self._counter, _RAND_CHARS)


_generator = _Generator()


def new_id(prefix: str) -> str:
    """Return a new id with ``prefix``, greater than every id this process made before."""
    return prefix + _generator.next()


def new_secret(nbytes: int = 32) -> str:
    """Return an API key secret (shown once, stored only as a hash)."""
    return "sk-ad-" + secrets.token_urlsafe(nbytes)
