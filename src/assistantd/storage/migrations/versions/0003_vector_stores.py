"""Vector stores, their files (ingestion jobs), file batches and index purges.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PENDING = "status = 'in_progress'"


def _id() -> sa.types.TypeEngine[str]:
    return sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "vector_stores",
        sa.Column("id", _id(), nullable=False),
        sa.Column("project_id", _id(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_active_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vector_stores"),
    )
    op.create_index("ix_vector_stores_project_id_id", "vector_stores", ["project_id", "id"])
    op.create_index("ix_vector_stores_expires_at", "vector_stores", ["expires_at"])

    op.create_table(
        "vector_store_files",
        sa.Column("vector_store_id", _id(), nullable=False),
        sa.Column("id", _id(), nullable=False),
        sa.Column("project_id", _id(), nullable=False),
        sa.Column("batch_id", _id(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("generation", sa.String(64), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("vector_store_id", "id", name="pk_vector_store_files"),
    )
    op.create_index(
        "ix_vector_store_files_vector_store_id_status_id",
        "vector_store_files",
        ["vector_store_id", "status", "id"],
    )
    op.create_index(
        "ix_vector_store_files_batch_id_status_id",
        "vector_store_files",
        ["batch_id", "status", "id"],
    )
    op.create_index(
        "ix_vector_store_files_project_id_id", "vector_store_files", ["project_id", "id"]
    )
    op.create_index(
        "ix_vector_store_files_pending",
        "vector_store_files",
        ["lease_expires_at"],
        sqlite_where=sa.text(_PENDING),
        postgresql_where=sa.text(_PENDING),
    )

    op.create_table(
        "vector_store_file_batches",
        sa.Column("id", _id(), nullable=False),
        sa.Column("project_id", _id(), nullable=False),
        sa.Column("vector_store_id", _id(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vector_store_file_batches"),
    )
    op.create_index(
        "ix_vector_store_file_batches_vector_store_id_id",
        "vector_store_file_batches",
        ["vector_store_id", "id"],
    )

    op.create_table(
        "index_purges",
        sa.Column("id", _id(), nullable=False),
        sa.Column("vector_store_id", _id(), nullable=False),
        sa.Column("generation", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_index_purges"),
    )


def downgrade() -> None:
    for name in (
        "index_purges",
        "vector_store_file_batches",
        "vector_store_files",
        "vector_stores",
    ):
        op.drop_table(name)
