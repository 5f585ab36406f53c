"""Which database errors are the database's state (retry later) and which are the write's own
fault (retrying cannot help): classified on real errors from a real SQLite file, and from a
real PostgreSQL server (the same categories)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from app.db.engine import create_engines, database_state_error
from tests.faults import add_rejecting_trigger, disk_full, read_only, write_lock_held
from tests.pg_server import PostgresServer, postgres_sql

Write = Callable[[Connection], object]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "e.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("create table t (value integer unique, data blob)")
        conn.execute("insert into t values (1, null)")
    return path


@pytest.fixture
def writer(database: Path) -> Iterator[Engine]:
    engines = create_engines(f"sqlite+aiosqlite:///{database}", busy_timeout=0.05)
    yield engines.writer
    engines.writer.dispose()


def failure_of(engine: Engine, write: Write) -> BaseException:
    with pytest.raises(Exception) as raised, engine.begin() as conn:  # noqa: PT011
        write(conn)
    return raised.value


def insert(value: object, data: bytes | None = None) -> Write:
    return lambda conn: conn.execute(text("insert into t values (:v, :d)"), {"v": value, "d": data})


def test_busy_and_full_are_the_database_state(writer: Engine, database: Path) -> None:
    with write_lock_held(database):
        busy = failure_of(writer, insert(2))
    assert database_state_error(busy) == "SQLITE_BUSY"
    with disk_full(database):
        full = failure_of(writer, insert(3, b"x" * 100_000))
    assert database_state_error(full) == "SQLITE_FULL"


def test_read_only_is_the_database_state(database: Path) -> None:
    read_only = closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True))
    with read_only as conn, pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("insert into t values (5, null)")
    assert database_state_error(raised.value) == "SQLITE_READONLY"


def test_errors_caused_by_the_write_are_not(writer: Engine, database: Path) -> None:
    add_rejecting_trigger(database, "no_sevens", "BEFORE INSERT", "t", "no", when="NEW.value = 7")
    assert database_state_error(failure_of(writer, insert(7))) is None  # a trigger refuses it
    assert database_state_error(failure_of(writer, insert(1))) is None  # UNIQUE
    assert database_state_error(failure_of(writer, insert(2**63))) is None  # out of range
    assert database_state_error(ValueError("not a database error")) is None


@pytest.fixture
def pg_database(postgres: PostgresServer) -> str:
    url = postgres.create_database()
    postgres_sql(url, "create table t (value integer unique, data bytea)")
    postgres_sql(url, "insert into t values (1, null)")
    return url


@pytest.fixture
def pg_writer(pg_database: str) -> Iterator[Engine]:
    engines = create_engines(pg_database, busy_timeout=0.05)
    yield engines.writer
    engines.writer.dispose()


def test_postgresql_busy_full_and_read_only_are_the_database_state(
    pg_writer: Engine, pg_database: str
) -> None:
    """The same categories as SQLite's: a lock held past busy_timeout (lock_timeout), a
    full disk (53100) and a read-only database (25006) are retried, not the write's fault."""
    with write_lock_held(pg_database):
        busy = failure_of(pg_writer, insert(2))  # waits 0.05 s, not forever
    assert database_state_error(busy) == "lock_not_available"
    with disk_full(pg_database):
        full = failure_of(pg_writer, insert(3, b"x" * 100_000))
    assert database_state_error(full) == "disk_full"
    with read_only(pg_database) as fault:
        pg_writer.dispose()  # its connection was terminated: a new one is read-only
        refused = failure_of(pg_writer, insert(4))
        fault.release()
    assert database_state_error(refused) == "read_only_sql_transaction"


def test_postgresql_errors_caused_by_the_write_are_not(pg_writer: Engine, pg_database: str) -> None:
    add_rejecting_trigger(
        pg_database, "no_sevens", "BEFORE INSERT", "t", "no", when="NEW.value = 7"
    )
    assert database_state_error(failure_of(pg_writer, insert(7))) is None  # RAISE (P0001)
    assert database_state_error(failure_of(pg_writer, insert(1))) is None  # UNIQUE
    assert database_state_error(failure_of(pg_writer, insert(2**63))) is None  # out of range
