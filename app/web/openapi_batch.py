"""The OpenAPI schemas of POST /tasks/batch (app/web/batch.py): its request, each item (a
POST /tasks body with an idempotency key of its own) and its answer."""

from __future__ import annotations

from typing import Any

from app.bounds import MAX_BATCH_BYTES, MAX_BATCH_TASKS, MAX_IDEMPOTENCY_KEY_LENGTH
from app.web.openapi_schemas import SUBMIT_REQUEST

KEY = {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH}

BATCH_ITEM: dict[str, Any] = {
    **SUBMIT_REQUEST,
    "properties": {**SUBMIT_REQUEST["properties"], "idempotency_key": KEY},
}

BATCH_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tasks": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH_TASKS,
            "items": {"$ref": "#/components/schemas/BatchItem"},
        }
    },
    "required": ["tasks"],
    "additionalProperties": False,
}

# A task of the answer: the task, and whether this request created it (false: its
# idempotency key was used before, and this is the original).
BATCH_TASK: dict[str, Any] = {
    "allOf": [
        {"$ref": "#/components/schemas/Task"},
        {
            "type": "object",
            "properties": {"created": {"type": "boolean"}},
            "required": ["created"],
        },
    ]
}

BATCH_RESULT: dict[str, Any] = {
    "type": "object",
    "properties": {"tasks": {"type": "array", "items": {"$ref": "#/components/schemas/BatchTask"}}},
    "required": ["tasks"],
}

BATCH_SCHEMAS = {
    "BatchRequest": BATCH_REQUEST,
    "BatchItem": BATCH_ITEM,
    "BatchResult": BATCH_RESULT,
    "BatchTask": BATCH_TASK,
}

# Two tasks of the demo types (`litetask serve --demo`); schemathesis sends it as it is.
BATCH_EXAMPLE = {
    "tasks": [
        {"task_type": "demo.add", "args": [1, 2]},
        {"task_type": "demo.echo", "kwargs": {"x": 1}, "priority": 5},
    ]
}

BATCH_DESCRIPTION = (
    f"1 to {MAX_BATCH_TASKS} tasks, each a POST /tasks body (with an `idempotency_key` of "
    "its own, if any), all or none: when one is invalid nothing is queued, and the 422 lists "
    "each bad field as `tasks[i].field` and each bad index in `invalid_indexes`. Their args, "
    f"kwargs and metadata may take {MAX_BATCH_BYTES // 2**20} MiB in all (else a 422 naming "
    "`tasks`). The tasks "
    "are written in one transaction and answered in order, each with `created` (false: its "
    "idempotency key was used before and this is the original); 202 when at least one was "
    "created, 200 when none was. See docs/api.md."
)
