"""task_counts kept by triggers; an index of finished tasks by when they finished

Counting tasks by status scanned the status index (~70-95 ms per million rows, on every
/health and /metrics); `task_counts` holds the counts, computed here once and kept by
triggers in the same transaction as every change to `tasks`. `ix_tasks_finished` lets
retention find the finished tasks past their time as a range, oldest first.

(auto_vacuum=INCREMENTAL cannot be set inside a migration's transaction: a database still
without it is converted by one VACUUM right after migrating, see app/db/space.py.)

A later migration that rebuilds `tasks` in batch mode drops these triggers with the old
table: it must create them again (tests/db/test_migrations.py compares them with
app/db/tables.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COUNT_ONE_MORE = (
    "INSERT INTO task_counts (status, total) VALUES (NEW.status, 1) "
    "ON CONFLICT (status) DO UPDATE SET total = total + 1;"
)
COUNT_ONE_LESS = "UPDATE task_counts SET total = total - 1 WHERE status = OLD.status;"
TRIGGERS = {
    "tasks_count_insert": (
        f"CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN {COUNT_ONE_MORE} END"
    ),
    "tasks_count_delete": (
        f"CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN {COUNT_ONE_LESS} END"
    ),
    "tasks_count_status": (
        "CREATE TRIGGER tasks_count_status AFTER UPDATE OF status ON tasks "
        f"WHEN OLD.status IS NOT NEW.status BEGIN {COUNT_ONE_LESS} {COUNT_ONE_MORE} END"
    ),
}
FINISHED_WHERE = sa.text("completed_at IS NOT NULL")

# PostgreSQL: several processes write at once, and one counter row per status would make
# every transaction that changes a status wait for the others (and deadlock when two touch
# two statuses in opposite orders). So each statement adds rows of deltas, which nobody
# updates, and `task_counts` is a view summing them; app/db/postgres/counts.py folds the
# deltas back into one row per status now and then.
PG_COUNTS = (
    "CREATE TABLE task_count_deltas (status VARCHAR(16) NOT NULL, total BIGINT NOT NULL)",
    "CREATE INDEX ix_task_count_deltas_status ON task_count_deltas (status)",
    "INSERT INTO task_count_deltas (status, total) SELECT status, count(*) FROM tasks "
    "GROUP BY status",
    "CREATE VIEW task_counts AS SELECT status, CAST(sum(total) AS INTEGER) AS total "
    "FROM task_count_deltas GROUP BY status",
    """CREATE FUNCTION litetask_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_count_deltas (status, total)
        SELECT status, count(*) FROM new_rows GROUP BY status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO task_count_deltas (status, total)
        SELECT status, -count(*) FROM old_rows GROUP BY status;
    ELSE
        INSERT INTO task_count_deltas (status, total)
        SELECT status, sum(d) FROM (
            SELECT status, 1 AS d FROM new_rows UNION ALL SELECT status, -1 FROM old_rows
        ) AS changed GROUP BY status HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION litetask_count_tasks()",
    "CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION litetask_count_tasks()",
    "CREATE TRIGGER tasks_count_status AFTER UPDATE ON tasks "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION litetask_count_tasks()",
)
PG_DROP = (
    "DROP TRIGGER IF EXISTS tasks_count_status ON tasks",
    "DROP TRIGGER IF EXISTS tasks_count_delete ON tasks",
    "DROP TRIGGER IF EXISTS tasks_count_insert ON tasks",
    "DROP FUNCTION IF EXISTS litetask_count_tasks()",
    "DROP VIEW IF EXISTS task_counts",
    "DROP TABLE IF EXISTS task_count_deltas",
)


def _finished_index() -> None:
    # Not in batch mode: a rebuilt `tasks` would lose the triggers just made.
    op.create_index(
        "ix_tasks_finished",
        "tasks",
        ["status", "completed_at"],
        unique=False,
        sqlite_where=FINISHED_WHERE,
        postgresql_where=FINISHED_WHERE,
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_COUNTS:
            op.execute(statement)
        _finished_index()
        return
    op.create_table(
        "task_counts",
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("status", name=op.f("pk_task_counts")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO task_counts (status, total) SELECT status, count(*) FROM tasks GROUP BY status"
    )
    for statement in TRIGGERS.values():
        op.execute(statement)
    _finished_index()


def downgrade() -> None:
    op.drop_index("ix_tasks_finished", table_name="tasks")
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_DROP:
            op.execute(statement)
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("task_counts")
