"""Every migration path: a database populated at each earlier revision upgrades to head
with its rows intact and readable, the migrated schema is exactly app/db/tables.py
(Alembic's compare_metadata finds no drift), and the whole chain downgrades to base."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app import AsyncTaskWorker, AttemptKind, TaskStatus
from app.db.engine import create_engines
from app.db.migrate import alembic_config, upgrade
from app.db.tables import metadata
from tests.db.migration_rows import TASK_ID, database_at, engine_for, row_counts

SCRIPTS = ScriptDirectory.from_config(alembic_config())
HEAD = SCRIPTS.get_current_head()
EARLIER = [s.revision for s in reversed(list(SCRIPTS.walk_revisions())) if s.revision != HEAD]


# Indexes (a partial index's WHERE, which compare_metadata does not compare) and triggers
# (the task counters, which it does not see at all), by their SQL.
SCHEMA_SQL = (
    "SELECT type, name, sql FROM sqlite_master "
    "WHERE type IN ('index', 'trigger') AND sql IS NOT NULL"
)


def drift(database: Path) -> list[object]:
    """What compare_metadata finds, plus any index or trigger whose SQL differs from what
    tables.py creates."""
    declared = engine_for(database.with_name("declared.db"))
    engine = engine_for(database)
    try:
        metadata.create_all(declared)
        with engine.connect() as conn, declared.connect() as expected:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            found = list(compare_metadata(context, metadata))
            indexes = set(conn.exec_driver_sql(SCHEMA_SQL).all())
            wanted = set(expected.exec_driver_sql(SCHEMA_SQL).all())
        return found + sorted(indexes ^ wanted)
    finally:
        engine.dispose()
        declared.dispose()


def test_a_new_database_at_head_has_no_drift(tmp_path: Path) -> None:
    database_at(tmp_path / "new.db", "head", rows=False)
    assert drift(tmp_path / "new.db") == []


@pytest.mark.parametrize("revision", EARLIER)
async def test_a_populated_database_upgrades_to_head_and_back_to_base(
    tmp_path: Path, revision: str
) -> None:
    database = tmp_path / "old.db"
    written = database_at(database, revision)
    engines = create_engines(f"sqlite+aiosqlite:///{database}")  # the service's writer engine
    try:
        await upgrade(engines.writer)
        with engines.writer.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD
            assert row_counts(conn, list(written)) == written
            counts = conn.exec_driver_sql("SELECT status, total FROM task_counts").all()
            assert counts == [("completed", 1)]  # counted by the migration
    finally:
        await engines.dispose()
    assert drift(database) == []

    async with AsyncTaskWorker(f"sqlite+aiosqlite:///{database}") as worker:
        info = await worker.get_task_info(TASK_ID)
    assert info is not None and info.status is TaskStatus.COMPLETED and info.result == 5
    # An attempt from before attempt kinds was a failure; no task had snoozed.
    assert [(e.kind, e.message) for e in info.errors] == [(AttemptKind.FAILED, "first try failed")]
    assert info.snoozes == 0

    engine = engine_for(database)
    try:
        with engine.connect() as conn:
            command.downgrade(alembic_config(conn), "base")
            conn.commit()
        assert inspect(engine).get_table_names() == ["alembic_version"]
    finally:
        engine.dispose()
