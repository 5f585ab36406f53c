"""Running the Alembic migrations from inside the process, on the writer engine.

The scripts are found in two places: `app/migrations` inside an installed wheel (the build
puts the repository's `migrations/` there, see pyproject.toml), else `migrations/` at the top
of a checkout, which is where they are edited and where an editable install finds them.

Before it migrates a database that holds rows, the upgrade copies it to
`<database>.pre-migrate-<from>-<to>` (app/db/backup.py): a migration that goes wrong, or a
release rolled back, can then be undone with `litetask restore`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from app.db.backup import back_up
from app.db.engine import sqlite_path
from app.errors import SchemaRevisionError

logger = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parents[1]
PLACES = (PACKAGE / "migrations", PACKAGE.parent / "migrations")


def migrations_directory() -> Path:
    """Where the Alembic scripts are: inside the installed package, else in the checkout."""
    for place in PLACES:
        if (place / "env.py").is_file():
            return place
    raise FileNotFoundError(f"no migrations in {' or '.join(map(str, PLACES))}: a broken install")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def check_known(revision: str | None, where: str) -> None:
    """SchemaRevisionError unless `revision` (of the database at `where`) is one of ours;
    None, a database without a schema yet, passes."""
    scripts = ScriptDirectory.from_config(alembic_config())
    if revision is None or revision in {script.revision for script in scripts.walk_revisions()}:
        return
    raise SchemaRevisionError(
        f"{where} is at schema revision {revision}, which this litetask does not know (its "
        f"newest is {scripts.get_current_head()}): run the litetask version that wrote it, "
        "or restore an older backup"
    )


def upgrade_sync(engine: Engine, revision: str = "head", *, back_up_first: bool = True) -> None:
    """Bring the schema to `revision`, in one transaction (SQLite has transactional DDL),
    after a backup of a database that holds rows (unless `back_up_first` is False)."""
    with engine.connect() as connection:
        config = alembic_config(connection)
        current = MigrationContext.configure(connection).get_current_revision()
        check_known(current, str(engine.url.database))
        if back_up_first:
            _back_up_before(connection, config, current, revision)
        command.upgrade(config, revision)
        connection.commit()


async def upgrade(engine: Engine, revision: str = "head") -> None:
    """upgrade_sync in a thread: migrations are blocking I/O."""
    await asyncio.to_thread(upgrade_sync, engine, revision)


def _back_up_before(
    connection: Connection, config: Config, current: str | None, revision: str
) -> None:
    """Copy the database aside when this upgrade changes the schema of one holding rows.
    Runs inside the upgrade's transaction, so no write can come between copy and change."""
    database = sqlite_path(connection.engine.url)
    target = ScriptDirectory.from_config(config).as_revision_number(revision)
    if database is None or current is None or current == target or not _holds_rows(connection):
        return
    copy = database.with_name(f"{database.name}.pre-migrate-{current}-{target}")
    logger.info(
        "migrating %s from schema revision %s to %s; backing it up to %s first",
        database,
        current,
        target,
        copy,
    )
    back_up(database, copy)


def _holds_rows(connection: Connection) -> bool:
    tables = connection.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
    ).scalars()
    return any(
        connection.exec_driver_sql(f'SELECT EXISTS (SELECT 1 FROM "{name}")').scalar()
        for name in list(tables)
    )
