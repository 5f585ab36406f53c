"""owners.events_seen: how far each process's log follower has read the event log

On PostgreSQL every process publishes events from the log (app/worker/postgres/follower.py)
and reports, at registration and at each heartbeat, the newest id it has read; the pruner
keeps every event after the lowest of them, so no live stream misses an event a process has
not read yet. SQLite publishes at commit and leaves it NULL.

Revision ID: 0021
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("events_seen", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.drop_column("events_seen")
