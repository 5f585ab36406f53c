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
from types import MappingProxyType
from typing import Any, TypeVar

from app.bounds import EARLIEST, MAX_DEPTH, MAX_RESULT_ELEMENTS, ONE_US, SCALARS, nesting_problem
from app.cache.serialization import unpackb
from app.db.engine import UnreadableJSON
from app.db.tables import tasks
from app.errors import TaskSerializationError
from app.worker.status import AttemptError, AttemptKind, TaskInfo, TaskStatus

T = TypeVar("T")
UNREADABLE = (ValueError, TypeError, ArithmeticError, RecursionError, TaskSerializationError)


# The columns to_task_info reads, in the order it unpacks them (one tuple per row, no
# attribute look-ups: a listing renders every row of a page).
TASK_INFO_COLUMNS = tuple(
    tasks.c[name]
    for name in (
        "id", "task_type", "status", "priority", "args", "kwargs", "metadata", "progress",
        "attempts", "max_attempts", "interruptions", "created_at", "run_at", "started_at",
        "completed_at", "timeout", "result", "error", "from_cache", "idempotency_key",
        "snoozes",
    )
)  # fmt: skip
STATUSES = MappingProxyType({s.value: s for s in TaskStatus})


def to_task_info(row: Sequence[Any], attempt_rows: Sequence[Any] = ()) -> TaskInfo:
    """The TaskInfo of a tasks row selected as TASK_INFO_COLUMNS (and its task_attempts
    rows, oldest first)."""
    (
        task_id, task_type, status, priority, args, kwargs, metadata, progress, attempts,
        max_attempts, interruptions, created_at, run_at, started_at, completed_at, timeout,
        result, error, from_cache, idempotency_key, snoozes,
    ) = row  # fmt: skip
    read = Reader()
    return TaskInfo(
        id=text(task_id),
        task_type=text(task_type),
        status=read.status(status),
        priority=read.integer("priority", priority, 0),
        args=read.value("args", args, list, []),
        kwargs=read.value("kwargs", kwargs, dict, {}),
        metadata=read.metadata(metadata),
        progress=read.number("progress", progress) or 0.0,
        attempts=read.integer("attempts", attempts, 0),
        max_attempts=read.integer("max_attempts", max_attempts, 1),
        interruptions=read.integer("interruptions", interruptions, 0),
        created_at=read.time("created_at", created_at) or EARLIEST,
        run_at=read.time("run_at", run_at) or EARLIEST,
        started_at=read.time("started_at", started_at),
        completed_at=read.time("completed_at", completed_at),
        timeout=None if timeout is None else read.number("timeout", timeout),
        result=None if result is None else read.value("result", result, object, None),
        error=optional_text(error),
        from_cache=bool(from_cache),
        idempotency_key=optional_text(idempotency_key),
        errors=[read.attempt(i, a) for i, a in enumerate(attempt_rows)],
        render_errors=read.errors,
        snoozes=read.integer("snoozes", snoozes, 0),
    )


def text(stored: Any) -> str:
    """A text column's value as text: SQLite lets any column hold a blob (or a number)."""
    if isinstance(stored, bytes):
        return stored.decode("utf-8", "replace")
    return stored if isinstance(stored, str) else str(stored)


def optional_text(stored: Any) -> str | None:
    return None if stored is None else text(stored)


class Reader:
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
        elif value is None or (type(value) is dict and not value):
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
    if size <= MAX_DEPTH or _flat(value, size):
        return None
    within = kind is not object
    return nesting_problem(value, MAX_DEPTH, size + 1, within=within)


def _flat(value: Any, size: int) -> bool:
    """A dict or list of at most `size` scalars: nothing nested, so nothing to walk."""
    kind = type(value)
    if kind is dict:
        return len(value) <= size and all(type(v) in SCALARS for v in value.values())
    return kind is list and len(value) <= size and all(type(v) in SCALARS for v in value)
