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


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        raise NotImplementedError("migration 0012 creates SQLite triggers; litetask runs on SQLite")
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
    # Not in batch mode: a rebuilt `tasks` would lose the triggers just made.
    op.create_index(
        "ix_tasks_finished",
        "tasks",
        ["status", "completed_at"],
        unique=False,
        sqlite_where=FINISHED_WHERE,
        postgresql_where=FINISHED_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_finished", table_name="tasks")
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("task_counts")
