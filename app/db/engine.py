"""Engines and the SQLite rules: pragmas, BEGIN IMMEDIATE for the writer, read-only readers.

Every write goes through one writer connection (see app/db/writer.py) whose transactions
start with BEGIN IMMEDIATE, so SQLite never has to upgrade a read lock mid-transaction and no
"database is locked" reaches a caller. Readers get their own pooled async connections.

The writer engine is a *synchronous* SQLAlchemy engine (pysqlite) used from one dedicated
thread: a whole group-commit transaction then costs one hop between the event loop and that
thread, where over aiosqlite every statement is a hop, and each hop waits behind whatever
the event loop is doing (measured: bench/throughput.py and bench/http.py, see README).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

BUSY_TIMEOUT_MS = 10_000


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


def _sqlite_pragmas(*, read_only: bool) -> list[str]:
    pragmas = [
        f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
        "PRAGMA foreign_keys = ON",
        "PRAGMA synchronous = FULL",
    ]
    if read_only:
        pragmas.append("PRAGMA query_only = ON")
    return pragmas


def _install_sqlite_hooks(engine: Engine, *, begin: str, read_only: bool) -> None:
    """Take transaction control away from the sqlite3 module so BEGIN is ours to emit."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not read_only:
                cursor.execute("PRAGMA journal_mode = WAL")
            for pragma in _sqlite_pragmas(read_only=read_only):
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


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


def create_engines(url: str, *, reader_pool_size: int = 4) -> Engines:
    """Build both engines for `url`; SQLite gets WAL, synchronous=FULL and busy_timeout."""
    path = sqlite_path(url)
    if path is None:
        raise ValueError(f"litetask runs on SQLite for now, not {make_url(url).get_backend_name()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = create_engine(sync_url(url), pool_size=1, max_overflow=0, json_deserializer=load_json)
    reader = create_async_engine(
        url, pool_size=reader_pool_size, max_overflow=0, json_deserializer=load_json
    )
    _install_sqlite_hooks(writer, begin="BEGIN IMMEDIATE", read_only=False)
    _install_sqlite_hooks(reader.sync_engine, begin="BEGIN", read_only=True)
    return Engines(writer, reader, url)


def sync_url(url: str | URL) -> URL:
    """The same SQLite database through the synchronous pysqlite driver."""
    return make_url(url).set(drivername="sqlite+pysqlite")
