"""Bulk control: retry or cancel many tasks in one call (the operator CLI's `retry
--all-failed`, the dashboard's actions on a filtered list).

A call takes explicit ids, or a filter (statuses, a task type) read in `seq` order after a
cursor, at most MAX_BULK_TASKS tasks. Each task then goes through the same fenced write as a
single retry or cancel (the group-commit writer batches them), so a row whose state changed
meanwhile is skipped, never overwritten; nothing is all-or-nothing. The answer says what
became of each task, and a cursor for the next page: since a page only moves forward, a task
retried on one page that fails again is not retried again in the same pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from app.bounds import MAX_BULK_TASKS
from app.db.tables import tasks
from app.errors import TaskNotFoundError, TaskStateError
from app.worker.core import AsyncTaskWorker
from app.worker.status import ACTIVE, RETRYABLE, TaskStatus


class Outcome(StrEnum):
    """What a bulk action did to one task."""

    DONE = "done"  # shown as the action's past tense: "retried", "cancelled"
    SKIPPED = "skipped"  # its status does not allow the action (any more)
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class Selection:
    """The tasks a bulk action takes: `ids`, or else the tasks in `statuses` (None: every
    status the action applies to) and of `task_type`, after `cursor` in seq order."""

    ids: tuple[str, ...] = ()
    statuses: frozenset[TaskStatus] | None = None
    task_type: str | None = None
    cursor: int | None = None
    limit: int = MAX_BULK_TASKS


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """One task's outcome: its status after the action (None when there is no such task)
    and, when skipped, why."""

    id: str
    outcome: Outcome
    status: str | None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a call did, task by task, in the order taken; `next_cursor` continues a
    filter's pass (None when the filter matched nothing more)."""

    tasks: list[TaskOutcome]
    next_cursor: int | None


ApplyOne = Callable[[AsyncTaskWorker, str], Awaitable[TaskStatus]]


@dataclass(frozen=True, slots=True)
class BulkAction:
    """An action by name, its past tense, the statuses it applies to, and how to apply it
    to one task (raising TaskStateError or TaskNotFoundError when it cannot)."""

    name: str
    done: str
    applies_to: frozenset[TaskStatus]
    apply_one: ApplyOne


async def _retry_one(worker: AsyncTaskWorker, task_id: str) -> TaskStatus:
    return (await worker.retry_task(task_id)).status


async def _cancel_one(worker: AsyncTaskWorker, task_id: str) -> TaskStatus:
    if await worker.cancel_task(task_id):
        return TaskStatus.CANCELLED
    info = await worker.get_task_info(task_id)
    if info is None:  # gone since (deleted by retention)
        raise TaskNotFoundError(f"no task with id {task_id!r}", task_id=task_id)
    raise TaskStateError(
        f"task {task_id!r} is already {info.status.value}",
        task_id=task_id,
        status=info.status.value,
    )


RETRY = BulkAction("retry", "retried", RETRYABLE, _retry_one)
CANCEL = BulkAction("cancel", "cancelled", ACTIVE, _cancel_one)


async def run_bulk(worker: AsyncTaskWorker, action: BulkAction, selection: Selection) -> BulkResult:
    """Apply `action` to every task `selection` takes (each on its own, concurrently)."""
    if selection.ids:
        ids, next_cursor = list(dict.fromkeys(selection.ids))[:MAX_BULK_TASKS], None
    else:
        ids, next_cursor = await select_page(worker, action, selection)
    outcomes = await asyncio.gather(*(_apply(worker, action, task_id) for task_id in ids))
    return BulkResult(list(outcomes), next_cursor)


async def _apply(worker: AsyncTaskWorker, action: BulkAction, task_id: str) -> TaskOutcome:
    try:
        status = await action.apply_one(worker, task_id)
    except TaskNotFoundError:
        return TaskOutcome(task_id, Outcome.NOT_FOUND, None)
    except TaskStateError as exc:
        return TaskOutcome(task_id, Outcome.SKIPPED, exc.status, str(exc))
    return TaskOutcome(task_id, Outcome.DONE, status.value)


async def select_page(
    worker: AsyncTaskWorker, action: BulkAction, selection: Selection
) -> tuple[list[str], int | None]:
    """The ids of one page of a filter, oldest first, and the cursor after it (None when
    nothing more matched). One index range per status (ix_tasks_status_seq), merged."""
    statuses = selection.statuses or action.applies_to
    limit = min(selection.limit, MAX_BULK_TASKS)
    found: list[tuple[int, str]] = []
    async with worker.engines.reader.connect() as conn:
        for status in sorted(statuses):
            statement = (
                select(tasks.c.seq, tasks.c.id)
                .where(tasks.c.status == status.value)
                .order_by(tasks.c.seq)
                .limit(limit + 1)
            )
            if selection.task_type is not None:
                statement = statement.where(tasks.c.task_type == selection.task_type)
            if selection.cursor is not None:
                statement = statement.where(tasks.c.seq > selection.cursor)
            found += [(int(seq), str(task_id)) for seq, task_id in await conn.execute(statement)]
    return _page(sorted(found), limit)


def _page(found: Sequence[tuple[int, str]], limit: int) -> tuple[list[str], int | None]:
    page = found[:limit]
    next_cursor = page[-1][0] if len(found) > limit else None
    return [task_id for _, task_id in page], next_cursor
