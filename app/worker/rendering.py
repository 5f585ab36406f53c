"""A stored row read back as a TaskInfo, whatever the row holds.

litetask writes rows within app/bounds.py, but the file is a plain SQLite database that
another program (an older version, a hand-made fix, a disk error) may have written too, and
one unreadable row must not break every listing. So reading never raises for a stored value:
a blob msgpack cannot decode, a value nested deeper than the bounds, metadata that is not a
JSON object, a time outside Python's datetime range each become a placeholder (`[]`, `{}`,
None, or the epoch for a time), and `TaskInfo.render_errors` names the field and says why.
HTTP shows such a field as null and lists `render_errors` (app/web/encoding.py).
"""

from __future__ import annotations

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
        id=row.id,
        task_type=row.task_type,
        status=TaskStatus(row.status),
        priority=row.priority,
        args=read.value("args", row.args, list, []),
        kwargs=read.value("kwargs", row.kwargs, dict, {}),
        metadata=read.metadata(row._mapping["metadata"]),
        progress=read.number("progress", row.progress),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        interruptions=row.interruptions,
        created_at=read.time("created_at", row.created_at) or EARLIEST,
        run_at=read.time("run_at", row.run_at) or EARLIEST,
        started_at=read.time("started_at", row.started_at),
        completed_at=read.time("completed_at", row.completed_at),
        timeout=row.timeout,
        result=None if row.result is None else read.value("result", row.result, object, None),
        error=row.error,
        from_cache=bool(row.from_cache),
        idempotency_key=row.idempotency_key,
        errors=[read.attempt(i, a) for i, a in enumerate(attempt_rows)],
        render_errors=read.errors,
        snoozes=row.snoozes,
    )


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

    def number(self, field: str, stored: Any) -> float:
        try:
            return float(stored)
        except UNREADABLE:
            self.errors[field] = f"{stored!r} is not a number"
            return 0.0

    def attempt(self, index: int, row: Any) -> AttemptError:
        failed_at = self.time(f"errors[{index}].failed_at", row.failed_at) or EARLIEST
        kind = self.kind(index, row.kind)
        return AttemptError(
            row.attempt, row.error_type, row.message, row.traceback, failed_at, kind
        )

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
