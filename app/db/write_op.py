"""WriteOp: one unit of work for the group-commit writer (app/db/writer.py); QuietOp: work
it runs between transactions when nothing else waits."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Generic, Self, TypeVar

from sqlalchemy import Connection

from app.errors import TaskError
from app.events.log import TaskEvent

T = TypeVar("T")


class WriteOp(Generic[T]):
    """One unit of work for the writer. Subclasses implement `apply` (one op) or override
    `apply_batch` (several ops of this class at once); both run in the writer thread. An op
    records the events it caused in `self.events`; they are logged in the same transaction."""

    def __init__(self) -> None:
        self.events: list[TaskEvent] = []
        self._result: T | None = None
        self._error: BaseException | None = None

    def apply(self, conn: Connection) -> T:
        raise NotImplementedError

    @classmethod
    def apply_batch(cls, conn: Connection, ops: Sequence[Self]) -> None:
        for op in ops:
            op.run_one(conn)

    def run_one(self, conn: Connection) -> None:
        """Apply this op alone, keeping a domain error (TaskError) as its outcome."""
        try:
            self.set_result(self.apply(conn))
        except TaskError as exc:
            self.set_error(exc)

    def set_result(self, value: T) -> None:
        self._result, self._error = value, None

    def set_error(self, error: BaseException) -> None:
        self._result, self._error = None, error

    def outcome(self) -> T:
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


class QuietOp(WriteOp[T | None]):
    """Work on the writer's own connection outside any transaction (a WAL checkpoint needs
    that). The writer runs it alone, after the writes taken with it have committed, and only
    when no other write waits (a quiet moment); otherwise its outcome is None: skipped, try
    again later. So it never races a transaction of the writer's."""

    def apply_alone(self, raw: sqlite3.Connection) -> T:
        """Runs in the writer thread on the raw connection, no transaction open."""
        raise NotImplementedError

    def run_alone(self, raw: sqlite3.Connection) -> None:
        try:
            self.set_result(self.apply_alone(raw))
        except Exception as exc:  # the op's own failure, never the writer's
            self.set_error(exc)


def by_type(ops: list[WriteOp[Any]]) -> dict[type[WriteOp[Any]], list[WriteOp[Any]]]:
    """Ops grouped by class, each group where its first op arrived, order kept within a
    group: every completion in a transaction becomes one executemany. Ops of different
    classes commute (each is fenced on the row's status), so the reordering is safe."""
    groups: dict[type[WriteOp[Any]], list[WriteOp[Any]]] = {}
    for op in ops:
        groups.setdefault(type(op), []).append(op)
    return groups
