"""Durable counters of the service itself (table service_state), written by the writer.

A counter that was never bumped reads 0. Reading goes through the writer too: it happens
once at start, and then it sees every bump committed before it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy import Connection, insert, select, update

from app.clock import now_us
from app.db.tables import service_state
from app.db.writer import WriteOp

# The version of browser sessions (app/web/sessions.py): bumping it ends every session.
SESSION_VERSION_KEY = "session_version"
# The event log's epoch (app/events/epoch.py): a new one tells resuming SSE clients that
# event ids start over.
EPOCH_KEY = "event_log_epoch"


def new_epoch() -> int:
    """A random epoch (never 0, at most 12 hex digits)."""
    return secrets.randbits(47) + 1


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
        return _set(conn, self.key, lambda current: current + 1)


def end_sessions_after_restore(conn: Connection) -> None:
    """A restore brings back an older session version, and with it every session ended
    since; move the version past any the replaced database can have issued instead. They
    count up by one from 0 (or from an earlier restore's value), so now in µs is beyond."""
    _set(conn, SESSION_VERSION_KEY, lambda current: max(current + 1, now_us()))


def new_epoch_after_restore(conn: Connection) -> None:
    """A restored copy's event ids may name other events than the ones clients saw from the
    replaced database: give its log a new epoch, so they get `reset`."""
    _set(conn, EPOCH_KEY, lambda _current: new_epoch())


def _set(conn: Connection, key: str, new: Callable[[int], int]) -> int:
    """Set the counter to new(its value, 0 when missing); the value written."""
    current = _current(conn, key)
    value = new(current or 0)
    row = {"value": value, "updated_at": now_us()}
    if current is None:
        conn.execute(insert(service_state).values(key=key, **row))
    else:
        conn.execute(update(service_state).where(service_state.c.key == key).values(**row))
    return value
