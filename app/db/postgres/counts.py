"""Task counts on PostgreSQL: the triggers of migration 0012 add rows of deltas to
`task_count_deltas` (never updating a shared row, so processes never wait on each other
for a counter) and the `task_counts` view sums them. `fold_counts` folds the deltas back
into one row per status, so the table stays small: run with each heartbeat."""

from __future__ import annotations

from sqlalchemy import Connection, text

FOLD = text(
    "WITH gone AS (DELETE FROM task_count_deltas RETURNING status, total) "
    "INSERT INTO task_count_deltas (status, total) "
    "SELECT status, sum(total) FROM gone GROUP BY status"
)


def fold_counts(conn: Connection) -> None:
    """Inside the caller's transaction. Deltas committed meanwhile by others are not seen by
    the DELETE and stay as they are, so every sum is kept."""
    conn.execute(FOLD)
