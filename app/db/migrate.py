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
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from app.db.backup import back_up
from app.db.engine import sqlite_path
from app.db.postgres.migrations import serialise_migrations
from app.db.space import ensure_incremental_vacuum
from app.errors import MigrationError, SchemaRevisionError

logger = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parents[1]
PLACES = (PACKAGE / "migrations", PACKAGE.parent / "migrations")


def migrations_directory() -> Path:
    """Where the Alembic scripts are: inside the installed package, else in the checkout."""
    for place in PLACES:
        if (place / "env.py").is_file():
            return place
    raise FileNotFoundError(f"no migrations in {' or '.join(map(str, PLACES))}: a broken install")


def alembic_config(connection: Connection | None = None, scripts: Path | None = None) -> Config:
    """Alembic's configuration for our scripts (or those in `scripts`), migrating on
    `connection` when given."""
    config = Config()
    location = scripts if scripts is not None else migrations_directory()
    config.set_main_option("script_location", str(location))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def check_known(revision: str | None, where: str, config: Config | None = None) -> None:
    """SchemaRevisionError unless `revision` (of the database at `where`) is one of ours;
    None, a database without a schema yet, passes."""
    scripts = ScriptDirectory.from_config(config or alembic_config())
    if revision is None or revision in {script.revision for script in scripts.walk_revisions()}:
        return
    raise SchemaRevisionError(
        f"{where} is at schema revision {revision}, which this litetask does not know (its "
        f"newest is {scripts.get_current_head()}): run the litetask version that wrote it, "
        "or restore an older backup"
    )


def upgrade_sync(
    engine: Engine,
    revision: str = "head",
    *,
    back_up_first: bool = True,
    scripts: Path | None = None,
) -> None:
    """Put the database in auto_vacuum=INCREMENTAL (app/db/space.py: once, and a VACUUM
    for a database made before), then bring the schema to `revision`, in one transaction
    (SQLite has transactional DDL), after a backup of a database that holds rows (unless
    `back_up_first` is False). `scripts`: another migrations directory than litetask's own."""
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        if isinstance(raw, sqlite3.Connection):
            ensure_incremental_vacuum(raw, str(engine.url.database))
    with engine.connect() as connection, _foreign_keys_off(connection):
        _migrate(connection, revision, back_up_first, scripts)


def _migrate(
    connection: Connection, revision: str, back_up_first: bool, scripts: Path | None
) -> None:
    config = alembic_config(connection, scripts)
    serialise_migrations(connection)
    current = MigrationContext.configure(connection).get_current_revision()
    check_known(current, str(connection.engine.url.database), config)
    target = str(ScriptDirectory.from_config(config).as_revision_number(revision))
    if current == target:
        return
    if back_up_first and current is not None:
        _back_up_before(connection, current, target)
    broken = _broken_references(connection)
    command.upgrade(config, revision)
    if _broken_references(connection) > broken:
        raise MigrationError(
            f"migrating to schema revision {target} would leave rows referencing rows "
            "that do not exist; nothing was changed"
        )
    connection.commit()


async def upgrade(engine: Engine, revision: str = "head") -> None:
    """upgrade_sync in a thread: migrations are blocking I/O."""
    await asyncio.to_thread(upgrade_sync, engine, revision)


@contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Foreign keys off while migrating, as SQLite's documented table rebuild asks: with
    them on, the DROP TABLE of a batch rebuild runs the ON DELETE CASCADE of every row
    referencing that table (rebuilding `tasks` would delete all attempts). The pragma only
    works outside a transaction, so it is set before the migration's begins and restored
    after it ended (committed, or else rolled back here), before the writer uses it."""
    raw = connection.connection.driver_connection
    if not isinstance(raw, sqlite3.Connection):
        yield
        return
    (was_on,) = raw.execute("PRAGMA foreign_keys").fetchone()
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        if connection.in_transaction():  # not committed: failed, or nothing to migrate
            connection.rollback()
        raw.execute(f"PRAGMA foreign_keys = {'ON' if was_on else 'OFF'}")


def _broken_references(connection: Connection) -> int:
    """Rows whose foreign key points nowhere: what the keys, off meanwhile, would refuse.
    (Only SQLite turns them off; PostgreSQL checks every key as it goes.)"""
    if connection.dialect.name != "sqlite":
        return 0
    return len(connection.exec_driver_sql("PRAGMA foreign_key_check").all())


def _back_up_before(connection: Connection, current: str, target: str) -> None:
    """Copy the database aside before changing the schema, when it holds rows. Runs inside
    the upgrade's transaction, so no write can come between the copy and the change."""
    database = sqlite_path(connection.engine.url)
    if database is None or not _holds_rows(connection):
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
