"""GET /openapi.json: an OpenAPI 3.1 document of the API as it behaves (schemathesis checks
that every response conforms; see tests/web/test_openapi.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.bounds import MAX_IDEMPOTENCY_KEY_LENGTH
from app.web.encoding import ApiJSONResponse
from app.web.openapi_batch import BATCH_DESCRIPTION, BATCH_EXAMPLE, BATCH_SCHEMAS
from app.web.openapi_schemas import SCHEMAS, STATUS_VALUES
from app.web.tasks import MAX_PAGE

JSON = "application/json"
PROBLEM = "application/problem+json"
REASONS = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Malformed body or headers",
    401: "Missing or bad credentials or signature",
    403: "Cross-site request refused (the browser's Origin or Sec-Fetch-Site)",
    404: "No such task (or, under /webhooks, no such endpoint)",
    408: "Body not whole within LITETASK_BODY_TIMEOUT seconds",
    409: "Conflict with the task's state",
    413: "Body larger than LITETASK_MAX_BODY_BYTES",
    415: "Body is not JSON",
    422: "Invalid fields (listed in `errors`), unknown task type, or an Idempotency-Key "
    "already used with a different request",
    429: "Too many failed attempts from this address; see Retry-After",
    503: "Not ready: draining, stopped, or the database is not writable",
}
ERRORS_BODY = (400, 401, 408, 413, 415, 422, 503)
TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH},
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(ok: dict[int, str | None], errors: tuple[int, ...]) -> dict[str, Any]:
    """`ok` maps success statuses to a schema name (None: no body); errors are problems."""
    responses: dict[str, Any] = {}
    for status, schema in ok.items():
        entry: dict[str, Any] = {"description": REASONS[status]}
        if schema is not None:
            entry["content"] = {JSON: {"schema": _ref(schema)}}
        responses[str(status)] = entry
    for status in sorted(set(errors) | {401}):
        responses[str(status)] = {
            "description": REASONS[status],
            "content": {PROBLEM: {"schema": _ref("Problem")}},
        }
    return responses


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _readiness(operation_id: str, summary: str) -> dict[str, Any]:
    health = {"content": {JSON: {"schema": _ref("Health")}}}
    return {
        "summary": summary,
        "description": "Public. 503 while draining, stopped, lagging, or the database is "
        "not writable. With LITETASK_API_TOKEN set, the worker and queue counts and the "
        "problems are shown to authenticated callers only.",
        "operationId": operation_id,
        "security": [],
        "responses": {
            "200": {"description": "OK", **health},
            "503": {"description": REASONS[503], **health},
        },
    }


def _bulk(operation_id: str, summary: str, request: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary + " (by ids, or by a filter)",
            "description": "Each task is handled on its own, fenced by its state; the answer "
            "lists each task's outcome. A filter takes at most `limit` tasks per call, oldest "
            "first: pass `next_cursor` back as `cursor` until it is null. See docs/api.md.",
            "operationId": operation_id,
            "requestBody": _json_body(_ref(request)),
            "responses": _responses({200: "BulkResult"}, ERRORS_BODY),
        }
    }


PATHS: dict[str, Any] = {
    "/tasks": {
        "post": {
            "summary": "Submit a task",
            "operationId": "submitTask",
            "parameters": [IDEMPOTENCY_KEY],
            "requestBody": _json_body(_ref("SubmitRequest")),
            "responses": _responses({200: "Task", 202: "Task"}, (*ERRORS_BODY, 409)),
        },
        "get": {
            "summary": "List tasks, newest first",
            "operationId": "listTasks",
            "parameters": [
                {
                    **_query(
                        "status",
                        {"type": "array", "items": {"type": "string", "enum": STATUS_VALUES}},
                    ),
                    "style": "form",
                    "explode": True,
                    "description": "Repeat for tasks in any of several statuses.",
                },
                _query("task_type", {"type": "string"}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
                _query("cursor", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
            ],
            "responses": _responses({200: "TaskPage"}, (422, 503)),
        },
    },
    "/tasks/batch": {
        "post": {
            "summary": "Submit many tasks at once, all or none",
            "description": BATCH_DESCRIPTION,
            "operationId": "submitTasks",
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ref("BatchRequest"), "example": BATCH_EXAMPLE}},
            },
            "responses": _responses({200: "BatchResult", 202: "BatchResult"}, (*ERRORS_BODY, 409)),
        }
    },
    "/tasks/{task_id}": {
        "parameters": [TASK_ID],
        "get": {
            "summary": "Read a task",
            "operationId": "getTask",
            "responses": _responses({200: "Task"}, (404, 503)),
        },
        "delete": {
            "summary": "Cancel a scheduled, pending, claimed or running task",
            "operationId": "cancelTask",
            "responses": _responses({200: "Task"}, (404, 409, 503)),
        },
    },
    "/tasks/{task_id}/retry": {
        "parameters": [TASK_ID],
        "post": {
            "summary": "Queue a failed or cancelled task again",
            "operationId": "retryTask",
            "responses": _responses({202: "Task"}, (404, 409, 503)),
        },
    },
    "/tasks/retry": _bulk(
        "retryTasks", "Queue many failed or cancelled tasks again", "BulkRetryRequest"
    ),
    "/tasks/cancel": _bulk(
        "cancelTasks", "Cancel many pending, claimed or running tasks", "BulkCancelRequest"
    ),
    "/task-types": {
        "get": {
            "summary": "The registered task types",
            "operationId": "listTaskTypes",
            "responses": _responses({200: "TaskTypes"}, ()),
        }
    },
    "/schedules": {
        "get": {
            "summary": "The periodic task types, with their last and next run",
            "description": "Each task type registered with `cron=` or `every=`, by name: its "
            "schedule, the latest slot queued (with that task's id and status) and the next "
            "slot. See docs/tasks.md#periodic-tasks.",
            "operationId": "listSchedules",
            "responses": _responses({200: "Schedules"}, (503,)),
        }
    },
    "/health": {"get": _readiness("health", "Readiness (the same answer as /health/ready)")},
    "/health/ready": {"get": _readiness("ready", "Readiness: can take and run work now")},
    "/health/live": {
        "get": {
            "summary": "Liveness: the process answers (200 even while draining)",
            "operationId": "live",
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {JSON: {"schema": _ref("Live")}}}
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text exposition format; docs/operations.md)",
            "operationId": "metrics",
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_responses({}, ()),
            },
        }
    },
    "/stats/throughput": {
        "get": {
            "summary": "Completed and failed tasks per minute over the last hour",
            "description": "Sixty minutes, oldest first; the last is the current minute. "
            "Counted from committed events, plus what finished in that hour before the "
            "service started (read once from an index).",
            "operationId": "throughput",
            "responses": _responses({200: "Throughput"}, ()),
        }
    },
    "/webhooks/{task_type}": {
        "post": {
            "summary": "Receive a signed webhook delivery as a task",
            "operationId": "receiveWebhook",
            "security": [],
            "parameters": [
                {"name": "task_type", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": _json_body({}),
            "responses": _responses(
                {200: "WebhookAccepted", 202: "WebhookAccepted"}, (*ERRORS_BODY, 404)
            ),
        }
    },
    "/cache": {
        "delete": {
            "summary": "Forget every cached task result",
            "operationId": "clearCache",
            "responses": _responses({200: "CacheCleared"}, (503,)),
        }
    },
    "/auth/session": {
        "post": {
            "summary": "Trade the API token for a session cookie",
            "operationId": "createSession",
            "security": [],
            "requestBody": _json_body(
                {"type": "object", "properties": {"token": {"type": "string"}}}
            ),
            "responses": _responses({200: "Session"}, (400, 403, 408, 413, 429)),
        },
        "delete": {
            "summary": "End every session (all browsers) and clear the cookie",
            "operationId": "endSession",
            "responses": _responses({204: None}, (403, 415)),
        },
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "litetask",
            "version": "0.1.0",
            "description": "Durable background tasks over HTTP. See docs/api.md.",
        },
        "paths": PATHS,
        "components": {
            "schemas": {**SCHEMAS, **BATCH_SCHEMAS},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "litetask_session",
                    "description": "named __Host-litetask_session where the cookie is Secure",
                },
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


async def openapi_json(_request: Request) -> Response:
    return ApiJSONResponse(document())


routes: list[BaseRoute] = [Route("/openapi.json", openapi_json, methods=["GET"])]
