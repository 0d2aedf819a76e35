"""Settings, read from ``ASSISTANTD_*`` environment variables (and an optional ``.env`` file).

No instance exists at import time: ``Settings()`` is built by the CLI or by the tests and passed
down, so two servers with different settings can live in one process.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    api_key: str | None = None
    """A key accepted for the default project, for single-user setups."""

    upstream_base_url: str | None = None
    upstream_api_key: str | None = None
    default_model: str | None = None

    host: str = "127.0.0.1"
    port: int = 8000

    run_expiry_seconds: int = 600
    """How long a run may stay active (OpenAI: 10 minutes) before it expires."""

    poll_after_ms: int = 100
    """Sent as ``openai-poll-after-ms`` so the SDK's poll helpers do not sleep a whole second."""

    log_level: str = "info"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'assistantd.db'}"
