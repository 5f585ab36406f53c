"""Putting interrupted work back: at start for tasks a dead process left `running`, and at
graceful stop for tasks this process had to cut short.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, or_, update

from app.clock import now_us
from app.db.tables import status_is, tasks
from app.db.writer import WriteOp
from app.events.log import EventType
from app.worker.records import group_of, task_event
from app.worker.status import TaskStatus


class RequeueRunning(WriteOp[int]):
    """Put tasks this instance was running back to `pending` (graceful stop). The attempt is
    given back: a shutdown is not the task's failure."""

    def __init__(self, owner: str, task_ids: Sequence[str]) -> None:
        super().__init__()
        self.owner, self.task_ids = owner, list(task_ids)

    def apply(self, conn: Connection) -> int:
        statement = (
            update(tasks)
            .where(
                tasks.c.id.in_(self.task_ids),
                tasks.c.owner == self.owner,
                status_is(TaskStatus.RUNNING),
            )
            .values(
                status=TaskStatus.PENDING.value,
                owner=None,
                lease_expires_at=None,
                attempts=tasks.c.attempts - 1,
                run_at=now_us(),
            )
            .returning(tasks.c.id, tasks.c.task_type, tasks.c.metadata)
        )
        rows = conn.execute(statement).all()
        for row in rows:
            self.events.append(
                task_event(
                    EventType.RECOVERED,
                    row.id,
                    row.task_type,
                    group=group_of(row.metadata),
                    status="pending",
                    reason="shutdown",
                )
            )
        return len(rows)


class RecoverInterrupted(WriteOp[tuple[int, int]]):
    """At start: tasks left `running` by an earlier boot go back to `pending` at once, the
    interruption counted; one interrupted more than `max_interruptions` times fails, so a
    task that kills its process cannot loop forever. Returns (requeued, failed)."""

    def __init__(self, owner: str, max_interruptions: int) -> None:
        super().__init__()
        self.owner, self.max_interruptions = owner, max_interruptions

    def apply(self, conn: Connection) -> tuple[int, int]:
        now = now_us()
        orphaned = and_(
            status_is(TaskStatus.RUNNING),
            or_(tasks.c.owner.is_(None), tasks.c.owner != self.owner),
        )
        too_many = tasks.c.interruptions + 1 > self.max_interruptions
        failed = self._update(
            conn,
            and_(orphaned, too_many),
            {
                "status": TaskStatus.FAILED.value,
                "completed_at": now,
                "error": f"interrupted more than {self.max_interruptions} times "
                "(the process running it died each time)",
            },
        )
        requeued = self._update(
            conn,
            orphaned,
            {
                "status": TaskStatus.PENDING.value,
                "run_at": now,
            },
        )
        return requeued, failed

    def _update(self, conn: Connection, where: Any, values: dict[str, Any]) -> int:
        statement = (
            update(tasks)
            .where(where)
            .values(
                **values, owner=None, lease_expires_at=None, interruptions=tasks.c.interruptions + 1
            )
            .returning(tasks.c.id, tasks.c.task_type, tasks.c.interruptions, tasks.c.metadata)
        )
        rows = conn.execute(statement).all()
        kind = EventType.FAILED if values["status"] == "failed" else EventType.RECOVERED
        for row in rows:
            self.events.append(
                task_event(
                    kind,
                    row.id,
                    row.task_type,
                    group=group_of(row.metadata),
                    status=values["status"],
                    reason="interrupted",
                    interruptions=row.interruptions,
                )
            )
        return len(rows)
