"""Initial schema: projects, keys, assistants, threads, messages, runs, run steps.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ACTIVE = "status IN ('queued', 'in_progress', 'requires_action', 'cancelling')"


def _id() -> sa.types.TypeEngine[str]:
    return sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def _object_table(name: str, *extra: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("id", _id(), nullable=False),
        sa.Column("project_id", _id(), nullable=False),
        *extra,
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", _id(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.UniqueConstraint("name", name="uq_projects_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", _id(), nullable=False),
        sa.Column("project_id", _id(), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("hint", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    )
    op.create_index("ix_api_keys_project_id", "api_keys", ["project_id"])

    _object_table("assistants")
    op.create_index("ix_assistants_project_id_id", "assistants", ["project_id", "id"])
    _object_table("threads")
    op.create_index("ix_threads_project_id_id", "threads", ["project_id", "id"])

    _object_table(
        "messages",
        sa.Column("thread_id", _id(), nullable=False),
        sa.Column("run_id", _id(), nullable=True),
    )
    op.create_index("ix_messages_thread_id_id", "messages", ["thread_id", "id"])
    op.create_index("ix_messages_thread_id_run_id_id", "messages", ["thread_id", "run_id", "id"])

    _object_table(
        "runs",
        sa.Column("thread_id", _id(), nullable=False),
        sa.Column("assistant_id", _id(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_index("ix_runs_thread_id_id", "runs", ["thread_id", "id"])
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

    _object_table(
        "run_steps",
        sa.Column("thread_id", _id(), nullable=False),
        sa.Column("run_id", _id(), nullable=False),
        sa.Column("pending_usage", sa.Text(), nullable=True),
    )
    op.create_index("ix_run_steps_run_id_id", "run_steps", ["run_id", "id"])
    op.create_index("ix_run_steps_thread_id", "run_steps", ["thread_id"])


def downgrade() -> None:
    for name in ("run_steps", "runs", "messages", "threads", "assistants", "api_keys", "projects"):
        op.drop_table(name)
