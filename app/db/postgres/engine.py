"""Engines for PostgreSQL, and which of its errors describe the database's state.

The writer is a synchronous psycopg connection used from the writer's thread, exactly as
SQLite's: every WriteOp is synchronous code on a SQLAlchemy Connection, so the same ops run
on both, and a whole group-commit transaction is one hop between the event loop and that
thread. (asyncpg would need every op rewritten as a coroutine and costs a hop per
statement.) Readers are asyncpg, pooled, as `LITETASK_DATABASE_URL` names them.
"""

from __future__ import annotations

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


def is_postgres(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def postgres_sync_url(url: str | URL) -> URL:
    """The same database through the synchronous psycopg driver (the writer's)."""
    return make_url(url).set(drivername=SYNC_DRIVER)


def postgres_state_error(orig: BaseException) -> str | None:
    """The SQLSTATE (e.g. "40P01") of a psycopg error from the database's state; None for
    an error a statement caused (a constraint, a bad value) or no PostgreSQL error."""
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str) and state[:2] in STATE_CLASSES:
        return state
    return None


def create_postgres_engines(url: str, *, reader_pool_size: int, load_json: object) -> Engines:
    """The writer (psycopg, one connection) and the readers (asyncpg, a small pool)."""
    from app.db.engine import Engines

    writer = create_engine(
        postgres_sync_url(url),
        pool_size=1,
        max_overflow=0,
        pool_pre_ping=True,
        json_deserializer=load_json,
    )
    reader = create_async_engine(
        make_url(url).set(drivername=ASYNC_DRIVER),
        pool_size=reader_pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        json_deserializer=load_json,
    )
    return Engines(writer, reader, url)
