"""Running attempts: recording each attempt's outcome (fenced by its attempt number) and
saving progress. Claiming and starting live in app/worker/claims.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    select,
    update,
)

from app.clock import now_us
from app.db.bulk import execute_compiled
from app.db.tables import status_is, task_attempts, tasks
from app.db.writer import WriteOp
from app.events.log import EventType
from app.worker.records import ClaimedTask, Completed, Failed, Outcome, capped, task_event
from app.worker.status import AttemptKind, TaskStatus


class FinishTask(WriteOp[bool]):
    """Record the outcome of one attempt. Fenced: applies only while the row is still
    `running` at that attempt, so a stale worker never overwrites a newer state."""

    def __init__(self, claimed: ClaimedTask, outcome: Outcome) -> None:
        super().__init__()
        self.task_id, self.task_type, self.attempt = claimed.id, claimed.task_type, claimed.attempt
        self.group = claimed.group
        self.outcome_ = outcome

    @classmethod
    def apply_batch(cls, conn: Connection, ops: Sequence[Self]) -> None:
        completed = [op for op in ops if isinstance(op.outcome_, Completed)]
        if completed:
            applied = _complete_many(conn, completed)
            for op in completed:
                if op.task_id in applied:
                    op._record_completed()
                else:
                    op.set_result(False)
        for op in ops:
            if isinstance(op.outcome_, Failed):
                op.run_one(conn)

    def apply(self, conn: Connection) -> bool:
        outcome = self.outcome_
        assert isinstance(outcome, Failed)
        now = now_us()
        fence = and_(
            tasks.c.id == self.task_id,
            tasks.c.attempts == self.attempt,
            status_is(TaskStatus.RUNNING),
        )
        status = _status_after(outcome, now)
        values = _failed_values(outcome, status, now)
        result = conn.execute(update(tasks).where(fence).values(**values))
        if result.rowcount != 1:
            return False
        conn.execute(task_attempts.insert(), [self._attempt_row(outcome, now)])
        self._record_failed(outcome, status)
        return True

    def _attempt_row(self, outcome: Failed, now: int) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "attempt": self.attempt,
            "error_type": outcome.error_type,
            "message": outcome.message,
            "traceback": outcome.traceback,
            "failed_at": now,
            "kind": outcome.kind.value,
        }

    def _record_completed(self) -> None:
        assert isinstance(self.outcome_, Completed)
        self.set_result(True)
        self.events.append(
            task_event(
                EventType.COMPLETED,
                self.task_id,
                self.task_type,
                group=self.group,
                status="completed",
                attempt=self.attempt,
                progress=1.0,
                from_cache=self.outcome_.from_cache,
                **capped("result", self.outcome_.value, len(self.outcome_.result)),
            )
        )

    def _record_failed(self, outcome: Failed, status: TaskStatus) -> None:
        kind = EventType.FAILED if status is TaskStatus.FAILED else EventType.RETRYING
        self.events.append(
            task_event(
                kind,
                self.task_id,
                self.task_type,
                group=self.group,
                status=status.value,
                attempt=self.attempt,
                **capped("error", outcome.message),
                error_type=outcome.error_type,
                retry_at=outcome.retry_at,
                attempt_kind=outcome.kind.value,
            )
        )


def _status_after(outcome: Failed, now: int) -> TaskStatus:
    """failed, or retrying: scheduled until its retry_at (pending if that has passed)."""
    if outcome.retry_at is None:
        return TaskStatus.FAILED
    return TaskStatus.SCHEDULED if outcome.retry_at > now else TaskStatus.PENDING


def _failed_values(outcome: Failed, status: TaskStatus, now: int) -> dict[str, Any]:
    common: dict[str, Any] = {"owner": None, "lease_expires_at": None, "error": outcome.message}
    if outcome.kind is AttemptKind.SNOOZED:
        # Its start counted (attempts only grow, the fence); counting the snooze gives the
        # attempt back: a task has spent attempts - snoozes of its max_attempts.
        common["snoozes"] = tasks.c.snoozes + 1
    if outcome.retry_at is not None:
        return {**common, "status": status.value, "run_at": outcome.retry_at}
    return {**common, "status": status.value, "completed_at": now}


_COMPLETE = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("b_id"),
        tasks.c.attempts == bindparam("b_attempt"),
        status_is(TaskStatus.RUNNING),
    )
    .values(
        status=TaskStatus.COMPLETED.value,
        result=bindparam("b_result"),
        from_cache=bindparam("b_from_cache"),
        progress=1.0,
        completed_at=bindparam("b_now"),
        owner=None,
        lease_expires_at=None,
        error=None,
    )
)


def _complete_many(conn: Connection, ops: Sequence[FinishTask]) -> set[str]:
    """One executemany for every completion; returns the ids whose fence held. Only when
    some did not (a cancel raced the finish) does it read back which ones applied."""
    now = now_us()
    params = [
        {
            "b_id": op.task_id,
            "b_attempt": op.attempt,
            "b_result": op.outcome_.result,  # type: ignore[union-attr]
            "b_from_cache": op.outcome_.from_cache,  # type: ignore[union-attr]
            "b_now": now,
        }
        for op in ops
    ]
    result = execute_compiled(conn, _COMPLETE, params)
    if result.rowcount == len(params):
        return {op.task_id for op in ops}
    attempt_of = {op.task_id: op.attempt for op in ops}
    rows = conn.execute(
        select(tasks.c.id, tasks.c.attempts).where(
            tasks.c.id.in_(list(attempt_of)),
            status_is(TaskStatus.COMPLETED),
            tasks.c.completed_at == now,
        )
    )
    return {row.id for row in rows if attempt_of[row.id] == row.attempts}


class SaveProgress(WriteOp[None]):
    """Persist the latest progress of a running attempt (throttled by the caller)."""

    def __init__(self, task_id: str, attempt: int, progress: float) -> None:
        super().__init__()
        self.task_id, self.attempt, self.progress = task_id, attempt, progress

    def apply(self, conn: Connection) -> None:
        conn.execute(
            update(tasks)
            .where(
                tasks.c.id == self.task_id,
                tasks.c.attempts == self.attempt,
                status_is(TaskStatus.RUNNING),
            )
            .values(progress=self.progress)
        )
