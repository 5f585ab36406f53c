"""GET /schedules: each periodic task type with its schedule, its latest slot queued (with
that task's id and status) and its next slot (app/worker/scheduler.py reads them)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.clock import now_us, us_to_datetime
from app.web.encoding import ApiJSONResponse, iso
from app.web.routing import resource
from app.web.state import worker_of
from app.worker.periodic import MISSED_POLICIES
from app.worker.scheduler import ScheduleInfo
from app.worker.status import TaskStatus


async def list_schedules(request: Request) -> Response:
    """By name; an empty list when no task type is periodic."""
    found = await worker_of(request).schedules()
    return ApiJSONResponse(
        {"now": iso(us_to_datetime(now_us())), "schedules": [schedule_json(s) for s in found]}
    )


def schedule_json(info: ScheduleInfo) -> dict[str, Any]:
    """One schedule as JSON (components/schemas/Schedule in the OpenAPI document)."""
    return {
        "name": info.name,
        "cron": info.cron,
        "every": info.every,
        "timezone": info.timezone,
        "missed": info.missed,
        "last_run": iso(info.last_run),
        "last_task_id": info.last_task_id,
        "last_status": None if info.last_status is None else info.last_status.value,
        "next_run": iso(info.next_run),
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


TIME = {"type": "string", "format": "date-time"}
SCHEDULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "cron": _nullable({"type": "string", "description": "Five fields, or six (seconds first)"}),
        "every": _nullable({"type": "integer", "minimum": 1, "description": "Seconds"}),
        "timezone": {"type": "string", "description": "IANA name the cron expression is read in"},
        "missed": {"type": "string", "enum": list(MISSED_POLICIES)},
        "last_run": _nullable({**TIME, "description": "The latest slot queued"}),
        "last_task_id": _nullable({"type": "string"}),
        "last_status": {
            "type": ["string", "null"],
            "enum": [*(s.value for s in TaskStatus), None],
            "description": "Its task's status (null once the task is pruned)",
        },
        "next_run": _nullable({**TIME, "description": "The next slot"}),
    },
    "required": [
        "name",
        "cron",
        "every",
        "timezone",
        "missed",
        "last_run",
        "last_task_id",
        "last_status",
        "next_run",
    ],
}
SCHEDULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "now": TIME,
        "schedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}},
    },
    "required": ["now", "schedules"],
}

routes: list[BaseRoute] = [resource("/schedules", {"GET": list_schedules})]
