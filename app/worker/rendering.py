"""A stored row read back as a TaskInfo, whatever the row holds.

litetask writes rows within app/bounds.py, but the file is a plain SQLite database that
another program (an older or newer version, a hand-made fix, a disk error) may have written
too, and one unreadable row must not break every listing. So reading never raises for a
stored value: a blob msgpack cannot decode, a value nested deeper than the bounds, metadata
that is not a JSON object, a time outside Python's datetime range, a status this version does
not know, a number column holding text or a blob, a progress that is not finite each become a
placeholder (`[]`, `{}`, None, 0, the epoch for a time, `failed` for a status), and
`TaskInfo.render_errors` names the field and says why. A text column holding a blob reads as
its bytes decoded (invalid UTF-8 reads with U+FFFD, app/db/engine.py). HTTP shows each named
field as null and lists `render_errors` (app/web/encoding.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from app.bounds import EARLIEST, MAX_DEPTH, MAX_RESULT_ELEMENTS, ONE_US, nesting_problem
from app.cache.serialization import unpackb
from app.db.engine import UnreadableJSON
from app.errors import TaskSerializationError
from app.worker.status import AttemptError, AttemptKind, TaskInfo, TaskStatus

T = TypeVar("T")
UNREADABLE = (ValueError, TypeError, ArithmeticError, RecursionError, TaskSerializationError)


def to_task_info(row: Any, attempt_rows: Sequence[Any] = ()) -> TaskInfo:
    """The TaskInfo of a tasks row (and its task_attempts rows, oldest first)."""
    read = _Reader()
    return TaskInfo(
        id=text(row.id),
        task_type=text(row.task_type),
        status=read.status(row.status),
        priority=read.integer("priority", row.priority, 0),
        args=read.value("args", row.args, list, []),
        kwargs=read.value("kwargs", row.kwargs, dict, {}),
        metadata=read.metadata(row._mapping["metadata"]),
        progress=read.number("progress", row.progress) or 0.0,
        attempts=read.integer("attempts", row.attempts, 0),
        max_attempts=read.integer("max_attempts", row.max_attempts, 1),
        interruptions=read.integer("interruptions", row.interruptions, 0),
        created_at=read.time("created_at", row.created_at) or EARLIEST,
        run_at=read.time("run_at", row.run_at) or EARLIEST,
        started_at=read.time("started_at", row.started_at),
        completed_at=read.time("completed_at", row.completed_at),
        timeout=None if row.timeout is None else read.number("timeout", row.timeout),
        result=None if row.result is None else read.value("result", row.result, object, None),
        error=optional_text(row.error),
        from_cache=bool(row.from_cache),
        idempotency_key=optional_text(row.idempotency_key),
        errors=[read.attempt(i, a) for i, a in enumerate(attempt_rows)],
        render_errors=read.errors,
        snoozes=read.integer("snoozes", row.snoozes, 0),
    )


def text(stored: Any) -> str:
    """A text column's value as text: SQLite lets any column hold a blob (or a number)."""
    if isinstance(stored, bytes):
        return stored.decode("utf-8", "replace")
    return stored if isinstance(stored, str) else str(stored)


def optional_text(stored: Any) -> str | None:
    return None if stored is None else text(stored)


class _Reader:
    """Decodes the stored values of one row, noting each it cannot read."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def value(self, field: str, blob: bytes, kind: type[T], placeholder: T) -> T:
        """A msgpack blob holding a `kind` whose contents are within MAX_DEPTH."""
        try:
            value = unpackb(blob)
            problem = _shape_problem(value, kind, len(blob))
        except UNREADABLE as exc:
            problem = f"cannot be decoded: {exc}"
        if problem is not None:
            self.errors[field] = problem
            return placeholder
        return value  # type: ignore[no-any-return]

    def metadata(self, value: Any) -> dict[str, Any]:
        if isinstance(value, UnreadableJSON):
            problem: str | None = f"is not valid JSON: {value.reason}"
        elif value is None:
            return {}
        else:
            problem = _shape_problem(value, dict, MAX_RESULT_ELEMENTS)
        if problem is not None:
            self.errors["metadata"] = problem
            return {}
        return dict(value)

    def time(self, field: str, stored: Any) -> datetime | None:
        if stored is None:
            return None
        try:
            moment: datetime = EARLIEST + stored * ONE_US
        except UNREADABLE:
            self.errors[field] = f"{stored!r} µs since the epoch is not a representable time"
            return None
        return moment

    def number(self, field: str, stored: Any) -> float | None:
        """A finite number (an int or a float as SQLite stores them), else None."""
        number = isinstance(stored, int | float) and not isinstance(stored, bool)
        if number and math.isfinite(stored):
            return float(stored)
        self.errors[field] = f"{stored!r} is not a finite number"
        return None

    def integer(self, field: str, stored: Any, placeholder: int) -> int:
        if isinstance(stored, int) and not isinstance(stored, bool):
            return stored
        self.errors[field] = f"{stored!r} is not an integer"
        return placeholder

    def status(self, stored: Any) -> TaskStatus:
        """A status this version knows; any other reads as `failed`, a state no worker acts
        on and no waiter waits past."""
        try:
            return TaskStatus(stored)
        except ValueError:
            self.errors["status"] = f"{stored!r} is not a status this version of litetask knows"
            return TaskStatus.FAILED

    def attempt(self, index: int, row: Any) -> AttemptError:
        failed_at = self.time(f"errors[{index}].failed_at", row.failed_at) or EARLIEST
        number = self.integer(f"errors[{index}].attempt", row.attempt, index + 1)
        kept = optional_text(row.traceback)
        kind = self.kind(index, row.kind)
        return AttemptError(number, text(row.error_type), text(row.message), kept, failed_at, kind)

    def kind(self, index: int, stored: Any) -> AttemptKind:
        try:
            return AttemptKind(stored)
        except ValueError:
            self.errors[f"errors[{index}].kind"] = f"{stored!r} is not a kind of attempt"
            return AttemptKind.FAILED


def _shape_problem(value: Any, kind: type, size: int) -> str | None:
    """Why a decoded value is unusable: not a `kind`, or nested past MAX_DEPTH. `size` (the
    stored size, each element taking at least a byte) bounds both its depth and its element
    count, so small values skip the walk."""
    if not isinstance(value, kind):
        return f"holds a {type(value).__name__}, not a {kind.__name__}"
    if size <= MAX_DEPTH:
        return None
    within = kind is not object
    return nesting_problem(value, MAX_DEPTH, size + 1, within=within)
