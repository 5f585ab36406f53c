"""tasks: ix_tasks_completed_at (completed_at, status) over finished rows

The dashboard's throughput sparkline (GET /stats/throughput) reads what finished in the last
hour before the service started: with this index that is a search of the last hour's rows
(the index holds the status too), not a scan of the whole finished history. Active rows
(completed_at NULL) are not in it.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None

FINISHED = "completed_at IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_completed_at",
            ["completed_at", "status"],
            unique=False,
            sqlite_where=sa.text(FINISHED),
            postgresql_where=sa.text(FINISHED),
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_tasks_completed_at",
            sqlite_where=sa.text(FINISHED),
            postgresql_where=sa.text(FINISHED),
        )
