"""Task retention: a finished task (completed, failed, cancelled) is deleted with its
attempts and events once it finished longer ago than its status is kept; webhook delivery
rows are deleted once older than the dedupe window. Each op deletes one small batch, oldest
first, read as a range of an index, so a transaction stays short whatever the backlog.

An idempotency key lives on its task's row and goes with it: the same key after that makes
a new task. A delivery row is kept for its own window, whether or not its task still is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, func, select

from app.db.dialects import alone, row_id
from app.db.tables import events, status_is, task_attempts, tasks, webhook_deliveries
from app.db.writer import WriteOp
from app.events.retention import NOTHING_UNREAD, PRUNE_LOCK, unread_from
from app.worker.status import TERMINAL, TaskStatus

WEEK = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class TaskRetention:
    """Seconds a finished task is kept after it finished: `default`, or its status's entry
    in `by_status`; None keeps it forever."""

    default: float | None = WEEK
    by_status: Mapping[str, float | None] = field(default_factory=dict)

    def kept(self) -> Iterator[tuple[TaskStatus, float]]:
        """(status, seconds) of each terminal status that is not kept forever."""
        for status in sorted(TERMINAL):
            seconds = self.by_status.get(status.value, self.default)
            if seconds is not None:
                yield status, seconds

    def shortest(self) -> float | None:
        """The shortest time any finished task is kept (None: all are kept forever)."""
        return min((seconds for _, seconds in self.kept()), default=None)


class PruneTasks(WriteOp[int]):
    """Delete up to `batch` tasks of `status` that finished before `cutoff` (µs), oldest
    first, with their attempts and events (never the log's newest event: on SQLite the
    writer numbers events max+1, so an id is never handed out twice). The outcome is how
    many tasks went. Events a live stream may still need stay (`unread_from`); event
    retention takes them later.

    On PostgreSQL other processes write meanwhile: one process prunes at a time (the others'
    rounds find the lock taken and leave it to that one), and the victims are locked first,
    skipping any row another transaction holds (a retry, say), then deleted by id, so a task
    goes whole or stays whole."""

    def __init__(self, status: TaskStatus, cutoff: int, batch: int) -> None:
        super().__init__()
        self.status, self.cutoff, self.batch = status, cutoff, batch

    def apply(self, conn: Connection) -> int:
        if not alone(conn, PRUNE_LOCK):
            return 0
        victims = (
            select(tasks.c.id)
            .where(status_is(self.status), tasks.c.completed_at < self.cutoff)
            .order_by(tasks.c.completed_at, tasks.c.seq)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        )
        ids = list(conn.execute(victims).scalars())
        if not ids:
            return 0
        newest = select(func.max(events.c.id)).scalar_subquery()
        kept = [events.c.id < newest]
        unread = unread_from(conn)
        if unread != NOTHING_UNREAD:
            kept.append(events.c.id < unread)
        conn.execute(delete(events).where(events.c.task_id.in_(ids), *kept))
        conn.execute(delete(task_attempts).where(task_attempts.c.task_id.in_(ids)))
        return int(conn.execute(delete(tasks).where(tasks.c.id.in_(ids))).rowcount or 0)


class PruneDeliveries(WriteOp[int]):
    """Delete up to `batch` webhook delivery rows received before `cutoff` (µs), oldest
    first; the outcome is how many went."""

    def __init__(self, cutoff: int, batch: int) -> None:
        super().__init__()
        self.cutoff, self.batch = cutoff, batch

    def apply(self, conn: Connection) -> int:
        if not alone(conn, PRUNE_LOCK):
            return 0
        rowid = row_id()
        received = webhook_deliveries.c.received_at
        victims = (
            select(rowid)
            .select_from(webhook_deliveries)
            .where(received < self.cutoff)
            .order_by(received)
            .limit(self.batch)
        )
        result = conn.execute(delete(webhook_deliveries).where(rowid.in_(victims)))
        return int(result.rowcount or 0)
