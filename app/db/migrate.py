"""Running the Alembic migrations from inside the process, on the writer engine.

The scripts are found in two places: `app/migrations` inside an installed wheel (the build
puts the repository's `migrations/` there, see pyproject.toml), else `migrations/` at the top
of a checkout, which is where they are edited and where an editable install finds them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

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


def upgrade_sync(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`, in one transaction (SQLite has transactional DDL)."""
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), revision)
        connection.commit()


async def upgrade(engine: Engine, revision: str = "head") -> None:
    """upgrade_sync in a thread: migrations are blocking I/O."""
    await asyncio.to_thread(upgrade_sync, engine, revision)
