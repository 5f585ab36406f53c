"""tasks for later get their own status, `scheduled`, and index

A claim read the pending rows in (priority, run_at, seq) order and skipped those not yet
due, so every task held for later at a better priority was stepped over, under the write
lock, by every claim. Tasks for later are now `scheduled` (indexed by run_at), and the
stager moves each to `pending` at its time: every pending row is due.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEDULED = sa.text("status = 'scheduled'")


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_scheduled",
            ["run_at"],
            unique=False,
            sqlite_where=SCHEDULED,
            postgresql_where=SCHEDULED,
        )
    now = time.time_ns() // 1000
    op.execute(
        sa.text(
            "UPDATE tasks SET status = 'scheduled' WHERE status = 'pending' AND run_at > :now"
        ).bindparams(now=now)
    )


def downgrade() -> None:
    op.execute("UPDATE tasks SET status = 'pending' WHERE status = 'scheduled'")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_tasks_scheduled", sqlite_where=SCHEDULED, postgresql_where=SCHEDULED
        )
