"""POST /tasks/retry and POST /tasks/cancel: one action on many tasks (app/worker/bulk.py).

The body names the tasks: `ids` (at most MAX_BULK_TASKS), or a filter of `status` (one or a
list, of the statuses the action applies to) and/or `task_type`, with `limit` and the
`cursor` a previous answer gave. The answer lists each task's outcome; a filter's answer
carries `next_cursor` until the pass is over.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app import bounds
from app.bounds import MAX_BULK_TASKS
from app.web.body import read_json
from app.web.encoding import ApiJSONResponse
from app.web.routing import resource
from app.web.state import settings_of, worker_of
from app.web.validation import Fields, Invalid, integer
from app.worker.bulk import CANCEL, RETRY, BulkAction, BulkResult, Outcome, Selection, run_bulk
from app.worker.status import TaskStatus

FILTER_FIELDS = ("status", "task_type", "limit", "cursor")
MAX_CURSOR = 2**63 - 1


async def bulk_retry(request: Request) -> Response:
    """Queue again every failed or cancelled task the body names."""
    return await _bulk(request, RETRY)


async def bulk_cancel(request: Request) -> Response:
    """Cancel every pending, claimed or running task the body names."""
    return await _bulk(request, CANCEL)


async def _bulk(request: Request, action: BulkAction) -> Response:
    body = await read_json(request, settings_of(request).max_body_bytes)
    selection = parse_selection(body, action)
    result = await run_bulk(worker_of(request), action, selection)
    return ApiJSONResponse(bulk_json(action, result))


def parse_selection(body: Any, action: BulkAction) -> Selection:
    """A Selection from a bulk body, or a 422 listing every bad field."""
    fields = Fields(body)
    for name in _nulls(body):
        fields.error(name, "must not be null (leave it out instead)")
    ids = fields.get("ids", _ids)
    statuses = fields.get("status", _statuses(action))
    task_type = fields.get("task_type", bounds.task_type)
    limit = fields.get("limit", integer(1, MAX_BULK_TASKS))
    cursor = fields.get("cursor", integer(1, MAX_CURSOR))
    fields.reject_unknown()
    given = [name for name in FILTER_FIELDS if isinstance(body, dict) and name in body]
    if ids is not None and given:
        fields.error("ids", f"name tasks by ids or by a filter, not both ({', '.join(given)})")
    elif ids is None and statuses is None and task_type is None and not fields.errors:
        fields.error("", "give ids, or a filter: status and/or task_type")
    fields.raise_if_invalid()
    if ids is not None:
        return Selection(ids=tuple(ids))
    return Selection(
        statuses=statuses, task_type=task_type, cursor=cursor, limit=limit or MAX_BULK_TASKS
    )


def _nulls(body: Any) -> list[str]:
    return [name for name, value in body.items() if value is None] if isinstance(body, dict) else []


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_BULK_TASKS:
        raise Invalid(f"must be an array of 1 to {MAX_BULK_TASKS} task ids")
    return [bounds.task_id(item) for item in value]


def _statuses(action: BulkAction) -> Any:
    allowed = sorted(s.value for s in action.applies_to)

    def check(value: Any) -> frozenset[TaskStatus]:
        given = [value] if isinstance(value, str) else value
        if not isinstance(given, list) or not given or any(s not in allowed for s in given):
            raise Invalid(f"must be one of {', '.join(allowed)}, or a non-empty array of them")
        return frozenset(TaskStatus(s) for s in given)

    return check


def bulk_json(action: BulkAction, result: BulkResult) -> dict[str, Any]:
    """The answer: each task's outcome (`done` named by the action: retried, cancelled),
    counts by outcome, and the cursor of the next page."""
    names = {Outcome.DONE: action.done, Outcome.SKIPPED: "skipped", Outcome.NOT_FOUND: "not_found"}
    counts = dict.fromkeys(names.values(), 0)
    items = []
    for task in result.tasks:
        name = names[task.outcome]
        counts[name] += 1
        item = {"id": task.id, "outcome": name, "status": task.status}
        if task.detail is not None:
            item["detail"] = task.detail
        items.append(item)
    return {
        "action": action.name,
        "tasks": items,
        "counts": counts,
        "next_cursor": result.next_cursor,
    }


routes: list[BaseRoute] = [
    resource("/tasks/retry", {"POST": bulk_retry}),
    resource("/tasks/cancel", {"POST": bulk_cancel}),
]
