"""Statements run on a test's database directly, as another program would, on either backend:
a SQLite file (its path or its URL) or a PostgreSQL database (its URL)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.pg_server import postgres_sql

Database = Path | str  # a SQLite file, or a SQLAlchemy URL of either backend
SQLITE_URL = "sqlite+aiosqlite:///"


def is_postgres(database: Database) -> bool:
    return isinstance(database, str) and database.startswith("postgresql")


def run_sql(database: Database, statement: str) -> list[tuple[object, ...]]:
    """Run one statement (committed); its rows, if it returns any."""
    if is_postgres(database):
        assert isinstance(database, str)
        return postgres_sql(database, statement)
    path = database.removeprefix(SQLITE_URL) if isinstance(database, str) else database
    with closing(sqlite3.connect(path)) as conn, conn:
        return conn.execute(statement).fetchall()


def blob(database: Database, hex_digits: str) -> str:
    """A literal of the bytes `hex_digits` spells, in the database's SQL."""
    return f"'\\x{hex_digits}'::bytea" if is_postgres(database) else f"x'{hex_digits}'"
