"""Settings, read from ``ASSISTANTD_*`` environment variables (and an optional ``.env`` file).

No instance exists at import time: ``Settings()`` is built by the CLI or by the tests and passed
down, so two servers with different settings can live in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistantd.storage.db import DEFAULT_SQLITE_CACHE_KIB


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "assistantd"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANTD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    """Blobs (uploaded files) and, by default, the SQLite database live here."""

    database_url: str | None = None
    """SQLAlchemy async URL. Default: ``sqlite+aiosqlite:///<data_dir>/assistantd.db``."""

    sqlite_cache_kib: int = Field(default=DEFAULT_SQLITE_CACHE_KIB, ge=16)
    """Page cache of each SQLite connection, in KiB (SQLite's own default is 2000). Up to 15
    pooled connections each fill theirs."""

    redis_url: str | None = None
    """``redis://...``: with a PostgreSQL database, switches on the distributed mode (run and
    ingestion jobs through the task queue, run events through Redis Streams)."""

    api_key: str | None = None
    """A key accepted for the default project, for single-user setups."""

    upstream_base_url: str | None = None
    """An OpenAI-compatible endpoint (``.../v1``) that serves the models."""
    upstream_api_key: str | None = None
    default_model: str | None = None
    """The upstream model for names with no route; unset passes the requested name through."""
    upstream_context_window: int = 128_000
    """Tokens the upstream model accepts; ``truncation_strategy: auto`` fits the prompt to it."""
    upstream_timeout_seconds: float = 120.0
    model_routes: dict[str, str] = Field(default_factory=dict)
    """JSON map of model name to ``upstream:<model>`` or ``local``, e.g.
    ``{"gpt-4o": "upstream:llama3.1:8b", "tiny": "local"}``."""

    host: str = "127.0.0.1"
    port: int = 8000

    run_expiry_seconds: int = 600
    """How long a run may stay active (OpenAI: 10 minutes) before it expires."""

    poll_after_ms: int = 100
    """Sent as ``openai-poll-after-ms`` so the SDK's poll helpers do not sleep a whole second."""

    run_lease_seconds: int = 15
    """A worker holds a run this long between heartbeats; a dead worker's run is taken over
    once its lease runs out."""

    run_concurrency: int = 64
    """Runs one worker process executes at once."""

    upstream_max_attempts: int = 3
    """Tries per model call on 5xx, timeouts and broken streams, with backoff between them."""

    embeddings: str = "local"
    """Where vector-store embeddings come from: ``local`` (the offline all-MiniLM-L6-v2, when
    installed; otherwise keyword-only), ``upstream`` (``/v1/embeddings`` of the upstream) or
    ``none`` (keyword-only retrieval)."""

    embedding_model: str = "text-embedding-3-small"
    """The model asked of the upstream's ``/v1/embeddings`` when ``embeddings`` is ``upstream``."""

    ingest_concurrency: int = 2
    """Files one worker process reads, chunks and embeds at once."""

    sandbox_python_env: Path | None = None
    """The Python environment code_interpreter runs in (default: ``./.venv-sandbox``, which
    ``scripts/sandbox-env`` creates)."""

    code_interpreter_timeout_seconds: float = 60.0
    """Wall time of one code_interpreter execution; past it the session's state is lost."""

    rate_limit: str | None = None
    """Requests one API key may make, in the ``limits`` notation (``600/minute``,
    ``20/second;600/minute``); unset: no limit. Over it: 429 with ``retry-after``."""

    run_rate_limit: str | None = None
    """Runs one API key may create (create run, create thread and run); same notation."""

    max_active_runs_per_project: int = 1000
    """Runs of one project that may be active (queued to cancelling) at once; 0: no limit."""

    max_streams_per_key: int = 1000
    """Run event streams one API key may hold open at once; 0: no limit."""

    body_timeout_seconds: float = 30.0
    """Time a client has to send a request body, plus a second per ``body_min_rate`` bytes."""

    body_min_rate: int = 16384
    """Bytes per second a slow request body must keep up, past ``body_timeout_seconds``."""

    send_timeout_seconds: float = 60.0
    """A response write that cannot go out for this long (the client stopped reading) ends
    the response."""

    keep_alive_timeout_seconds: int = 5
    """An idle keep-alive connection is closed after this long (uvicorn's timeout)."""

    @field_validator("rate_limit", "run_rate_limit")
    @classmethod
    def _rate_limit_notation(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            try:
                items = parse_many(value)
            except ValueError:
                items = []
            if not items or any(item.amount < 1 for item in items):
                raise ValueError(
                    f"{value!r} is not a rate limit such as '600/minute' or '20/second;600/minute'"
                )
            return value
        return None

    log_level: str = "info"

    log_format: Literal["text", "json"] = "text"
    """``text`` for a person at a terminal; ``json``: one JSON object per line, with the
    request and run ids (see docs/deployment.md)."""

    metrics: bool = True
    """Serve Prometheus metrics at ``/metrics``, without a key."""

    metrics_port: int | None = None
    """``assistantd worker`` serves its metrics at ``http://<host>:<metrics_port>/metrics``
    (a worker has no API port); unset: it serves none."""

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'assistantd.db'}"
