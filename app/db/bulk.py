"""Bulk inserts of prebuilt rows, and statements compiled once, for the writer's hottest
statements.

`conn.execute(table.insert(), [dict, ...])` runs every value of every row through
SQLAlchemy's parameter processing, and the driver's executemany steps SQLite once per row,
dropping and retaking the GIL each time: with the event loop busy, every retake is a thread
switch that the loop pays for (measured with bench/http.py: the writer thread's work per
submitted task was a fifth of the loop's). `insert_rows` instead takes tuples already in
their stored form (JSON as text, booleans as 0/1) and, where parameters are `?`, inserts up
to a few dozen rows per statement (`VALUES (...), (...)`): one step, one GIL hand-off. The
statements are compiled from the table definition, so columns cannot drift from
`app/db/tables.py`; chunk sizes are powers of two, so a handful of statements cover every
batch size and stay in the driver's statement cache.

On SQLite both run straight on the driver's connection (the sqlite3 module's cursor, inside
the transaction the writer opened through SQLAlchemy): SQLAlchemy's execution context costs
tens of microseconds of Python per statement, and every microsecond the writer thread holds
the GIL is one the event loop waits (bench/throughput.py, docs/performance.md). A failure
raises the driver's own exception, which app/db/engine.py classifies the same way. While
anything listens to the engine's cursor events (a tracer, a test counting statements), they
go through SQLAlchemy instead, so every statement is still seen.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import (
    ClauseElement,
    Connection,
    Dialect,
    Executable,
    Table,
    bindparam,
)
from sqlalchemy.sql.compiler import SQLCompiler

Row = tuple[Any, ...]
# SQLite's smallest limit on parameters per statement (SQLITE_MAX_VARIABLE_NUMBER before
# 3.32); every build of SQLite takes at least this many.
MAX_PARAMETERS = 999


def insert_rows(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[Row]
) -> None:
    """INSERT `rows` (each a tuple of values for `columns`, in that order, as stored)."""
    dialect = conn.dialect
    if not rows:
        return
    if dialect.paramstyle != "qmark":
        _insert_each(conn, table, columns, rows)
        return
    execute = _executor(conn)
    start, largest = 0, _largest_chunk(len(columns))
    if len(rows) == 1:  # the single-call path: no flattening
        execute(_insert_sql(dialect, table, columns), tuple(rows[0]))
        return
    while start < len(rows):
        size = min(largest, 1 << ((len(rows) - start).bit_length() - 1))
        chunk = rows[start : start + size]
        execute(_multi_row_sql(dialect, table, columns, size), tuple(v for r in chunk for v in r))
        start += size


def _insert_each(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[Row]
) -> None:
    statement = _insert_sql(conn.dialect, table, columns)
    if conn.dialect.positional:
        conn.exec_driver_sql(statement, list(rows))
    else:
        conn.exec_driver_sql(statement, [dict(zip(columns, row, strict=True)) for row in rows])


def _largest_chunk(width: int) -> int:
    """The largest power of two of rows of `width` values one statement may carry."""
    return 1 << ((MAX_PARAMETERS // width).bit_length() - 1)


@lru_cache(maxsize=64)
def _multi_row_sql(dialect: Dialect, table: Table, columns: tuple[str, ...], rows: int) -> str:
    head, values, group = _insert_sql(dialect, table, columns).partition(" VALUES ")
    assert values and group.startswith("(") and group.endswith(")"), group
    return head + values + ", ".join([group] * rows)


@lru_cache(maxsize=32)
def _insert_sql(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    """The one-row INSERT of exactly `columns` for `dialect` (positional parameters in that
    order)."""
    compiled = table.insert().values({c: bindparam(c) for c in columns}).compile(dialect=dialect)
    bound = tuple(compiled.positiontup or ()) if dialect.positional else tuple(compiled.binds)
    if bound != columns:
        raise ValueError(f"the INSERT into {table.name} would bind {bound}, not {columns}")
    return str(compiled)


def json_text(value: Any) -> str:
    """A value of a JSON column in its stored form (what the JSON type's bind does)."""
    return json.dumps(value)


class DriverResult(Protocol):
    """What execute_compiled gives back: the driver's cursor, rows as tuples."""

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> Sequence[Any]: ...


def _observed(conn: Connection) -> bool:
    """Something listens to this engine's statements: they must go through SQLAlchemy."""
    dispatch = conn.dispatch
    return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)


def _executor(conn: Connection) -> Callable[[str, Any], DriverResult]:
    """`execute(sql, parameters)` on the sqlite3 cursor under `conn` (in its transaction),
    or through SQLAlchemy while statements are observed."""
    if _observed(conn):
        return conn.exec_driver_sql
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw.cursor().execute


def execute_compiled(
    conn: Connection, statement: ClauseElement, params: Sequence[dict[str, Any]]
) -> DriverResult:
    """Run `statement` (compiled once per dialect) with `params` straight on the driver's
    cursor: no execution context, compile-cache lookup, or parameter and result processing,
    so rows come back as the driver gives them (JSON as text). For the writer's hottest
    statements (claims, starts, completions) on positional-parameter dialects (SQLite);
    elsewhere (PostgreSQL) it is a plain execute."""
    if not conn.dialect.positional:
        executable = cast(Executable, statement)
        return conn.execute(executable, params[0] if len(params) == 1 else list(params))
    sql, order, fixed = _positional_sql(conn.dialect, statement)
    rows = [tuple(p.get(name, fixed.get(name)) for name in order) for p in params]
    if len(rows) == 1:
        return _executor(conn)(sql, rows[0])
    if _observed(conn):
        return conn.exec_driver_sql(sql, rows)
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw.executemany(sql, rows)


@lru_cache(maxsize=32)
def _positional_sql(
    dialect: Dialect, statement: ClauseElement
) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The SQL, its parameter names in order, and the values bound inside the statement."""
    if not dialect.positional:
        raise ValueError(f"{dialect.name} does not take positional parameters")
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    return str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params)
