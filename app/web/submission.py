"""The body of POST /tasks, checked into what AsyncTaskWorker.submit takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.web.validation import (
    INT32,
    Fields,
    boolean,
    integer,
    json_array,
    json_object,
    seconds,
    string,
    timestamp,
)
from app.worker.options import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_TASK_ID_LENGTH, TaskOptions

MAX_TASK_TYPE_LENGTH = 200
MAX_ATTEMPTS_LIMIT = 1000
# The checks, built once rather than on every request.
TASK_TYPE = string(MAX_TASK_TYPE_LENGTH)
TASK_ID = string(MAX_TASK_ID_LENGTH)
PRIORITY = integer(-INT32, INT32 - 1)
MAX_ATTEMPTS = integer(1, MAX_ATTEMPTS_LIMIT)
DELAY = seconds(allow_zero=True)
POSITIVE_SECONDS = seconds(allow_zero=False)


@dataclass(frozen=True, slots=True)
class Submission:
    """One accepted request to run a task: what to run, with what, and how."""

    task_type: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: TaskOptions


def parse_submission(body: Any, idempotency_key: str | None) -> Submission:
    """A Submission from a POST /tasks body and its Idempotency-Key header, or a 422 that
    lists every bad field."""
    fields = Fields(body)
    task_type = fields.get("task_type", TASK_TYPE, required=True)
    args = fields.get("args", json_array) or []
    kwargs = _kwargs(fields)
    options = _options(fields, idempotency_key)
    fields.reject_unknown()
    fields.raise_if_invalid()
    assert task_type is not None
    return Submission(task_type, args, kwargs, options)


def _kwargs(fields: Fields) -> dict[str, Any]:
    kwargs = fields.get("kwargs", json_object)
    params = fields.get("params", json_object)
    if kwargs is not None and params is not None:
        fields.error("params", "is an alias of kwargs; give one of them, not both")
    return kwargs or params or {}


def _options(fields: Fields, idempotency_key: str | None) -> TaskOptions:
    delay = fields.get("delay", DELAY)
    run_at = fields.get("run_at", timestamp)
    if delay is not None and run_at is not None:
        fields.error("run_at", "give delay or run_at, not both")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
        fields.error("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return TaskOptions(
        priority=fields.get("priority", PRIORITY),
        task_id=fields.get("task_id", TASK_ID),
        metadata=fields.get("metadata", json_object) or {},
        timeout=fields.get("timeout", POSITIVE_SECONDS),
        delay=delay,
        run_at=run_at,
        max_attempts=fields.get("max_attempts", MAX_ATTEMPTS),
        idempotency_key=idempotency_key,
        use_cache=fields.get("use_cache", boolean),
        cache_ttl=fields.get("cache_ttl", POSITIVE_SECONDS),
    )
