"""The few SQL spellings that differ between SQLite and PostgreSQL, each compiled per
dialect, so a query is written once: the larger of two values, a row's physical id, an
upsert, and work only one process may do at a time. SQLite's output is exactly what the code
wrote before."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnClause, FunctionElement


class greatest(FunctionElement[Any]):  # noqa: N801  (named as SQL functions are)
    """The larger of its arguments: `max(a, b)` on SQLite, `greatest(a, b)` elsewhere."""

    name = "greatest"
    inherit_cache = True


@compiles(greatest)
def _greatest(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "sqlite")
def _sqlite_max(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


class RowId(ColumnClause[int]):
    """A row's physical id, for deleting a batch of rows that have no integer key:
    `rowid` on SQLite, `ctid` on PostgreSQL."""

    inherit_cache = True

    def __init__(self) -> None:
        super().__init__("rowid", Integer(), is_literal=True)


@compiles(RowId, "postgresql")
def _ctid(_element: RowId, _compiler: Any, **_kw: Any) -> str:
    return "ctid"


def row_id() -> ColumnElement[int]:
    return RowId()


@functools.cache
def insert_for(dialect_name: str, table: Table) -> Any:
    """INSERT into `table` with ON CONFLICT support, for the named dialect."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def alone(conn: Connection, key: int) -> bool:
    """Inside the caller's transaction: True when no other transaction of any process does
    the work named by `key` now, and none will start it until this one ends. On SQLite the
    single writer makes that so already; on PostgreSQL it is a transaction-scoped advisory
    lock, tried without waiting (False: another process holds it)."""
    if conn.dialect.name != "postgresql":
        return True
    taken = conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}).scalar()
    return bool(taken)
