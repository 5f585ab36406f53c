"""Inserting rows that other processes may insert at the same moment (a task with an
idempotency key or a chosen id): on PostgreSQL, the second of two transactions inserting the
same unique value waits for the first, then fails on the unique index, which would refuse
its whole transaction. `insert_unless_taken` skips such a row instead (ON CONFLICT DO
NOTHING) and says which rows it did insert, so the caller can read the winner's row, which
the next statement sees (READ COMMITTED), and decide again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Table
from sqlalchemy.dialects import postgresql

# Rows per statement: PostgreSQL takes at most 65,535 parameters in one.
CHUNK = 1000


def insert_unless_taken(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: Column[Any]
) -> list[Any]:
    """INSERT `rows` (column -> value, as given to SQLAlchemy), skipping each one whose
    unique value another transaction holds (once that one commits); the `key` of each row
    inserted."""
    inserted: list[Any] = []
    for start in range(0, len(rows), CHUNK):
        statement = (
            postgresql.insert(table)
            .values(list(rows[start : start + CHUNK]))
            .on_conflict_do_nothing()
            .returning(key)
        )
        inserted += conn.execute(statement).scalars().all()
    return inserted
