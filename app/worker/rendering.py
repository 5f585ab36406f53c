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
from types import MappingProxyType
from typing import Any, TypeVar

from app.bounds import EARLIEST, MAX_DEPTH, MAX_RESULT_ELEMENTS, ONE_US, SCALARS, nesting_problem
from app.cache.serialization import unpackb
from app.db.engine import UnreadableJSON
from app.db.tables import tasks
from app.errors import TaskSerializationError
from app.worker.status import AttemptError, TaskInfo, TaskStatus

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
    )
)  # fmt: skip
STATUSES = MappingProxyType({s.value: s for s in TaskStatus})


def to_task_info(row: Sequence[Any], attempt_rows: Sequence[Any] = ()) -> TaskInfo:
    """The TaskInfo of a tasks row selected as TASK_INFO_COLUMNS (and its task_attempts
    rows, oldest first)."""
    (
        task_id, task_type, status, priority, args, kwargs, metadata, progress, attempts,
        max_attempts, interruptions, created_at, run_at, started_at, completed_at, timeout,
        result, error, from_cache, idempotency_key,
    ) = row  # fmt: skip
    read = Reader()
    return TaskInfo(
        id=task_id,
        task_type=task_type,
        status=STATUSES.get(status) or TaskStatus(status),
        priority=priority,
        args=read.value("args", args, list, []),
        kwargs=read.value("kwargs", kwargs, dict, {}),
        metadata=read.metadata(metadata),
        progress=read.number("progress", progress),
        attempts=attempts,
        max_attempts=max_attempts,
        interruptions=interruptions,
        created_at=read.time("created_at", created_at) or EARLIEST,
        run_at=read.time("run_at", run_at) or EARLIEST,
        started_at=read.time("started_at", started_at),
        completed_at=read.time("completed_at", completed_at),
        timeout=timeout,
        result=None if result is None else read.value("result", result, object, None),
        error=error,
        from_cache=bool(from_cache),
        idempotency_key=idempotency_key,
        errors=[read.attempt(i, a) for i, a in enumerate(attempt_rows)],
        render_errors=read.errors,
    )


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

    def number(self, field: str, stored: Any) -> float:
        try:
            return float(stored)
        except UNREADABLE:
            self.errors[field] = f"{stored!r} is not a number"
            return 0.0

    def attempt(self, index: int, row: Any) -> AttemptError:
        failed_at = self.time(f"errors[{index}].failed_at", row.failed_at) or EARLIEST
        return AttemptError(row.attempt, row.error_type, row.message, row.traceback, failed_at)


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
