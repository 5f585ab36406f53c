"""schedules: the progress of each periodic task type

One row per schedule: every slot at or before `decided_until` has been queued (its task
inserted in the same transaction) or passed over by the missed-slot policy; `last_slot` and
`last_task_id` name the latest slot queued. See app/worker/slots.py.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("decided_until", sa.BigInteger(), nullable=False),
        sa.Column("last_slot", sa.BigInteger(), nullable=True),
        sa.Column("last_task_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedules")),
    )


def downgrade() -> None:
    op.drop_table("schedules")
