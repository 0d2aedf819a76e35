"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from assistantd.storage.db import Database

_SCRIPTS = Path(__file__).parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def known_revisions() -> frozenset[str]:
    """Every revision this build ships (a database at any other is from a newer build)."""
    return frozenset(s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions())


async def upgrade(db: Database, revision: str = "head") -> None:
    def _run(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    async with db.write() as conn:
        await conn.run_sync(_run)


async def downgrade(db: Database, revision: str) -> None:
    def _run(connection: Connection) -> None:
        command.downgrade(_config(connection), revision)

    async with db.write() as conn:
        await conn.run_sync(_run)


async def current_revision(db: Database) -> str | None:
    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.read() as conn:
        return await conn.run_sync(_read)
