"""The task resource: submit, read, list, cancel and retry tasks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.errors import TaskNotFoundError
from app.web.body import read_json
from app.web.encoding import ApiJSONResponse, DecodedJSONResponse, inserted_task_info, task_json
from app.web.errors import Problem
from app.web.listing import PageRenderer
from app.web.routing import resource
from app.web.state import settings_of, worker_of
from app.web.submission import parse_submission
from app.web.validation import Fields, integer_text, one_of
from app.worker.core import AsyncTaskWorker
from app.worker.records import Accepted
from app.worker.status import TaskInfo, TaskStatus
from app.worker.store import TaskStore

STATUSES = tuple(s.value for s in TaskStatus)
MAX_PAGE = 1000


async def submit_task(request: Request) -> Response:
    """202 with the new task; 200 with the original when the Idempotency-Key was used."""
    body = await read_json(request, settings_of(request).max_body_bytes)
    submission = parse_submission(body, request.headers.get("idempotency-key"))
    worker = worker_of(request)
    accepted = await worker.submit(
        submission.task_type, submission.args, submission.kwargs, submission.options
    )
    return _task_response(await accepted_info(worker, accepted), 202 if accepted.created else 200)


async def get_task(request: Request) -> Response:
    info = await _require(worker_of(request), request.path_params["task_id"])
    return ApiJSONResponse(task_json(info))


async def cancel_task(request: Request) -> Response:
    """200 with the cancelled task; 409 when it had already finished."""
    worker = worker_of(request)
    task_id = request.path_params["task_id"]
    if not await worker.cancel_task(task_id):
        info = await _require(worker, task_id)
        raise Problem(
            409,
            "conflict",
            f"task {task_id!r} is already {info.status.value}",
            task_id=task_id,
            task_status=info.status.value,
        )
    return ApiJSONResponse(task_json(await _require(worker, task_id)))


async def retry_task(request: Request) -> Response:
    """202 with the task queued again; 409 unless it failed or was cancelled."""
    worker = worker_of(request)
    task_id = request.path_params["task_id"]
    return _task_response(await worker.retry_task(task_id), 202)


async def list_tasks(request: Request) -> Response:
    """Newest first; pass `next_cursor` back as `cursor` for the next page. `status` may be
    given several times (tasks in any of them)."""
    query = Fields(dict(request.query_params), what="the query string")
    filters: dict[str, Any] = {
        "status": _statuses(query, request.query_params.getlist("status")),
        "task_type": query.get("task_type", lambda v: str(v)),
        "limit": query.get("limit", integer_text(1, MAX_PAGE)) or 100,
        "cursor": query.get("cursor", integer_text(1, 2**63 - 1)),
    }
    query.reject_unknown()
    query.raise_if_invalid("the query string")
    page = await TaskStore(worker_of(request).engines.reader).rows(**filters)
    render = PageRenderer().task
    return DecodedJSONResponse(
        {"tasks": [render(row) for row in page.rows], "next_cursor": page.next_cursor}
    )


def _statuses(query: Fields, given: list[str]) -> list[TaskStatus] | None:
    """`?status=` may be repeated (tasks in any of them); each value is checked."""
    query.get("status", str)  # a known field
    checked = [query.check("status", value, one_of(STATUSES)) for value in given]
    return [TaskStatus(s) for s in checked if s is not None] or None


async def accepted_info(worker: AsyncTaskWorker, accepted: Accepted) -> TaskInfo:
    """The task a submit accepted: as inserted when new, else read back (the original)."""
    if accepted.task is not None:
        return inserted_task_info(accepted.task)
    return await _require(worker, accepted.task_id)


async def _require(worker: AsyncTaskWorker, task_id: str) -> TaskInfo:
    info = await worker.get_task_info(task_id)
    if info is None:
        raise TaskNotFoundError(f"no task with id {task_id!r}", task_id=task_id)
    return info


def _task_response(info: TaskInfo, status: int) -> Response:
    body = task_json(info)
    return ApiJSONResponse(body, status, headers={"Location": body["url"]})


routes: list[BaseRoute] = [
    resource("/tasks", {"GET": list_tasks, "POST": submit_task}),
    resource("/tasks/{task_id}", {"GET": get_task, "DELETE": cancel_task}),
    resource("/tasks/{task_id}/retry", {"POST": retry_task}),
]
