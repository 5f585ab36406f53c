"""events: indexed task_group and task_type for filtered replays; the log's epoch

A filtered reconnect read the log's whole tail after its Last-Event-ID (the group was a JSON
path in the payload, the task type had no index); now each reads only the rows it returns.
The epoch is a random id of this database's log, carried in every SSE id: an older copy
restored in its place gets a new one (app/events/epoch.py), so old ids are not resumed.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None

EPOCH_KEY = "event_log_epoch"


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_group", sa.Text(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            "UPDATE events SET task_group = json_extract(payload, '$.group') "
            "WHERE json_type(payload, '$.group') = 'text'"
        )
    else:
        op.execute(
            "UPDATE events SET task_group = payload::jsonb ->> 'group' "
            "WHERE jsonb_typeof(payload::jsonb -> 'group') = 'string'"
        )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_task_group",
            ["task_group", "id"],
            unique=False,
            sqlite_where=sa.text("task_group IS NOT NULL"),
            postgresql_where=sa.text("task_group IS NOT NULL"),
        )
        batch_op.create_index("ix_events_task_type", ["task_type", "id"], unique=False)
    state = sa.table(
        "service_state",
        sa.column("key", sa.String),
        sa.column("value", sa.BigInteger),
        sa.column("updated_at", sa.BigInteger),
    )
    op.bulk_insert(
        state,
        [{"key": EPOCH_KEY, "value": secrets.randbits(47) + 1, "updated_at": time.time_ns() // 1000}],
    )


def downgrade() -> None:
    op.execute(f"DELETE FROM service_state WHERE key = '{EPOCH_KEY}'")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_task_type")
        batch_op.drop_index(
            "ix_events_task_group",
            sqlite_where=sa.text("task_group IS NOT NULL"),
            postgresql_where=sa.text("task_group IS NOT NULL"),
        )
        batch_op.drop_column("task_group")
