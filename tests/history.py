"""A long finished history, written straight into a migrated database file as a year of work
would have left it (one INSERT ... SELECT: thousands of rows in milliseconds)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from app.clock import now_us

DAY_US = 86_400 * 1_000_000


def add_finished(
    database: Path, count: int, *, status: str = "completed", age_us: int = DAY_US
) -> None:
    """`count` tasks of `status` that finished `age_us` ago, each with one failed attempt
    and one event (ids `<status>-<n>`, numbered after the rows already there)."""
    with closing(sqlite3.connect(database)) as conn, conn:
        first = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        done = now_us() - age_us
        conn.execute(
            "INSERT INTO tasks (id, task_type, status, priority, args, kwargs, metadata, "
            "progress, attempts, max_attempts, interruptions, created_at, run_at, "
            "completed_at, from_cache, suspect) "
            "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "SELECT ? || '-' || i, 'demo.add', ?, 0, x'90', x'80', '{}', 1.0, 1, 1, 0, "
            "?, ?, ?, 0, 0 FROM n",
            (first + 1, first + count, status, status, done, done, done),
        )
        conn.execute(
            "INSERT INTO task_attempts (task_id, attempt, error_type, message, failed_at) "
            "SELECT id, 1, 'E', 'm', completed_at FROM tasks WHERE seq > ?",
            (first,),
        )
        conn.execute(
            "INSERT INTO events (type, task_id, task_type, created_at, payload) "
            "SELECT 'task.' || status, id, task_type, completed_at, '{}' FROM tasks "
            "WHERE seq > ?",
            (first,),
        )


def count_rows(database: Path, table: str, where: str = "1") -> int:
    with closing(sqlite3.connect(database)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0])
