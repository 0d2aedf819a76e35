"""Table definitions (SQLAlchemy Core).

Every API object is stored whole, as the JSON text of its wire form, in ``body``: reading an
object is one indexed lookup and no re-assembly, and a list page can be written to the client
by splicing stored bodies together. The other columns are copies of the few fields that queries
filter, order or lock on; ``storage/objects.py`` derives them from the body on every write, so
the two cannot drift. Core tables rather than ORM classes: the repositories only ever move whole
rows, and Core keeps them free of identity-map and lazy-loading costs.

A table that is listed is keyed by its list's scope and the id: ``PRIMARY KEY (thread_id, id)``
for runs and messages, ``(run_id, id)`` for run steps, ``(project_id, id)`` for assistants,
files and vector stores, ``(vector_store_id, id)`` for vector store files. A page is a range of
that one index, and no other index can return the rows in id order (``_unique_id``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Ids sort in creation order byte-wise; "C" collation makes PostgreSQL compare them that way
# whatever the database's locale is. SQLite always compares TEXT byte-wise.
IdType = String(64).with_variant(String(64, collation="C"), "postgresql")


def _unique_id(table: str) -> Index:
    """Lookups by id alone, on a table keyed by (scope, id).

    On PostgreSQL the index uses ``varchar_pattern_ops``: it answers ``id = ?`` and ``IN``
    and keeps ids unique, but its operator family is not the one ``ORDER BY id`` sorts with,
    so it can never hand rows back in id order. A list page therefore has exactly one ordered
    path, the scope's own key; with an ordinary b-tree on ``id`` the planner may walk it
    backwards and filter the scope, reading every newer row of other scopes first.
    """
    return Index(f"uq_{table}_id", "id", unique=True, postgresql_ops={"id": "varchar_pattern_ops"})


ACTIVE_RUN_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")
_ACTIVE_SQL = "status IN ('queued', 'in_progress', 'requires_action', 'cancelling')"

projects = Table(
    "projects",
    metadata,
    Column("id", IdType, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", IdType, primary_key=True),
    Column("project_id", IdType, nullable=False, index=True),
    Column("secret_hash", String(128), nullable=False, unique=True),
    Column("hint", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

assistants = Table(
    "assistants",
    metadata,
    Column("id", IdType, nullable=False),
    Column("project_id", IdType, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("project_id", "id"),
    _unique_id("assistants"),
)

threads = Table(
    "threads",
    metadata,
    Column("id", IdType, primary_key=True),
    Column("project_id", IdType, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Index(None, "project_id", "id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", IdType, nullable=False),
    Column("project_id", IdType, nullable=False),
    Column("thread_id", IdType, nullable=False),
    Column("run_id", IdType, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("thread_id", "id"),
    _unique_id("messages"),
    Index(None, "thread_id", "run_id", "id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", IdType, nullable=False),
    Column("project_id", IdType, nullable=False),
    Column("thread_id", IdType, nullable=False),
    Column("assistant_id", IdType, nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    # Which worker holds the run and until when; an expired lease lets another take it over.
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    # Tokens used by the run's model calls so far: `usage` on the wire stays null until the
    # run is terminal, yet a run resumed after a crash must keep counting from here.
    Column("prompt_tokens", BigInteger, nullable=False, server_default="0"),
    Column("completion_tokens", BigInteger, nullable=False, server_default="0"),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("thread_id", "id"),
    _unique_id("runs"),
    # The database, not process memory, guarantees one active run per thread.
    Index(
        "uq_runs_active_thread",
        "thread_id",
        unique=True,
        sqlite_where=text(_ACTIVE_SQL),
        postgresql_where=text(_ACTIVE_SQL),
    ),
    Index(
        "ix_runs_active_status",
        "status",
        "id",
        sqlite_where=text(_ACTIVE_SQL),
        postgresql_where=text(_ACTIVE_SQL),
    ),
)

run_steps = Table(
    "run_steps",
    metadata,
    Column("id", IdType, nullable=False),
    Column("project_id", IdType, nullable=False),
    Column("thread_id", IdType, nullable=False),
    Column("run_id", IdType, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # The usage of the model call that made a step waiting for tool outputs; it is shown
    # once the step completes (a step's `usage` is null while it is in progress).
    Column("pending_usage", Text, nullable=True),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("run_id", "id"),
    _unique_id("run_steps"),
    Index(None, "thread_id"),
)

files = Table(
    "files",
    metadata,
    Column("id", IdType, nullable=False),
    Column("project_id", IdType, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    # Where the bytes live in the blob store; never derived from the client's filename.
    Column("blob_key", String(256), nullable=False),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("project_id", "id"),
    _unique_id("files"),
    Index(None, "project_id", "purpose", "id"),
    Index(None, "expires_at"),
)

vector_stores = Table(
    "vector_stores",
    metadata,
    Column("id", IdType, nullable=False),
    Column("project_id", IdType, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Activity moves these without rewriting the body; reads lay them over it.
    Column("last_active_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("project_id", "id"),
    _unique_id("vector_stores"),
    Index(None, "expires_at"),
)

# A file attached to a vector store; its id is the file's id, so the key is the pair. A row
# that is `in_progress` is also an ingestion job: a worker claims it with a lease, as runs are.
vector_store_files = Table(
    "vector_store_files",
    metadata,
    Column("vector_store_id", IdType, nullable=False),
    Column("id", IdType, nullable=False),
    Column("project_id", IdType, nullable=False),
    Column("batch_id", IdType, nullable=True),
    Column("status", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("usage_bytes", BigInteger, nullable=False, server_default="0"),
    # Names this attachment's chunks in the index (a re-attached file gets a new one).
    Column("generation", String(64), nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("vector_store_id", "id"),
    Index(None, "vector_store_id", "status", "id"),
    Index(None, "batch_id", "id"),
    Index(None, "batch_id", "status", "id"),
    Index(None, "project_id", "id"),
    Index(
        "ix_vector_store_files_pending",
        "lease_expires_at",
        sqlite_where=text("status = 'in_progress'"),
        postgresql_where=text("status = 'in_progress'"),
    ),
)

vector_store_file_batches = Table(
    "vector_store_file_batches",
    metadata,
    Column("id", IdType, primary_key=True),
    Column("project_id", IdType, nullable=False),
    Column("vector_store_id", IdType, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Index(None, "vector_store_id", "id"),
)

# Chunks to drop from the index: a detached attachment (`generation`) or a whole deleted store
# (`generation` null). Written in the transaction that detaches, carried out by the ingestion
# worker, so no crash can leave chunks behind.
index_purges = Table(
    "index_purges",
    metadata,
    Column("id", IdType, primary_key=True),
    Column("vector_store_id", IdType, nullable=False),
    Column("generation", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
