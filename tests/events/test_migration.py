"""Migration 0009 on a database that already has events: the group moves into its indexed
column, the log gets an epoch, and the schema matches app/db/tables.py."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from app.db.migrate import upgrade_sync
from app.db.tables import metadata
from app.events.epoch import EPOCH_KEY


def test_0009_fills_task_group_and_makes_an_epoch(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade_sync(engine, "0005")
        rows = [
            (1, {"group": "eu"}),
            (2, {"status": "pending"}),
            (3, {"group": 7}),  # not a string: no group to filter on
            (4, {"group": "us"}),
        ]
        with engine.begin() as conn:
            for event_id, payload in rows:
                conn.execute(
                    text(
                        "INSERT INTO events (id, type, task_id, task_type, created_at, payload)"
                        " VALUES (:id, 'task.queued', 't', 'echo', 0, :payload)"
                    ),
                    {"id": event_id, "payload": json.dumps(payload)},
                )
        upgrade_sync(engine)
        with engine.connect() as conn:
            groups = conn.execute(text("SELECT id, task_group FROM events ORDER BY id")).all()
            epoch = conn.execute(
                text("SELECT value FROM service_state WHERE key = :k"), {"k": EPOCH_KEY}
            ).scalar_one()
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert [tuple(row) for row in groups] == [(1, "eu"), (2, None), (3, None), (4, "us")]
    assert 0 < epoch < 16**12
    assert differences == []
