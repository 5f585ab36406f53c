"""Alembic environment. Given a connection (app/db/migrate.py passes one), it migrates on it;
run by hand (`alembic upgrade head`), it connects to LITETASK_DATABASE_URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app.config import Settings
from app.db.engine import create_engines
from app.db.tables import metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    engines = create_engines(Settings.from_env().database_url)
    try:
        async with engines.writer.connect() as conn:
            await conn.run_sync(run_on)
            await conn.commit()
    finally:
        await engines.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    asyncio.run(run_from_settings())
