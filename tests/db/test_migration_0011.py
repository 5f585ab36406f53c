"""Migration 0011 on a database with queued tasks: pending rows for later become
`scheduled` (the due ones stay pending), the schema matches app/db/tables.py, and a
downgrade makes them pending again."""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, text

from app.db.migrate import alembic_config, upgrade_sync
from app.db.tables import metadata, tasks
from tests.db.migration_rows import ROWS, engine_for


def statuses(conn: Connection) -> dict[str, str]:
    return {row.id: row.status for row in conn.execute(text("SELECT id, status FROM tasks"))}


def test_0011_schedules_pending_tasks_for_later_and_back(tmp_path: Path) -> None:
    engine = engine_for(tmp_path / "old.db")
    now = time.time_ns() // 1000
    try:
        upgrade_sync(engine, "0009")
        rows = {"due": now - 1, "later": now + 3_600_000_000}
        with engine.begin() as conn:
            for task_id, run_at in rows.items():
                row = {**ROWS["tasks"], "id": task_id, "status": "pending", "run_at": run_at}
                row.update(metadata={}, idempotency_key=None)
                conn.execute(insert(tasks).values(row))
        upgrade_sync(engine)
        with engine.connect() as conn:
            upgraded = statuses(conn)
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
        with engine.connect() as conn:
            command.downgrade(alembic_config(conn), "0009")
            conn.commit()
            downgraded = statuses(conn)
    finally:
        engine.dispose()
    assert upgraded == {"due": "pending", "later": "scheduled"}
    assert differences == []
    assert downgraded == {"due": "pending", "later": "pending"}
