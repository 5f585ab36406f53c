"""A listing's page as JSON, made straight from the stored rows.

A page renders every one of its rows, so the common row (plain stored values, times in
range) skips the TaskInfo (whose datetimes would only be turned back into text) and the
datetime arithmetic; any row the reader notes something about goes the defensive way
(`task_json(to_task_info(row))`, app/worker/rendering.py), so every body, render_errors
included, is exactly what `task_json` makes of the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from app.bounds import LATEST_US
from app.cache.jsonable import jsonable
from app.web.encoding import iso, task_json, task_url
from app.worker.rendering import STATUSES, Reader, to_task_info

NAIVE_EPOCH = datetime(1970, 1, 1)


class PageRenderer:
    """Renders the rows of one page (TASK_INFO_COLUMNS, in order). It remembers the text of
    each whole second it formats: a page's times share seconds (created_at and run_at of a
    task run at once, start and end of a short one), and a look-up costs a fraction of
    formatting a datetime."""

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}

    def task(self, row: Sequence[Any]) -> dict[str, Any]:
        """`task_json(to_task_info(row))`, the same dict."""
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
            "args": jsonable(read.value("args", args, list, [])),
            "kwargs": jsonable(read.value("kwargs", kwargs, dict, {})),
            "metadata": jsonable(read.metadata(metadata)),
            "result": self._result(read, result),
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

    @staticmethod
    def _result(read: Reader, stored: bytes | None) -> Any:
        return None if stored is None else jsonable(read.value("result", stored, object, None))

    def _time(self, read: Reader, field: str, stored: Any) -> str | None:
        """`iso()` of the stored time as TaskInfo holds it (None stays None)."""
        if type(stored) is not int or not 0 <= stored <= LATEST_US:
            return iso(read.time(field, stored))
        second, micro = divmod(stored, 1_000_000)
        text = self._seconds.get(second)
        if text is None:
            text = self._seconds[second] = (NAIVE_EPOCH + timedelta(seconds=second)).isoformat()
        return f"{text}.{micro:06d}Z"


def _plain(row: Sequence[Any]) -> bool:
    """Every column the fast path copies as stored holds what the schema says (SQLite lets
    a column hold any type; another program may have written the file)."""
    texts = (row[0], row[1])
    integers = (row[3], row[8], row[9], row[20])
    optional_texts = (row[17], row[19])
    return (
        all(type(v) is str for v in texts)
        and all(type(v) is int for v in integers)
        and all(v is None or type(v) is str for v in optional_texts)
        and row[11] is not None
        and row[12] is not None
    )
