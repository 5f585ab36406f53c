"""snoozes of a task, and how each attempt in the history ended

`raise Retry(delay=...)` runs a task again without spending an attempt (its max_attempts
grows by one, as attempts only grow); `tasks.snoozes` counts those, so a task can be held to
a maximum. `task_attempts.kind` says how an attempt ended: failed, snoozed, or aborted
(`raise Abort(...)`); rows from before were all failures.

Both are added in place (ALTER TABLE ... ADD COLUMN), so `tasks` is not rebuilt and the
counting triggers of 0012 stay.

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not in batch mode: that rebuilds `tasks` on SQLite and loses 0012's triggers.
    op.add_column(
        "tasks", sa.Column("snoozes", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    with op.batch_alter_table("task_attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="failed", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("task_attempts", schema=None) as batch_op:
        batch_op.drop_column("kind")
    # In place (SQLite 3.35+): batch mode would rebuild `tasks` and lose 0012's triggers.
    op.execute("ALTER TABLE tasks DROP COLUMN snoozes")
