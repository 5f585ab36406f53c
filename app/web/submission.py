"""The body of POST /tasks, checked into what AsyncTaskWorker.submit takes.

Every option is checked by app/bounds.py, the same checks the Python API runs, so a 422 here
lists each bad field at once; sizes of args, kwargs and metadata are checked there too.
"""

from __future__ import annotations

from typing import Any

from app import bounds
from app.web.validation import Fields, json_array, json_object, timestamp
from app.worker.batch import TaskCall
from app.worker.options import TaskOptions

# One accepted request to run a task: what to run, with what, and how.
Submission = TaskCall


def parse_submission(body: Any, idempotency_key: str | None) -> Submission:
    """A Submission from a POST /tasks body and its Idempotency-Key header, or a 422 that
    lists every bad field."""
    fields = Fields(body)
    submission = read_submission(fields, idempotency_key)
    fields.raise_if_invalid()
    assert submission is not None
    return submission


def read_submission(fields: Fields, idempotency_key: str | None) -> Submission | None:
    """The Submission `fields` hold; None when they have errors (listed in fields.errors)."""
    task_type = fields.get("task_type", bounds.task_type, required=True)
    args = fields.get("args", json_array) or []
    kwargs = _kwargs(fields)
    options = _options(fields, idempotency_key)
    fields.reject_unknown()
    if fields.errors or task_type is None:
        return None
    return Submission(task_type, args, kwargs, options)


def _kwargs(fields: Fields) -> dict[str, Any]:
    kwargs = fields.get("kwargs", json_object)
    params = fields.get("params", json_object)
    if kwargs is not None and params is not None:
        fields.error("params", "is an alias of kwargs; give one of them, not both")
    return kwargs or params or {}


def _options(fields: Fields, idempotency_key: str | None) -> TaskOptions:
    delay = fields.get("delay", bounds.delay)
    run_at = fields.get("run_at", timestamp)
    if delay is not None and run_at is not None:
        fields.error("run_at", "give delay or run_at, not both")
    if idempotency_key is not None:
        fields.check("Idempotency-Key", idempotency_key, bounds.idempotency_key)
    return TaskOptions(
        priority=fields.get("priority", bounds.priority),
        task_id=fields.get("task_id", bounds.task_id),
        metadata=fields.get("metadata", bounds.metadata) or {},
        timeout=fields.get("timeout", bounds.timeout),
        delay=delay,
        run_at=run_at,
        max_attempts=fields.get("max_attempts", bounds.max_attempts),
        idempotency_key=idempotency_key,
        use_cache=fields.get("use_cache", bounds.use_cache),
        cache_ttl=fields.get("cache_ttl", bounds.cache_ttl),
    )
