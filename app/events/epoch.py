"""The event log's epoch, and the SSE ids that carry it.

Log ids only mean something within one database: after an older copy is restored, id 900
may name another event than the one a client saw as 900. So each database's log has an
epoch, a random id kept in `service_state`, made with the database (migration 0009) and
rotated whenever a copy is restored in its place. Every SSE id is `<epoch>-<n>`: 12
lowercase hex digits, a dash, the log id in decimal (e.g. `3f9c0a7d51e2-1234`). A client
whose Last-Event-ID has another epoch gets `reset` (see app/events/stream.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, create_engine, insert, select, update

from app.clock import now_us
from app.db.engine import sqlite_path, sync_url
from app.db.lock import ProcessLock
from app.db.service_state import EPOCH_KEY, new_epoch
from app.db.tables import service_state
from app.db.write_op import WriteOp

_SSE_ID = re.compile(r"([0-9a-f]{12})-(0|[1-9][0-9]{0,17})", re.ASCII)
_BARE_ID = re.compile(r"0|[1-9][0-9]{0,17}", re.ASCII)


def format_epoch(value: int) -> str:
    return f"{value:012x}"


def sse_id(epoch: str, event_id: int) -> str:
    return f"{epoch}-{event_id}"


class BadEventIdError(ValueError):
    """A Last-Event-ID is `<epoch>-<n>` as this service sent it (or a bare number from
    before epochs); anything else is refused."""


@dataclass(frozen=True, slots=True)
class LogPosition:
    """A place in some log: after event `id` of `epoch`. `epoch` is None for a bare number:
    0 means "from the start of the log", any other is an id of an unknown epoch."""

    epoch: str | None
    id: int


def parse_last_event_id(raw: str) -> LogPosition:
    """The position a client names, strictly: BadEventIdError for anything malformed."""
    text = raw.strip()
    found = _SSE_ID.fullmatch(text)
    if found is not None:
        return LogPosition(found.group(1), int(found.group(2)))
    if _BARE_ID.fullmatch(text):
        return LogPosition(None, int(text))
    raise BadEventIdError(raw)


# -- stored in the database -----------------------------------------------------------------


def _stored(conn: Connection) -> int | None:
    statement = select(service_state.c.value).where(service_state.c.key == EPOCH_KEY)
    value: int | None = conn.execute(statement).scalar_one_or_none()
    return value


def _store(conn: Connection, value: int, *, exists: bool) -> str:
    values = {"value": value, "updated_at": now_us()}
    if exists:
        conn.execute(update(service_state).where(service_state.c.key == EPOCH_KEY), values)
    else:
        conn.execute(insert(service_state), {"key": EPOCH_KEY, **values})
    return format_epoch(value)


class EnsureEpoch(WriteOp[str]):
    """The log's epoch, made now if the database has none yet (its outcome)."""

    def apply(self, conn: Connection) -> str:
        current = _stored(conn)
        if current is not None:
            return format_epoch(current)
        return _store(conn, new_epoch(), exists=False)


class RotateEpoch(WriteOp[str]):
    """Give the log a new epoch (its outcome): every id sent before now resets its client."""

    def apply(self, conn: Connection) -> str:
        return _store(conn, new_epoch(), exists=_stored(conn) is not None)


def rotate_epoch(database_url: str) -> str:
    """Give the log of a *stopped* service's database a new epoch, and return it: the step
    after restoring an older copy of the database file (a restore command does it). Clients
    that saw ids of the old log get `reset` instead of resuming past events whose ids now
    mean something else. Synchronous: it runs with the service stopped, and raises
    DatabaseInUseError if a service holds the database."""
    path = sqlite_path(database_url)
    lock = ProcessLock(path) if path is not None else None
    if lock is not None:
        lock.acquire_now()
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            return RotateEpoch().apply(conn)
    finally:
        engine.dispose()
        if lock is not None:
            lock.release()
