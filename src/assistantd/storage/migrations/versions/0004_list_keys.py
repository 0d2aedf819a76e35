"""Key every listed table by its list's scope: PRIMARY KEY (scope, id), id unique on its own.

A list page is ``WHERE <scope> = ? ORDER BY id LIMIT n``. With the primary key on ``id``
alone, PostgreSQL could also answer it by walking the primary key backwards and filtering
the scope, and it did so whenever the statistics said the scope was common: on a thread whose
runs are older than other threads' runs, that walk reads every newer row of the table first.
Now the only b-tree that returns rows in ``id`` order is the scope's own key; lookups by id
alone go through ``uq_<table>_id``, which on PostgreSQL uses ``varchar_pattern_ops``: it
answers ``id = ?`` (and ``IN``) and enforces uniqueness, but cannot return rows in ``id``
order, so no plan can walk it for a list. See docs/architecture.md (Storage).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# table -> (the scope of its lists, the (scope, id) index that the new key replaces)
_REKEYED = {
    "assistants": ("project_id", "ix_assistants_project_id_id"),
    "messages": ("thread_id", "ix_messages_thread_id_id"),
    "runs": ("thread_id", "ix_runs_thread_id_id"),
    "run_steps": ("run_id", "ix_run_steps_run_id_id"),
    "files": ("project_id", "ix_files_project_id_id"),
    "vector_stores": ("project_id", "ix_vector_stores_project_id_id"),
}

_ACTIVE = "status IN ('queued', 'in_progress', 'requires_action', 'cancelling')"


def _runs_partial_indexes(create: bool) -> None:
    """SQLite rebuilds a table to change its key; its partial indexes are dropped first and
    made again afterwards rather than trusting reflection to keep their WHERE clauses."""
    if create:
        op.create_index(
            "uq_runs_active_thread",
            "runs",
            ["thread_id"],
            unique=True,
            sqlite_where=sa.text(_ACTIVE),
            postgresql_where=sa.text(_ACTIVE),
        )
        op.create_index(
            "ix_runs_active_status",
            "runs",
            ["status", "id"],
            sqlite_where=sa.text(_ACTIVE),
            postgresql_where=sa.text(_ACTIVE),
        )
    else:
        op.drop_index("ix_runs_active_status", table_name="runs")
        op.drop_index("uq_runs_active_thread", table_name="runs")


def _rekey(table: str, columns: list[str]) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite and table == "runs":
        _runs_partial_indexes(create=False)
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(f"pk_{table}", type_="primary")
        batch.create_primary_key(f"pk_{table}", columns)
    if sqlite and table == "runs":
        _runs_partial_indexes(create=True)


def upgrade() -> None:
    for table, (scope, replaced) in _REKEYED.items():
        op.create_index(
            f"uq_{table}_id",
            table,
            ["id"],
            unique=True,
            postgresql_ops={"id": "varchar_pattern_ops"},
        )
        op.drop_index(replaced, table_name=table)
        _rekey(table, [scope, "id"])
    # A batch's files, unfiltered (the filtered list has (batch_id, status, id)).
    op.create_index("ix_vector_store_files_batch_id_id", "vector_store_files", ["batch_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_vector_store_files_batch_id_id", table_name="vector_store_files")
    for table, (scope, replaced) in _REKEYED.items():
        _rekey(table, ["id"])
        op.create_index(replaced, table, [scope, "id"])
        op.drop_index(f"uq_{table}_id", table_name=table)
