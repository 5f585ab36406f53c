"""A listing's page as JSON, made straight from the stored rows.

A page renders every one of its rows, so the common row (plain stored values, times in
range) skips the TaskInfo (whose datetimes would only be turned back into text) and the
datetime arithmetic, and keeps its decoded values as they are: `dumps_decoded` (app/cache/
jsonable.py) makes them plain only when the page holds one orjson cannot write as `jsonable`
would. Any row the reader notes something about goes the defensive way
(`task_json(to_task_info(row))`, app/worker/rendering.py), so every body, render_errors
included, encodes exactly as `task_json` of the same row does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from app.bounds import LATEST_US
from app.web.encoding import iso, task_json, task_url
from app.worker.rendering import STATUSES, Reader, to_task_info

NAIVE_EPOCH = datetime(1970, 1, 1)


class PageRenderer:
    """Renders the rows of one page (TASK_INFO_COLUMNS, in order). It remembers the text of
    each whole second and minute it formats: a page's times share them (created_at and
    run_at of a task run at once, start and end of a short one, tasks submitted together),
    and a look-up costs a fraction of formatting a datetime."""

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}
        self._minutes: dict[int, str] = {}

    def task(self, row: Sequence[Any]) -> dict[str, Any]:
        """`task_json(to_task_info(row))` as `dumps_decoded` writes it: args, kwargs, metadata
        and result as decoded (not yet made plain by `jsonable`)."""
        (
            task_id, task_type, status, priority, args, kwargs, metadata, progress, attempts,
            max_attempts, _, created_at, run_at, started_at, completed_at, timeout, result,
            error, from_cache, idempotency_key, snoozes,
        ) = row  # fmt: skip
        read = Reader()
        body = {
            "id": task_id,
            "task_type": task_type,
            "status": status,
            "priority": priority,
            "progress": read.number("progress", progress),
            "attempts": attempts,
            "max_attempts": max_attempts,
            "created_at": self._time(read, "created_at", created_at),
            "run_at": self._time(read, "run_at", run_at),
            "started_at": self._time(read, "started_at", started_at),
            "completed_at": self._time(read, "completed_at", completed_at),
            "timeout": None if timeout is None else read.number("timeout", timeout),
            "args": read.value("args", args, list, []),
            "kwargs": read.value("kwargs", kwargs, dict, {}),
            "metadata": read.metadata(metadata),
            "result": None if result is None else read.value("result", result, object, None),
            "error": error,
            "errors": [],
            "snoozes": snoozes,
            "from_cache": bool(from_cache),
            "idempotency_key": idempotency_key,
            "url": task_url(task_id),
        }
        if read.errors or not _plain(row) or status not in STATUSES:
            return task_json(to_task_info(row))
        return body

    def _time(self, read: Reader, field: str, stored: Any) -> str | None:
        """`iso()` of the stored time as TaskInfo holds it (None stays None)."""
        if type(stored) is not int or not 0 <= stored <= LATEST_US:
            return iso(read.time(field, stored))
        second, micro = divmod(stored, 1_000_000)
        text = self._seconds.get(second)
        if text is None:
            text = self._seconds[second] = self._second(second)
        return f"{text}.{micro:06d}Z"

    def _second(self, second: int) -> str:
        """The text of a second since the epoch, "YYYY-MM-DDTHH:MM:SS", from its minute's."""
        minute, rest = divmod(second, 60)
        text = self._minutes.get(minute)
        if text is None:
            whole = (NAIVE_EPOCH + timedelta(minutes=minute)).isoformat()
            text = self._minutes[minute] = whole[:-2]  # "YYYY-MM-DDTHH:MM:"
        return f"{text}{rest:02d}"


def _plain(row: Sequence[Any]) -> bool:
    """Every column the fast path copies as stored holds what the schema says (SQLite lets
    a column hold any type; another program may have written the file)."""
    return (
        type(row[0]) is str
        and type(row[1]) is str
        and type(row[3]) is int
        and type(row[8]) is int
        and type(row[9]) is int
        and type(row[20]) is int
        and (row[17] is None or type(row[17]) is str)
        and (row[19] is None or type(row[19]) is str)
        and row[11] is not None
        and row[12] is not None
    )
