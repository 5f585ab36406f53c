"""Alembic environment. Given a connection (app/db/migrate.py passes one), it migrates on it;
run by hand (`alembic upgrade head`), it connects to LITETASK_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from app.config import Settings
from app.db.engine import sync_url
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


def run_from_settings() -> None:
    engine = create_engine(sync_url(Settings.from_env().database_url))
    try:
        with engine.connect() as conn:
            run_on(conn)
            conn.commit()
    finally:
        engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    run_from_settings()
