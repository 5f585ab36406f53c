"""The stager: tasks for later are `scheduled`, apart from the due ones, and move to `pending`
at their time.

A claim reads the pending rows in (priority, run_at, seq) order; if tasks for later were
pending too, every claim would step over those with a better priority, under the write lock
(River keeps them apart with its scheduler, Oban with its stager). Here each claim first
stages what is due (an index search on run_at that finds nothing when nothing is due), so it
takes rows in exact (priority, run_at, seq) order among everything due at that moment; the
stager loop sleeps until the next scheduled time and stages then even while every worker is
busy, so a task's status says whether it is due, and it wakes the pool. Staging writes no
event: `scheduled` and `pending` are both queued, and `task.queued` already said when it
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, bindparam, literal_column, select, text, update

from app.clock import now_us
from app.db.bulk import execute_compiled
from app.db.tables import tasks, tasks_indexed_by
from app.db.writer import WriteOp
from app.worker.status import TaskStatus

if TYPE_CHECKING:
    from app.worker.queue import TaskQueue
    from app.worker.store import TaskStore

logger = logging.getLogger(__name__)
# Rows moved per transaction: a burst of tasks due at once is moved in batches, so no
# transaction holds the write lock for long.
STAGE_BATCH = 500
# The longest the loop sleeps at a time: waking costs no query, and bounds how late a
# task runs after the wall clock jumps ahead.
MAX_SLEEP_SECONDS = 60.0
RETRY_SECONDS = 1.0
NOTHING_SCHEDULED = 2**63  # stage_at while no task is scheduled


@functools.cache
def _stage_statement() -> Any:
    """UPDATE the `b_limit` scheduled rows due first (run_at <= b_now) to pending, read in
    (run_at, seq) order from their partial index; RETURNING their priorities."""
    seq: ColumnElement[int] = literal_column("seq")
    run_at: ColumnElement[int] = literal_column("run_at")
    due = (
        select(seq)
        .select_from(tasks_indexed_by("ix_tasks_scheduled"))
        .where(text("status = 'scheduled'"), run_at <= bindparam("b_now"))
        .order_by(run_at, seq)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)  # PostgreSQL: rows another process moves; SQLite: none
        .scalar_subquery()
    )
    return (
        update(tasks)
        .where(tasks.c.seq.in_(due))
        .values(status=TaskStatus.PENDING.value)
        .returning(tasks.c.priority)
    )


def stage_due(conn: Connection, now: int, limit: int = STAGE_BATCH) -> list[int]:
    """Move up to `limit` scheduled tasks due by `now` to pending, earliest first; their
    priorities."""
    params = [{"b_now": now, "b_limit": limit}]
    return [row[0] for row in execute_compiled(conn, _stage_statement(), params).fetchall()]


class StageDue(WriteOp[list[int]]):
    """One batch of due scheduled tasks to pending; the result is their priorities."""

    def __init__(self, limit: int = STAGE_BATCH) -> None:
        super().__init__()
        self.limit = limit

    def apply(self, conn: Connection) -> list[int]:
        return stage_due(conn, now_us(), self.limit)


class Stager:
    """Sleeps until `queue.stage_at` (the earliest scheduled time it knows of; a put or a
    retry for earlier lowers it and wakes it), then stages every due task in batches, wakes
    the pool, and reads the next scheduled time. Idle, it makes no queries."""

    def __init__(self, queue: TaskQueue, store: TaskStore, batch: int = STAGE_BATCH) -> None:
        self.queue, self.store, self.batch = queue, store, batch

    async def run(self) -> None:
        queue = self.queue
        while True:
            queue.stage_wake.clear()
            if queue.stage_at <= now_us():
                try:
                    await self.stage_and_plan()
                except Exception:
                    logger.exception("staging tasks for later failed; trying again in 1 s")
                    queue.stage_at = min(queue.stage_at, now_us() + int(RETRY_SECONDS * 1e6))
            await self._sleep()

    async def stage_and_plan(self) -> int:
        """Stage what is due, then set `queue.stage_at` to the next scheduled time; how many
        were staged. A put for later meanwhile lowers stage_at itself."""
        queue, staged = self.queue, 0
        queue.stage_at = NOTHING_SCHEDULED
        while True:
            priorities = await queue.writer.run(StageDue(self.batch))
            if priorities:
                staged += len(priorities)
                queue.became_due(min(priorities))
                queue.new_work.set()
            if len(priorities) < self.batch:
                break
        following = await self.store.next_scheduled()
        if following is not None:
            queue.stage_at = min(queue.stage_at, following)
        return staged

    async def _sleep(self) -> None:
        delay = min(MAX_SLEEP_SECONDS, (self.queue.stage_at - now_us()) / 1_000_000)
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self.queue.stage_wake.wait()
