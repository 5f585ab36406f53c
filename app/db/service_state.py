"""Durable counters of the service itself (table service_state), written by the writer.

A counter that was never bumped reads 0. Reading goes through the writer too: it happens
once at start, and then it sees every bump committed before it.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from app.clock import now_us
from app.db.tables import service_state
from app.db.writer import WriteOp


def _current(conn: Connection, key: str) -> int | None:
    value = conn.execute(select(service_state.c.value).where(service_state.c.key == key))
    found: int | None = value.scalar_one_or_none()
    return found


class ReadCounter(WriteOp[int]):
    """The counter's value (0 when it was never bumped)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def apply(self, conn: Connection) -> int:
        return _current(conn, self.key) or 0


class BumpCounter(WriteOp[int]):
    """Adds one to the counter and returns the new value, in one transaction."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def apply(self, conn: Connection) -> int:
        now = now_us()
        current = _current(conn, self.key)
        table = service_state.c
        if current is None:
            conn.execute(insert(service_state).values(key=self.key, value=1, updated_at=now))
            return 1
        statement = update(service_state).where(table.key == self.key)
        conn.execute(statement.values(value=current + 1, updated_at=now))
        return current + 1
