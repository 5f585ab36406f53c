"""Running the Alembic migrations from inside the process, on the writer engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
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
