"""Table definitions (SQLAlchemy Core). Migrations in migrations/versions create them; this
module is what queries are written against. Times are integer microseconds since the epoch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    event,
    false,
    literal_column,
    text,
)
from sqlalchemy.ext.compiler import compiles

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# BigInteger is INTEGER on SQLite (so it aliases rowid) and BIGINT elsewhere.
Seq = BigInteger().with_variant(Integer(), "sqlite")

tasks = Table(
    "tasks",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("task_type", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("args", LargeBinary, nullable=False),
    Column("kwargs", LargeBinary, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("interruptions", Integer, nullable=False, default=0),
    Column("timeout", Float, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("run_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("owner", String(64), nullable=True),
    Column("result", LargeBinary, nullable=True),
    Column("error", Text, nullable=True),
    Column("from_cache", Boolean, nullable=False, default=False),
    Column("idempotency_key", String(255), nullable=True, unique=True),
    # SHA-256 (hex) of the request that used idempotency_key (app/worker/idempotency.py).
    Column("idempotency_fingerprint", String(64), nullable=True),
    # Result cache (app/cache): the key is computed at submit time so identical tasks can
    # find each other durably; NULL means this task does not use the cache.
    Column("cache_key", String(128), nullable=True),
    Column("cache_ttl", Float, nullable=True),
    # Was `running` when its process died: runs only one at a time beside normal work
    # (cleared when it starts again). No Python-side default: bulk inserts name their columns.
    Column("suspect", Boolean, nullable=False, server_default=false()),
    # Times the task raised Retry (ran again without spending an attempt): at most
    # MAX_SNOOZES (app/bounds.py). Left to its default by inserts.
    Column("snoozes", Integer, nullable=False, server_default=text("0")),
    # Due tasks in claim order: every pending row is due (tasks for later are `scheduled`).
    Index(
        "ix_tasks_pending_order",
        "priority",
        "run_at",
        "seq",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "ix_tasks_pending_run_at",
        "run_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    # Tasks for later, by time: the stager moves the due ones to pending (app/worker/stager.py).
    Index(
        "ix_tasks_scheduled",
        "run_at",
        sqlite_where=text("status = 'scheduled'"),
        postgresql_where=text("status = 'scheduled'"),
    ),
    Index("ix_tasks_status_seq", "status", "seq"),
    Index(
        "ix_tasks_suspects",
        "priority",
        "run_at",
        "seq",
        sqlite_where=text("status = 'pending' AND suspect = 1"),
        postgresql_where=text("status = 'pending' AND suspect"),
    ),
    Index("ix_tasks_cache_key", "cache_key", sqlite_where=text("cache_key IS NOT NULL")),
    Index("ix_tasks_task_type_seq", "task_type", "seq"),
    # Finished tasks by status and when they finished: what retention deletes, oldest first,
    # and the throughput history (app/worker/throughput.py), both read as ranges of it
    # alone (every terminal status sets completed_at; a retry clears it).
    Index(
        "ix_tasks_finished",
        "status",
        "completed_at",
        sqlite_where=text("completed_at IS NOT NULL"),
        postgresql_where=text("completed_at IS NOT NULL"),
    ),
)

# How many tasks are in each status, kept by the triggers below in the same transaction as
# every change of `tasks` (whoever makes it), so counting costs one read of a few rows
# instead of a scan of the whole history. A status appears on its first task; nothing here
# names a status, so a new one is counted without a change.
task_counts = Table(
    "task_counts",
    metadata,
    Column("status", String(16), primary_key=True),
    Column("total", Integer, nullable=False),
    sqlite_with_rowid=False,
)

_COUNT_ONE_MORE = (
    "INSERT INTO task_counts (status, total) VALUES (NEW.status, 1) "
    "ON CONFLICT (status) DO UPDATE SET total = total + 1;"
)
_COUNT_ONE_LESS = "UPDATE task_counts SET total = total - 1 WHERE status = OLD.status;"
# The SQL of the triggers, as migration 0012 creates them (tests compare the two).
TASK_COUNT_TRIGGERS = (
    f"CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN {_COUNT_ONE_MORE} END",
    f"CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN {_COUNT_ONE_LESS} END",
    "CREATE TRIGGER tasks_count_status AFTER UPDATE OF status ON tasks "
    f"WHEN OLD.status IS NOT NEW.status BEGIN {_COUNT_ONE_LESS} {_COUNT_ONE_MORE} END",
)
for _trigger in TASK_COUNT_TRIGGERS:
    _ddl = DDL(_trigger)  # type: ignore[no-untyped-call]  # SQLAlchemy's stubs
    event.listen(tasks, "after_create", _ddl.execute_if(dialect="sqlite"))

task_attempts = Table(
    "task_attempts",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("task_id", String(64), ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("error_type", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("traceback", Text, nullable=True),
    Column("failed_at", BigInteger, nullable=False),
    # How the attempt ended: failed, snoozed (Retry) or aborted (Abort); see AttemptKind.
    Column("kind", String(16), nullable=False, server_default="failed"),
    Index("ix_task_attempts_task_id", "task_id", "attempt"),
)

events = Table(
    "events",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("task_id", String(64), nullable=False),
    Column("task_type", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("payload", JSON, nullable=False),
    # The payload's "group" (the task's metadata group), apart so a replay by group can use
    # an index; NULL for tasks without one.
    Column("task_group", Text, nullable=True),
    Index("ix_events_task_id", "task_id", "id"),
    Index("ix_events_created_at", "created_at"),
    Index(
        "ix_events_task_group",
        "task_group",
        "id",
        sqlite_where=text("task_group IS NOT NULL"),
        postgresql_where=text("task_group IS NOT NULL"),
    ),
    Index("ix_events_task_type", "task_type", "id"),
)


# Who owns the database: one row per living process (on SQLite at most one), with a heartbeat.
# A process refuses to start while another's row is alive, whatever became of the lock file.
owners = Table(
    "owners",
    metadata,
    Column("boot_id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    # "<kernel boot id>:<process start time>" on Linux: tells a live process from a reused pid.
    Column("process", String(128), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # PostgreSQL: the newest event id this process's log follower has read (reported at each
    # heartbeat); the pruner keeps every event after the lowest. NULL on SQLite.
    Column("events_seen", BigInteger, nullable=True),
)


def status_is(status: str) -> ColumnElement[bool]:
    """`status = '<literal>'`, inlined rather than bound: SQLite uses a partial index
    (WHERE status = 'pending') only when the query states the same literal."""
    return tasks.c.status == literal_column(f"'{status}'")


cache_entries = Table(
    "cache_entries",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("accessed_at", BigInteger, nullable=False),
    Index("ix_cache_entries_expires_at", "expires_at"),
    Index("ix_cache_entries_accessed_at", "accessed_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("endpoint", String(200), primary_key=True),
    Column("delivery_id", String(255), primary_key=True),
    Column("task_id", String(64), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index("ix_webhook_deliveries_received_at", "received_at"),
)

# Small durable values of the service itself, one integer per key (e.g. "session_version").
service_state = Table(
    "service_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)


# Periodic task types (app/worker/slots.py): one row per schedule, changed in the same
# transaction as the tasks of its slots. Every slot at or before `decided_until` has been
# queued or passed over by the missed-slot policy; `last_slot` is the latest one queued.
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("decided_until", BigInteger, nullable=False),
    Column("last_slot", BigInteger, nullable=True),
    Column("last_task_id", String(64), nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)


class IndexedTasks(TextClause):
    """`tasks INDEXED BY <index>` on SQLite; plain `tasks` elsewhere (PostgreSQL's planner
    keeps statistics and picks the partial index itself)."""

    inherit_cache = True


@compiles(IndexedTasks, "postgresql")
def _plain_tasks(_element: IndexedTasks, _compiler: Any, **_kw: Any) -> str:
    return "tasks"


def tasks_indexed_by(index_name: str) -> TextClause:
    """`tasks INDEXED BY <index>` for a FROM clause. Without ANALYZE statistics SQLite's
    planner prefers ix_tasks_status_seq for `status = 'pending'` and then sorts every pending
    row, so a claim or a next-due lookup would cost O(backlog); naming the partial index makes
    them read only the rows they need. (SQLite syntax; PostgreSQL gets `tasks`.)"""
    return IndexedTasks(f"tasks INDEXED BY {index_name}")
