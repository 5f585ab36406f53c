"""Control from outside the pool: cancelling a task, and queueing a finished one again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, select, update

from app.clock import now_us
from app.db.tables import tasks
from app.db.writer import WriteOp
from app.errors import TaskNotFoundError, TaskStateError
from app.events.log import EventType
from app.worker.records import group_of, task_event
from app.worker.status import ACTIVE, RETRYABLE, TaskInfo, TaskStatus
from app.worker.store import read_task


class CancelTask(WriteOp[TaskStatus]):
    """Cancel a queued (scheduled, pending, claimed) or running task; the result is the
    status it had. `running` is the attempt it stopped, when the task was running (its
    function may run on another process: app/worker/postgres/cancels.py)."""

    def __init__(self, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id
        self.running: int | None = None

    def apply(self, conn: Connection) -> TaskStatus:
        row = _status_of(conn, self.task_id)
        previous = _known_status(self.task_id, row.status)
        if previous not in ACTIVE:
            raise TaskStateError(
                f"task {self.task_id!r} is already {previous.value}",
                task_id=self.task_id,
                status=previous.value,
            )
        self.running = int(row.attempts) if previous is TaskStatus.RUNNING else None
        conn.execute(
            update(tasks)
            .where(tasks.c.id == self.task_id)
            .values(
                status=TaskStatus.CANCELLED.value,
                completed_at=now_us(),
                owner=None,
                lease_expires_at=None,
                error="cancelled",
            )
        )
        self.events.append(
            task_event(
                EventType.CANCELLED,
                self.task_id,
                row.task_type,
                group=group_of(row.metadata),
                status="cancelled",
            )
        )
        return previous


def _at_least_one_more() -> Any:
    """max(max_attempts, spent + 1), as SQL any database runs: what a task has spent is its
    attempts but its snoozes (which gave their attempts back)."""
    more = tasks.c.attempts - tasks.c.snoozes + 1
    return case((more > tasks.c.max_attempts, more), else_=tasks.c.max_attempts)


def _known_status(task_id: str, stored: Any) -> TaskStatus:
    """The row's status; one this version does not know (another program wrote it) is a
    state no action here may change."""
    try:
        return TaskStatus(stored)
    except ValueError:
        raise TaskStateError(
            f"task {task_id!r} has a status this version of litetask does not know "
            f"({stored!r}); it is left as it is",
            task_id=task_id,
            status=str(stored),
        ) from None


def _status_of(conn: Connection, task_id: str) -> Any:
    columns = (tasks.c.status, tasks.c.task_type, tasks.c.metadata, tasks.c.attempts)
    statement = select(*columns).where(tasks.c.id == task_id)
    row = conn.execute(statement).first()
    if row is None:
        raise TaskNotFoundError(f"no task with id {task_id!r}", task_id=task_id)
    return row


class RetryTask(WriteOp[TaskInfo]):
    """Queue a failed or cancelled task again; the result is the task as it was queued (a
    worker may claim it the moment this commits).

    Attempts only grow (each attempt's number fences its writes, so an old attempt still
    unwinding can never write over a new one): a retry raises `max_attempts` to allow at
    least one more attempt instead of resetting the count, as River and Oban do."""

    def __init__(self, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id

    def apply(self, conn: Connection) -> TaskInfo:
        row = _status_of(conn, self.task_id)
        if _known_status(self.task_id, row.status) not in RETRYABLE:
            raise TaskStateError(
                f"task {self.task_id!r} is {row.status}; "
                "only failed or cancelled tasks can be retried",
                task_id=self.task_id,
                status=row.status,
            )
        now = now_us()
        conn.execute(
            update(tasks)
            .where(tasks.c.id == self.task_id)
            .values(
                status=TaskStatus.PENDING.value,
                max_attempts=_at_least_one_more(),
                interruptions=0,
                suspect=False,
                progress=0.0,
                run_at=now,
                started_at=None,
                completed_at=None,
                error=None,
                result=None,
            )
        )
        self.events.append(
            task_event(
                EventType.QUEUED,
                self.task_id,
                row.task_type,
                group=group_of(row.metadata),
                status="pending",
                retried=True,
            )
        )
        queued = read_task(conn, self.task_id)
        assert queued is not None
        return queued
