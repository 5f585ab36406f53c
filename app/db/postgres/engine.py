"""Engines for PostgreSQL, and which of its errors describe the database's state.

The writer is a synchronous psycopg connection used from the writer's thread, exactly as
SQLite's: every WriteOp is synchronous code on a SQLAlchemy Connection, so the same ops run
on both, and a whole group-commit transaction is one hop between the event loop and that
thread. (asyncpg would need every op rewritten as a coroutine and costs a hop per
statement.) Readers are asyncpg, pooled, as `LITETASK_DATABASE_URL` names them.

The writer's connections wait at most `busy_timeout` for a lock another session holds
(PostgreSQL's `lock_timeout`, as SQLite's `busy_timeout`): then 55P03 lock_not_available,
which the writer retries like SQLITE_BUSY, instead of waiting forever.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

if TYPE_CHECKING:
    from app.db.engine import Engines

ASYNC_DRIVER = "postgresql+asyncpg"
SYNC_DRIVER = "postgresql+psycopg"
# SQLSTATE classes that say the database's state refused a transaction, not one of its
# statements: connection exceptions, transaction rollback (serialization failure,
# deadlock), insufficient resources, operator intervention, system errors.
STATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# Single SQLSTATEs of other classes that are the database's state too, each with the SQLite
# result code the writer treats the same way (app/db/engine.py DATABASE_STATE_CODES): the
# same write may succeed later, so it is retried, then refused as unavailable (503).
STATE_CODES = {
    "55P03": "SQLITE_BUSY",  # lock_not_available: lock_timeout ran out
    "25006": "SQLITE_READONLY",  # read_only_sql_transaction: a read-only database/standby
    "42501": "SQLITE_PERM",  # insufficient_privilege: a role that may not write (any more)
    "XX001": "SQLITE_CORRUPT",  # data_corrupted
    "XX002": "SQLITE_CORRUPT",  # index_corrupted
}
# What the classes above hold, for the same comparison: 53100 disk_full is SQLITE_FULL,
# 53200 out_of_memory SQLITE_NOMEM, 58030 io_error SQLITE_IOERR, 57014 query_canceled
# SQLITE_INTERRUPT, 40001/40P01 (serialization failure, deadlock) SQLITE_BUSY.


def is_postgres(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def postgres_sync_url(url: str | URL) -> URL:
    """The same database through the synchronous psycopg driver (the writer's)."""
    return make_url(url).set(drivername=SYNC_DRIVER)


def postgres_state_error(orig: BaseException) -> str | None:
    """PostgreSQL's name of the condition (e.g. "disk_full", or the SQLSTATE when psycopg
    has no class of its own for it) of an error from the database's state; None for an
    error a statement caused (a constraint, a bad value, a trigger's RAISE) or no
    PostgreSQL error."""
    state = getattr(orig, "sqlstate", None)
    if not isinstance(state, str) or (state[:2] not in STATE_CLASSES and state not in STATE_CODES):
        return None
    if getattr(type(orig), "sqlstate", None) != state:
        return state
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(orig).__name__).lower()  # DiskFull: disk_full


def create_postgres_engines(
    url: str, *, reader_pool_size: int, load_json: object, busy_timeout: float
) -> Engines:
    """The writer (psycopg, one connection, waiting `busy_timeout` seconds at most for a
    lock) and the readers (asyncpg, a small pool)."""
    from app.db.engine import Engines

    lock_timeout = max(1, round(busy_timeout * 1000))  # 0 would mean: wait forever
    writer = create_engine(
        postgres_sync_url(url),
        pool_size=1,
        max_overflow=0,
        pool_pre_ping=True,
        json_deserializer=load_json,
        connect_args={"options": f"-c lock_timeout={lock_timeout}"},
    )
    reader = create_async_engine(
        make_url(url).set(drivername=ASYNC_DRIVER),
        pool_size=reader_pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        json_deserializer=load_json,
    )
    return Engines(writer, reader, url)
