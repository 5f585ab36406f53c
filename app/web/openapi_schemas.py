"""JSON Schemas of the API's bodies (components/schemas of the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from app.bounds import (
    MAX_ATTEMPTS_LIMIT,
    MAX_BULK_TASKS,
    MAX_SECONDS,
    MAX_TASK_ID_LENGTH,
    MAX_TASK_TYPE_LENGTH,
    PRIORITY_MAX,
    PRIORITY_MIN,
)
from app.web.schedules import SCHEDULE_SCHEMA, SCHEDULES_SCHEMA
from app.worker.status import ACTIVE, RETRYABLE, AttemptKind, TaskStatus

STATUS_VALUES = [s.value for s in TaskStatus]
ANY: dict[str, Any] = {}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _seconds(minimum: float, *, exclusive: bool) -> dict[str, Any]:
    bound = "exclusiveMinimum" if exclusive else "minimum"
    return {"type": "number", bound: minimum, "maximum": MAX_SECONDS}


def _optional(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field: null means "not given"."""
    return {**schema, "type": [schema["type"], "null"]}


def _not_both(first: str, second: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Forbid giving both fields a (non-null) value."""
    both = {name: {"type": properties[name]["type"][0]} for name in (first, second)}
    return {"not": {"properties": both, "required": [first, second]}}


SUBMIT_PROPERTIES: dict[str, Any] = {
    "args": _optional({"type": "array", "description": "Positional arguments."}),
    "kwargs": _optional({"type": "object", "description": "Keyword arguments."}),
    "params": _optional({"type": "object", "description": "Alias of kwargs (give one)."}),
    "priority": _optional({"type": "integer", "minimum": PRIORITY_MIN, "maximum": PRIORITY_MAX}),
    "task_id": _optional({"type": "string", "minLength": 1, "maxLength": MAX_TASK_ID_LENGTH}),
    "metadata": _optional({"type": "object"}),
    "timeout": _optional(_seconds(0, exclusive=True)),
    "delay": _optional(_seconds(0, exclusive=False)),
    "run_at": _optional({"type": "string", "format": "date-time"}),
    "max_attempts": _optional({"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS_LIMIT}),
    "use_cache": _optional({"type": "boolean"}),
    "cache_ttl": _optional(_seconds(0, exclusive=True)),
}

SUBMIT_REQUEST = {
    **_object(
        {
            "task_type": {"type": "string", "minLength": 1, "maxLength": MAX_TASK_TYPE_LENGTH},
            **SUBMIT_PROPERTIES,
        },
        ["task_type"],
    ),
    "additionalProperties": False,
    "allOf": [
        _not_both("kwargs", "params", SUBMIT_PROPERTIES),
        _not_both("delay", "run_at", SUBMIT_PROPERTIES),
    ],
}

ATTEMPT_ERROR = _object(
    {
        "attempt": {"type": ["integer", "null"]},
        "error_type": {"type": "string"},
        "message": {"type": "string"},
        "traceback": {"type": ["string", "null"]},
        "failed_at": NULLABLE_TIME,
        "kind": {
            "type": "string",
            "enum": [k.value for k in AttemptKind],
            "description": "failed (raised or timed out), snoozed (raised Retry: no attempt "
            "spent), aborted (raised Abort: no further attempt)",
        },
    },
    ["attempt", "error_type", "message", "traceback", "failed_at", "kind"],
)

TASK_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "task_type": {"type": "string"},
    # Null (and named in render_errors) only in a row another program wrote wrongly.
    "status": {"type": ["string", "null"], "enum": [*STATUS_VALUES, None]},
    "priority": {"type": ["integer", "null"]},
    "progress": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    "attempts": {"type": ["integer", "null"], "minimum": 0},
    "max_attempts": {"type": ["integer", "null"], "minimum": 1},
    "created_at": NULLABLE_TIME,
    "run_at": NULLABLE_TIME,
    "started_at": NULLABLE_TIME,
    "completed_at": NULLABLE_TIME,
    "timeout": {"type": ["number", "null"]},
    "args": {"type": ["array", "null"]},
    "kwargs": {"type": ["object", "null"]},
    "metadata": {"type": ["object", "null"]},
    "result": ANY,
    "error": {"type": ["string", "null"]},
    "errors": {"type": "array", "items": {"$ref": "#/components/schemas/AttemptError"}},
    "snoozes": {"type": "integer", "minimum": 0},
    "from_cache": {"type": "boolean"},
    "idempotency_key": {"type": ["string", "null"]},
    "url": {"type": "string"},
}
RENDER_ERRORS = {
    "type": "array",
    "description": "Stored values that could not be read back; each such field is null.",
    "items": _object(
        {"field": {"type": "string"}, "message": {"type": "string"}}, ["field", "message"]
    ),
}
TASK = _object({**TASK_PROPERTIES, "render_errors": RENDER_ERRORS}, list(TASK_PROPERTIES))

TASK_PAGE = _object(
    {
        "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
        "next_cursor": {"type": ["integer", "null"]},
    },
    ["tasks", "next_cursor"],
)

PARAMETER = _object(
    {
        "name": {"type": "string"},
        "kind": {"type": "string"},
        "required": {"type": "boolean"},
        "annotation": {"type": "string"},
        "default": ANY,
    },
    ["name", "kind", "required"],
)

TASK_TYPES = _object(
    {
        "task_types": {
            "type": "array",
            "items": _object(
                {
                    "name": {"type": "string"},
                    "doc": {"type": "string"},
                    "parameters": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Parameter"},
                    },
                },
                ["name", "doc", "parameters"],
            ),
        }
    },
    ["task_types"],
)

HEALTH = _object(
    {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "workers": _object(
            {"max": {"type": "integer"}, "active": {"type": "integer"}}, ["max", "active"]
        ),
        "queue": {"type": "object", "additionalProperties": {"type": "integer"}},
        "problems": {"type": "array", "items": {"type": "string"}},
    },
    ["status"],  # workers, queue and problems: for authenticated callers only
)

LIVE = _object({"status": {"type": "string", "enum": ["ok"]}}, ["status"])

WEBHOOK_ACCEPTED = _object(
    {
        "task_id": {"type": "string"},
        "url": {"type": "string"},
        "created": {"type": "boolean"},
    },
    ["task_id", "url", "created"],
)

SESSION = _object(
    {"auth_required": {"type": "boolean"}, "expires_at": NULLABLE_TIME},
    ["auth_required", "expires_at"],
)

CACHE_CLEARED = _object(
    {"cleared": {"type": "boolean"}, "backend": {"type": "string"}}, ["cleared", "backend"]
)


def _bulk_request(applies_to: frozenset[TaskStatus]) -> dict[str, Any]:
    """A bulk body: `ids` alone, or a filter (status and/or task_type, limit, cursor)."""
    status = {"type": "string", "enum": sorted(s.value for s in applies_to)}
    by_ids = _object(
        {
            "ids": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_TASK_ID_LENGTH},
                "minItems": 1,
                "maxItems": MAX_BULK_TASKS,
            }
        },
        ["ids"],
    )
    by_filter = _object(
        {
            "status": {"anyOf": [status, {"type": "array", "items": status, "minItems": 1}]},
            "task_type": {"type": "string", "minLength": 1, "maxLength": MAX_TASK_TYPE_LENGTH},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_BULK_TASKS},
            "cursor": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        }
    )
    by_filter["anyOf"] = [{"required": ["status"]}, {"required": ["task_type"]}]
    return {
        "oneOf": [
            {**by_ids, "additionalProperties": False},
            {**by_filter, "additionalProperties": False},
        ],
        "description": f"At most {MAX_BULK_TASKS} tasks per call: `ids`, or a filter's page.",
    }


BULK_RESULT = _object(
    {
        "action": {"type": "string", "enum": ["retry", "cancel"]},
        "tasks": {
            "type": "array",
            "items": _object(
                {
                    "id": {"type": "string"},
                    "outcome": {
                        "type": "string",
                        "enum": ["retried", "cancelled", "skipped", "not_found"],
                    },
                    "status": {"type": ["string", "null"], "enum": [*STATUS_VALUES, None]},
                    "detail": {"type": "string"},
                },
                ["id", "outcome", "status"],
            ),
        },
        "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "next_cursor": {"type": ["integer", "null"]},
    },
    ["action", "tasks", "counts", "next_cursor"],
)

THROUGHPUT = _object(
    {
        "bucket_seconds": {"type": "integer", "enum": [60]},
        "now": {"type": "string", "format": "date-time"},
        "minutes": {
            "type": "array",
            "minItems": 60,
            "maxItems": 60,
            "items": _object(
                {
                    "start": {"type": "string", "format": "date-time"},
                    "completed": {"type": "integer", "minimum": 0},
                    "failed": {"type": "integer", "minimum": 0},
                },
                ["start", "completed", "failed"],
            ),
        },
        "completed": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
    },
    ["bucket_seconds", "now", "minutes", "completed", "failed"],
)

PROBLEM = {
    **_object(
        {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": _object(
                    {"field": {"type": "string"}, "message": {"type": "string"}},
                    ["field", "message"],
                ),
            },
        },
        ["type", "title", "status", "detail"],
    ),
    "additionalProperties": True,
}

SCHEMAS: dict[str, Any] = {
    "SubmitRequest": SUBMIT_REQUEST,
    "Task": TASK,
    "AttemptError": ATTEMPT_ERROR,
    "TaskPage": TASK_PAGE,
    "Parameter": PARAMETER,
    "TaskTypes": TASK_TYPES,
    "Health": HEALTH,
    "Live": LIVE,
    "WebhookAccepted": WEBHOOK_ACCEPTED,
    "Session": SESSION,
    "CacheCleared": CACHE_CLEARED,
    "Problem": PROBLEM,
    "BulkRetryRequest": _bulk_request(RETRYABLE),
    "BulkCancelRequest": _bulk_request(ACTIVE),
    "BulkResult": BULK_RESULT,
    "Throughput": THROUGHPUT,
    "Schedule": SCHEDULE_SCHEMA,
    "Schedules": SCHEDULES_SCHEMA,
}
