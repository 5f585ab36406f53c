"""Migrating a PostgreSQL database that several processes open at once: the first to start
migrates, the others wait for it and then find nothing to do."""

from __future__ import annotations

from sqlalchemy import Connection, text

# pg_advisory_xact_lock key for migrations ("ltmigrat" in ASCII).
MIGRATION_LOCK = 0x6C746D6967726174


def serialise_migrations(connection: Connection) -> None:
    """Inside the migration's transaction, before its revision is read: wait for any other
    process migrating this database (the lock goes with the transaction), however long
    (the writer engine's lock_timeout is lifted for this transaction). SQLite needs none:
    one process owns a file."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL lock_timeout = 0"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
