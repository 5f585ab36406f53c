"""Engines and the SQLite rules: pragmas, BEGIN IMMEDIATE for the writer, read-only readers.

Every write goes through one writer connection (see app/db/writer.py) whose transactions
start with BEGIN IMMEDIATE, so SQLite never has to upgrade a read lock mid-transaction; a lock
held by another program is waited for (busy_timeout), then retried by the writer.
`database_state_error` tells errors of the database's state (retry) from a write's own.
Readers get their own pooled async connections.

The writer engine is a *synchronous* SQLAlchemy engine (pysqlite) used from one dedicated
thread: a whole group-commit transaction then costs one hop between the event loop and that
thread, where over aiosqlite every statement is a hop, and each hop waits behind whatever
the event loop is doing (measured: bench/throughput.py and bench/http.py, see README).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from app.db.files import create_private
from app.db.postgres.engine import (
    create_postgres_engines,
    is_postgres,
    postgres_state_error,
    postgres_sync_url,
)
from app.errors import DatabaseUnavailableError

DEFAULT_BUSY_TIMEOUT = 5.0
# SQLite primary result codes that describe the database's state, not the statement that
# met it: the same write can succeed later (a lock held elsewhere, a full disk, a read-only
# or failing file), so a writer retries it instead of failing the write.
DATABASE_STATE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_INTERRUPT,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOLFS,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_PERM,
    }
)
CONNECTION_LOST = "CONNECTION_LOST"
# How text columns are decoded: SQLite stores whatever bytes a program gives it, and one value
# that is not UTF-8 would otherwise fail every query that reads its row. Bad bytes read as
# U+FFFD instead (a C call, as fast as the default).
LENIENT_TEXT = functools.partial(str, encoding="utf-8", errors="replace")


class UnreadableJSON(dict[str, Any]):
    """What a JSON column holding invalid (or absurdly nested) JSON reads as: an empty
    object that says why, so one bad row written by another program cannot fail a query."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def load_json(text: str) -> Any:
    """The JSON columns' reader (see UnreadableJSON)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        return UnreadableJSON(str(exc))


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise ValueError("litetask needs a SQLite file, not an in-memory database")
    return Path(parsed.database).resolve()


def database_state_error(exc: BaseException) -> str | None:
    """The SQLite error name (e.g. "SQLITE_FULL") when `exc` comes from the database's state,
    so retrying the same write later may work; None when the write itself caused it (a
    constraint, a trigger, a value SQLite cannot hold) or it is no database error at all.
    A connection SQLAlchemy had to drop counts as state: the next use opens a new one."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return CONNECTION_LOST
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in DATABASE_STATE_CODES:
        return str(getattr(orig, "sqlite_errorname", code))
    return postgres_state_error(orig) if orig is not None else None


class TransactionRefused(Exception):
    """A transaction failed and was rolled back. `reason` names the database state that
    refused it (retry later); None means one of its writes caused it."""

    def __init__(self, cause: Exception) -> None:
        self.cause = cause
        self.reason = database_state_error(cause)
        self.message = str(cause.orig if isinstance(cause, DBAPIError) else cause)
        super().__init__(self.message)

    def unavailable(self) -> DatabaseUnavailableError:
        return DatabaseUnavailableError(
            f"the database cannot take writes now ({self.reason}: {self.message}); "
            "nothing was written, try again later",
            reason=self.reason,
        )


def _sqlite_pragmas(*, read_only: bool, busy_timeout: float) -> list[str]:
    pragmas = [
        f"PRAGMA busy_timeout = {round(busy_timeout * 1000)}",
        "PRAGMA foreign_keys = ON",
        "PRAGMA synchronous = FULL",
    ]
    if read_only:
        pragmas.append("PRAGMA query_only = ON")
    return pragmas


def _install_sqlite_hooks(
    engine: Engine, *, begin: str, read_only: bool, busy_timeout: float
) -> None:
    """Take transaction control away from the sqlite3 module so BEGIN is ours to emit."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        # aiosqlite's connection under SQLAlchemy's adapter; sqlite3's own for pysqlite.
        getattr(dbapi_connection, "driver_connection", dbapi_connection).text_factory = LENIENT_TEXT
        cursor = dbapi_connection.cursor()
        try:
            if not read_only:
                # First: only a database without a page yet takes it (app/db/space.py).
                cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
                cursor.execute("PRAGMA journal_mode = WAL")
            for pragma in _sqlite_pragmas(read_only=read_only, busy_timeout=busy_timeout):
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        if read_only or connection.dispatch.before_cursor_execute:
            connection.exec_driver_sql(begin)
            return
        # The writer's, once per group commit: straight on the driver (app/db/bulk.py).
        try:
            connection.connection.driver_connection.execute(begin)
        except sqlite3.ProgrammingError:
            # A closed handle: through SQLAlchemy, which invalidates it (CONNECTION_LOST),
            # so the writer's retry gets a new connection.
            connection.exec_driver_sql(begin)


# Reader connections per process (LITETASK_READER_POOL_SIZE): HTTP reads, SSE replays, the
# log follower on PostgreSQL. Reads past it wait for a free one.
DEFAULT_READER_POOL_SIZE = 4
MAX_READER_POOL_SIZE = 100


@dataclass(frozen=True, slots=True)
class Engines:
    """The writer engine (synchronous, one connection, used by the writer thread only) and
    the reader engine (async, a small pool)."""

    writer: Engine
    reader: AsyncEngine
    url: str

    async def dispose(self) -> None:
        await self.reader.dispose()
        await asyncio.to_thread(self.writer.dispose)


def create_engines(
    url: str,
    *,
    reader_pool_size: int = DEFAULT_READER_POOL_SIZE,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> Engines:
    """Build both engines for `url`; SQLite gets WAL, synchronous=FULL and `busy_timeout`
    (seconds a statement waits for a lock another program holds before SQLITE_BUSY; on
    PostgreSQL the writer's lock_timeout)."""
    path = sqlite_path(url)
    if path is None and is_postgres(url):
        return create_postgres_engines(
            url, reader_pool_size=reader_pool_size, load_json=load_json, busy_timeout=busy_timeout
        )
    if path is None:
        raise ValueError(f"litetask runs on SQLite or PostgreSQL, not {make_url(url).drivername}")
    create_private(path)  # before SQLite opens it: -wal and -shm take its mode
    writer = create_engine(sync_url(url), pool_size=1, max_overflow=0, json_deserializer=load_json)
    reader = create_async_engine(
        url, pool_size=reader_pool_size, max_overflow=0, json_deserializer=load_json
    )
    _install_sqlite_hooks(
        writer, begin="BEGIN IMMEDIATE", read_only=False, busy_timeout=busy_timeout
    )
    _install_sqlite_hooks(
        reader.sync_engine, begin="BEGIN", read_only=True, busy_timeout=busy_timeout
    )
    return Engines(writer, reader, url)


def sync_url(url: str | URL) -> URL:
    """The same database through the synchronous driver (pysqlite, or psycopg)."""
    if is_postgres(url):
        return postgres_sync_url(url)
    return make_url(url).set(drivername="sqlite+pysqlite")
