"""A long finished history, written straight into a migrated database as a year of work
would have left it (one INSERT ... SELECT: thousands of rows in milliseconds), on SQLite (a
file path, or its URL) or on PostgreSQL (its URL)."""

from __future__ import annotations

from app.clock import now_us
from tests.direct_sql import Database, is_postgres, run_sql

DAY_US = 86_400 * 1_000_000
# The tasks' columns and the row each number i makes, per backend (SQLite's blobs and
# string concatenation are x'..' and ||; PostgreSQL's are '\x..'::bytea and a series).
_COLUMNS = (
    "INSERT INTO tasks (id, task_type, status, priority, args, kwargs, metadata, "
    "progress, attempts, max_attempts, interruptions, created_at, run_at, "
    "completed_at, from_cache, suspect) "
)
_SQLITE_ROWS = (
    "WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n WHERE i < {last}) "
    "SELECT '{status}' || '-' || i, 'demo.add', '{status}', 0, x'90', x'80', '{{}}', 1.0, "
    "1, 1, 0, {done}, {done}, {done}, 0, 0 FROM n"
)
_POSTGRES_ROWS = (
    "SELECT '{status}-' || i, 'demo.add', '{status}', 0, '\\x90'::bytea, '\\x80'::bytea, "
    "'{{}}', 1.0, 1, 1, 0, {done}, {done}, {done}, false, false "
    "FROM generate_series({first}, {last}) AS i"
)


def add_finished(
    database: Database, count: int, *, status: str = "completed", age_us: int = DAY_US
) -> None:
    """`count` tasks of `status` that finished `age_us` ago, each with one failed attempt
    and one event (ids `<status>-<n>`, numbered after the rows already there)."""
    first = count_rows(database, "tasks")
    values = {
        "first": first + 1,
        "last": first + count,
        "status": status,
        "done": now_us() - age_us,
    }
    rows = _POSTGRES_ROWS if is_postgres(database) else _SQLITE_ROWS
    run_sql(database, _COLUMNS + rows.format(**values))
    newest = f"(SELECT max(seq) FROM tasks) - {count}"
    run_sql(
        database,
        "INSERT INTO task_attempts (task_id, attempt, error_type, message, failed_at) "
        f"SELECT id, 1, 'E', 'm', completed_at FROM tasks WHERE seq > {newest}",
    )
    run_sql(
        database,
        "INSERT INTO events (type, task_id, task_type, created_at, payload) "
        "SELECT 'task.' || status, id, task_type, completed_at, '{}' FROM tasks "
        f"WHERE seq > {newest}",
    )


def count_rows(database: Database, table: str, where: str = "1 = 1") -> int:
    return int(str(run_sql(database, f"SELECT count(*) FROM {table} WHERE {where}")[0][0]))
