"""Reading the SQLite database a move copies from: one read transaction (a consistent
snapshot), every table streamed in primary-key order, a batch at a time (bounded memory),
each row converted for PostgreSQL (app/db/move_values.py) or refused by name."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import Table

from app.db.backup import open_existing
from app.db.move_values import OddValue, converter_of, describe
from app.errors import MoveError

# What names a row in an error: its primary key, except for tasks, whose id users know.
ROW_NAMES = {"tasks": ("id",)}
# A batch is sent once its values reach this many bytes, however few its rows.
BATCH_BYTES = 16 * 1024 * 1024


class SourceSnapshot:
    """The source database in one read transaction, open until `close()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = open_existing(path)
        self._conn.text_factory = bytes
        self._conn.execute("BEGIN")

    def close(self) -> None:
        self._conn.close()

    def count(self, table: Table) -> int:
        found = self._conn.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()
        return int(found[0])

    def check_references(self) -> None:
        """MoveError naming the first row whose foreign key points nowhere (PostgreSQL
        would refuse it; SQLite does not check rows written with its keys off)."""
        with closing(self._conn.execute("PRAGMA foreign_key_check")) as found:
            broken = found.fetchone()
        if broken is not None:
            table, rowid, parent = (_plain(value) for value in broken[:3])
            raise MoveError(
                f"cannot move {table} row rowid={rowid} of {self.path}: it references a "
                f"{parent} row that does not exist; delete it (or add what it references) "
                "and run the move again. Nothing was written to the target"
            )

    def batches(self, table: Table, size: int) -> Iterator[list[dict[str, Any]]]:
        """The rows of `table` converted for PostgreSQL, in key order, in batches of `size`
        rows or BATCH_BYTES of values, whichever comes first (a task's arguments alone may
        be megabytes)."""
        names = [column.name for column in table.columns]
        order = ", ".join(f'"{column.name}"' for column in table.primary_key.columns)
        listed = ", ".join(f'"{name}"' for name in names)
        statement = f'SELECT {listed} FROM "{table.name}" ORDER BY {order}'
        convert = [converter_of(column) for column in table.columns]
        batch: list[dict[str, Any]] = []
        held = 0
        with closing(self._conn.execute(statement)) as cursor:
            for row in cursor:  # sqlite3 steps the statement as rows are asked for
                batch.append(self._converted(table, names, convert, row))
                held += sum(len(value) for value in row if isinstance(value, bytes))
                if len(batch) >= size or held >= BATCH_BYTES:
                    yield batch
                    batch, held = [], 0
        if batch:
            yield batch

    def _converted(
        self, table: Table, names: list[str], convert: list[Any], row: tuple[Any, ...]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, converter, raw in zip(names, convert, row, strict=True):
            try:
                values[name] = converter(raw)
            except OddValue as odd:
                raise MoveError(
                    f"cannot move {table.name} row {_row_name(table, names, row)} of "
                    f"{self.path}: column {name} {odd}, which PostgreSQL cannot hold; fix "
                    "or delete that row (e.g. with the sqlite3 shell, the service stopped) "
                    "and run the move again. Nothing was written to the target"
                ) from None
        return values


def _row_name(table: Table, names: list[str], row: tuple[Any, ...]) -> str:
    keys = ROW_NAMES.get(table.name) or tuple(c.name for c in table.primary_key.columns)
    return ", ".join(f"{key}={_plain(row[names.index(key)])}" for key in keys)


def _plain(raw: object) -> str:
    """A raw key as text for a message: UTF-8 shown as it is, anything else described."""
    if isinstance(raw, bytes):
        try:
            return repr(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return describe(raw)
    return repr(raw)


def schema_revision_of(path: Path) -> str | None:
    """The source's Alembic revision (None: not a litetask database)."""
    with closing(open_existing(path)) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            return None
    return None if row is None else str(row[0])
