"""suspect tasks and the owners table

`tasks.suspect` marks tasks that were running when their process died (they run one at a
time); `owners` holds the process that owns the database, with a heartbeat.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("suspect", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(
            "ix_tasks_suspects",
            ["priority", "run_at", "seq"],
            unique=False,
            sqlite_where=sa.text("status = 'pending' AND suspect = 1"),
            postgresql_where=sa.text("status = 'pending' AND suspect"),
        )
    op.create_table(
        "owners",
        sa.Column("boot_id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("process", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("boot_id", name=op.f("pk_owners")),
    )


def downgrade() -> None:
    op.drop_table("owners")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_tasks_suspects",
            sqlite_where=sa.text("status = 'pending' AND suspect = 1"),
            postgresql_where=sa.text("status = 'pending' AND suspect"),
        )
        batch_op.drop_column("suspect")
