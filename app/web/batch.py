"""POST /tasks/batch: many tasks in one request, all or none (app/worker/batch.py).

The body is `{"tasks": [...]}`: 1 to MAX_BATCH_TASKS items, each a POST /tasks body, plus an
optional `idempotency_key` of its own (a batch has no Idempotency-Key header). When any item
is bad, nothing is queued and the 422 lists every bad field as `tasks[i].field` (or
`tasks[i]`) and every bad index in `invalid_indexes`; tasks larger in all than
MAX_BATCH_BYTES are a 422 naming the field `tasks`. Otherwise the tasks in order, each with
`created`: false for a task whose idempotency key was used before (it is the original), as
POST /tasks answers 200 for one; 202 when at least one was created, 200 when none was.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app import bounds
from app.bounds import MAX_BATCH_TASKS
from app.errors import TaskBatchError, TaskBatchTooLargeError
from app.web.body import read_json
from app.web.encoding import ApiJSONResponse, task_json
from app.web.errors import Problem
from app.web.routing import resource
from app.web.state import settings_of, worker_of
from app.web.submission import read_submission
from app.web.tasks import accepted_info
from app.web.validation import FieldError, Fields, Invalid
from app.worker.batch import TaskCall
from app.worker.core import AsyncTaskWorker


async def submit_batch(request: Request) -> Response:
    """202 with every task, in order, each saying whether it was `created`; 200 when none
    was (every item repeated an earlier idempotency key); 422 (nothing queued) listing each
    bad item."""
    body = await read_json(request, settings_of(request).max_body_bytes)
    worker = worker_of(request)
    calls, errors = parse_batch(body)
    if errors:
        raise _invalid(errors + _problems_of(worker, calls))
    try:
        accepted = await worker.submit_batch([call for _, call in calls])
    except TaskBatchError as exc:
        raise _invalid(_fields_of(exc, [index for index, _ in calls])) from None
    tasks = [
        {**task_json(await accepted_info(worker, one)), "created": one.created} for one in accepted
    ]
    return ApiJSONResponse({"tasks": tasks}, 202 if any(one.created for one in accepted) else 200)


def parse_batch(body: Any) -> tuple[list[tuple[int, TaskCall]], list[FieldError]]:
    """The items that parse (with their index), and the errors of those that do not."""
    fields = Fields(body)
    items = fields.get("tasks", _items, required=True) or []
    fields.reject_unknown()
    calls: list[tuple[int, TaskCall]] = []
    errors = list(fields.errors)
    for index, item in enumerate(items):
        one = Fields(item, what=f"tasks[{index}]")
        key = one.get("idempotency_key", bounds.idempotency_key)
        call = read_submission(one, key)
        if call is None:
            errors.extend(_prefixed(index, one.errors))
        else:
            calls.append((index, call))
    return calls, errors


def _items(value: Any) -> list[Any]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_BATCH_TASKS:
        raise Invalid(f"must be an array of 1 to {MAX_BATCH_TASKS} tasks")
    return value


def _prefixed(index: int, errors: list[FieldError]) -> list[FieldError]:
    where = f"tasks[{index}]"
    return [
        {"field": f"{where}.{e['field']}" if e["field"] else where, "message": e["message"]}
        for e in errors
    ]


def _problems_of(worker: AsyncTaskWorker, calls: list[tuple[int, TaskCall]]) -> list[FieldError]:
    """What the worker finds wrong with the items that parsed (so one 422 lists all)."""
    try:
        worker.check_batch([call for _, call in calls])
    except TaskBatchError as exc:
        return _fields_of(exc, [index for index, _ in calls])
    except TaskBatchTooLargeError as exc:
        return [{"field": exc.option, "message": exc.reason}]
    return []


def _fields_of(exc: TaskBatchError, indexes: list[int]) -> list[FieldError]:
    return [{"field": f"tasks[{indexes[i]}]", "message": why} for i, why in exc.problems.items()]


def _invalid(errors: list[FieldError]) -> Problem:
    bad = sorted({i for i in (_index(e["field"]) for e in errors) if i is not None})
    detail = "the batch has invalid tasks; none was queued"
    return Problem(422, "invalid-request", detail, errors=errors, invalid_indexes=bad)


def _index(field: str) -> int | None:
    if not field.startswith("tasks["):
        return None
    return int(field[len("tasks[") : field.index("]")])


routes: list[BaseRoute] = [resource("/tasks/batch", {"POST": submit_batch})]
