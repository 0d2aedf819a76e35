"""Logging set-up: text for a terminal, or one JSON object per line for a log pipeline.

Every record carries the id of the request it was logged in (``request_id``, the
``x-request-id`` the client also sees) and of the run being executed (``run_id``), taken from
context variables: ``app.py`` binds the request, the run executor binds the run. asyncio copies
context into each task, so a run's task and everything it awaits see its id and nothing else's.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

request_id: ContextVar[str | None] = ContextVar("assistantd_request_id", default=None)
run_id: ContextVar[str | None] = ContextVar("assistantd_run_id", default=None)

_CONTEXT_FIELDS = ("request_id", "run_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@contextmanager
def bind_request(value: str) -> Iterator[None]:
    """Log records made inside the block carry ``request_id=value``."""
    token = request_id.set(value)
    try:
        yield
    finally:
        request_id.reset(token)


@contextmanager
def bind_run(value: str) -> Iterator[None]:
    """Log records made inside the block carry ``run_id=value``."""
    token = run_id.set(value)
    try:
        yield
    finally:
        run_id.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record (an id passed in ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id), ("run_id", run_id)):
            value = var.get()
            if value is not None and getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format, with ``[request_id=... run_id=...]`` when bound."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        ids = [f"{k}={v}" for k in _CONTEXT_FIELDS if (v := getattr(record, k, None))]
        return f"{line} [{' '.join(ids)}]" if ids else line


class JSONLineFormatter(OrjsonFormatter):
    """``{"time", "level", "logger", "message", ...extra fields}``, one object per line.

    ``time`` is ISO 8601 in UTC with milliseconds. Fields given with ``extra=`` (the access
    line's ``method``, ``route``, ``status``, ``duration_ms``; the bound ids) follow; a
    traceback is in ``exc_info``. Encoded with orjson (already a dependency): about three
    times faster than the standard library's encoder here (``bench/ops_overhead.py``).
    """

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            # uvicorn adds a `color_message` copy of its messages, with ANSI codes.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)


def configure(log_format: str, level: str) -> None:
    """Send every logger's records (assistantd's, uvicorn's, libraries') to stderr in
    ``log_format`` (``text`` or ``json``). Replaces whatever handlers the root logger had.
    An unknown ``level`` raises ``ValueError``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    formatter: logging.Formatter = JSONLineFormatter() if log_format == "json" else TextFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.setLevel(level.upper())
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
