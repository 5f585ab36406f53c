"""Cancelling a task that runs on another process (PostgreSQL).

A cancel is a write on the process that was asked (app/worker/control.py): it marks the row
cancelled, fencing the attempt's outcome out. The function itself runs on the process that
claimed it, so the transaction that cancels a running task also NOTIFYs `litetask_cancel`
with the (task id, attempt) pairs it stopped, delivered at commit; every process LISTENs
(app/worker/postgres/wake.py), and the one running such an attempt cancels it through the
pool's local cancel: the same path, events and handling of a function that ignores its
cancellation as a cancel made on that process. A claimed task needs no notification: its
start is fenced and it never runs.

A notification is lost when it comes while that process's LISTEN connection is down. So,
once the connection is back and at every fallback poll, each process reads the rows of the
attempts it runs and cancels those no longer its own (`sweep`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import tasks
from app.worker.control import CancelTask
from app.worker.pool import WorkerPool
from app.worker.records import AttemptKey

logger = logging.getLogger(__name__)
CANCEL_CHANNEL = "litetask_cancel"
# Pairs per notification: a payload stays under PostgreSQL's 8,000 bytes with 64-byte ids.
PAIRS_PER_NOTIFY = 50


def cancel_batch(conn: Connection, ops: Sequence[CancelTask]) -> None:
    """CancelTask on PostgreSQL: each op as on SQLite, then one NOTIFY (per 50) of the
    running attempts they stopped."""
    for op in ops:
        op.run_one(conn)
    stopped = [[op.task_id, op.running] for op in ops if op.running is not None]
    for start in range(0, len(stopped), PAIRS_PER_NOTIFY):
        payload = json.dumps(stopped[start : start + PAIRS_PER_NOTIFY])
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CANCEL_CHANNEL, "payload": payload},
        )


def parse(payload: str) -> list[AttemptKey]:
    """The (task id, attempt) pairs of a notification; none from one this version cannot
    read."""
    try:
        return [(str(task_id), int(attempt)) for task_id, attempt in json.loads(payload)]
    except (ValueError, TypeError):
        logger.warning("a cancel notification this version cannot read: %r", payload)
        return []


def cancel_here(pool: WorkerPool, stopped: Iterable[AttemptKey]) -> None:
    """Cancel those of the attempts `stopped` elsewhere that run in this pool."""
    for task_id, attempt in stopped:
        if pool.cancel_local(task_id, attempt):
            logger.info(
                "task %s (attempt %s) was cancelled by another process",
                task_id,
                attempt,
                extra={"task_id": task_id},
            )


async def sweep(reader: AsyncEngine, pool: WorkerPool) -> None:
    """Cancel the attempts running here whose row is no longer theirs (cancelled, or taken
    from this process, while a notification could have been missed)."""
    running = pool.executing()
    if not running:
        return
    ids = sorted({task_id for task_id, _ in running})
    statement = select(tasks.c.id, tasks.c.owner, tasks.c.attempts).where(tasks.c.id.in_(ids))
    async with reader.connect() as conn:
        rows = {row.id: row for row in await conn.execute(statement)}
    owner = pool.settings.owner
    lost = [
        (task_id, attempt)
        for task_id, attempt in running
        if (row := rows.get(task_id)) is None or row.owner != owner or row.attempts > attempt
    ]
    cancel_here(pool, [key for key in lost if key in pool.executing()])
