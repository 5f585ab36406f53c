"""JSON for HTTP: task values (msgpack extension types included) and TaskInfo as JSON.

Datetimes, dates and times become ISO 8601 strings, UUIDs and Decimals strings, sets and
tuples lists, bytes base64 strings, non-finite floats null, and mapping keys strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.responses import JSONResponse

from app.cache.jsonable import dumps as dumps  # the one JSON encoder, re-exported
from app.cache.jsonable import dumps_decoded, jsonable
from app.cache.serialization import unpackb
from app.clock import us_to_datetime
from app.worker.records import NewTask
from app.worker.status import AttemptError, TaskInfo


def inserted_task_info(task: NewTask) -> TaskInfo:
    """The TaskInfo of a task exactly as its row was just inserted (no read-back needed)."""
    created_at, run_at = us_to_datetime(task.created_at), us_to_datetime(task.run_at)
    assert created_at is not None and run_at is not None
    return TaskInfo(
        id=task.id,
        task_type=task.task_type,
        status=task.status,
        priority=task.priority,
        args=list(unpackb(task.args)),
        kwargs=dict(unpackb(task.kwargs)),
        metadata=task.metadata,
        progress=0.0,
        attempts=0,
        max_attempts=task.max_attempts,
        interruptions=0,
        created_at=created_at,
        run_at=run_at,
        started_at=None,
        completed_at=None,
        timeout=task.timeout,
        idempotency_key=task.idempotency_key,
    )


def iso(value: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 in UTC with a `Z`, or None."""
    if value is None:
        return None
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def task_json(info: TaskInfo) -> dict[str, Any]:
    """The public JSON shape of one task (components/schemas/Task in the OpenAPI document).
    A stored value that could not be read back is null, and `render_errors` lists it
    (present only then; see app/worker/rendering.py)."""
    body: dict[str, Any] = {
        "id": info.id,
        "task_type": info.task_type,
        "status": info.status.value,
        "priority": info.priority,
        "progress": info.progress,
        "attempts": info.attempts,
        "max_attempts": info.max_attempts,
        "created_at": iso(info.created_at),
        "run_at": iso(info.run_at),
        "started_at": iso(info.started_at),
        "completed_at": iso(info.completed_at),
        "timeout": info.timeout,
        "args": jsonable(info.args),
        "kwargs": jsonable(info.kwargs),
        "metadata": jsonable(info.metadata),
        "result": jsonable(info.result),
        "error": info.error,
        "errors": [_attempt_json(e) for e in info.errors],
        "snoozes": info.snoozes,
        "from_cache": info.from_cache,
        "idempotency_key": info.idempotency_key,
        "url": task_url(info.id),
    }
    if info.render_errors:
        _blank(body, info.render_errors)
        body["render_errors"] = [
            {"field": name, "message": message} for name, message in info.render_errors.items()
        ]
    return body


def task_url(task_id: str) -> str:
    """The path of a task, its id percent-encoded (safe in a Location header). An id of
    ASCII letters, digits and hyphens (every generated id) has nothing to encode."""
    if task_id.isascii() and task_id.replace("-", "").isalnum():
        return "/tasks/" + task_id
    return "/tasks/" + quote(task_id, safe="")


def _blank(body: dict[str, Any], unreadable: dict[str, str]) -> None:
    """Null each unreadable field: a top-level name, or `errors[i].<name>`."""
    for name in unreadable:
        if name in body:
            body[name] = None
        elif name.startswith("errors["):
            index, _, field = name[len("errors[") :].partition("].")
            if field != "kind":  # an unreadable kind reads as "failed"
                body["errors"][int(index)][field] = None


def _attempt_json(error: AttemptError) -> dict[str, Any]:
    return {
        "attempt": error.attempt,
        "error_type": error.error_type,
        "message": error.message,
        "traceback": error.traceback,
        "failed_at": iso(error.failed_at),
        "kind": error.kind.value,
    }


class ApiJSONResponse(JSONResponse):
    """JSONResponse rendered with `dumps`."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


class DecodedJSONResponse(JSONResponse):
    """JSONResponse rendered with `dumps_decoded`: for bodies holding stored values as
    decoded (a listing's page, app/web/listing.py)."""

    def render(self, content: Any) -> bytes:
        return dumps_decoded(content)
