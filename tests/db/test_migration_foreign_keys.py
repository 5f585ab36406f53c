"""A migration that rebuilds a table (Alembic's batch mode on SQLite: copy, drop, rename)
must not fire the foreign keys' ON DELETE CASCADE: the service migrates on its writer
connection, where foreign keys are on, and dropping `tasks` would delete every attempt."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.db.engine import create_engines
from app.db.migrate import upgrade_sync
from tests.conftest import ROOT
from tests.db.migration_rows import database_at, row_counts
from tests.db.test_migrations import HEAD

REBUILD_TASKS = f'''
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{HEAD}"


def upgrade() -> None:
    with op.batch_alter_table("tasks", recreate="always") as batch_op:
        batch_op.alter_column("error", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    pass
'''


def test_rebuilding_a_referenced_table_keeps_the_rows_that_reference_it(tmp_path: Path) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9001_rebuild_tasks.py").write_text(REBUILD_TASKS)
    database = tmp_path / "litetask.db"
    written = database_at(database, "head")
    engines = create_engines(f"sqlite+aiosqlite:///{database}")  # the service's writer
    try:
        upgrade_sync(engines.writer, scripts=scripts)
        with engines.writer.connect() as conn:
            assert row_counts(conn, list(written)) == written
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # on again
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [
                ("9001",)
            ]
        upgrade_sync(engines.writer, scripts=scripts)  # at head already: nothing to do
        with engines.writer.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engines.writer.dispose()
        engines.reader.sync_engine.dispose()
