"""Claims and staging on PostgreSQL: several processes take rows from one queue at once.

Each takes the best due rows in one statement, `UPDATE tasks ... WHERE seq = ANY(ARRAY(SELECT
seq ... ORDER BY priority, run_at, seq LIMIT n FOR UPDATE SKIP LOCKED)) RETURNING ...`: rows
another process is taking are skipped, not waited for, and a row is never taken twice. The
ARRAY makes the rows taken an InitPlan whose result the UPDATE finds through the primary
key, whatever the planner guesses: with `seq IN (SELECT ...)`, a generic plan (which cannot
see the LIMIT's value and guesses a tenth of the table) joined it to a scan of every row,
O(backlog) per claim (tests/worker/test_postgres_query_plans.py). The
stager moves due scheduled rows the same way, so two processes staging at once never touch
a row the other has moved (and claimed) meanwhile. Same ops, same results as SQLite's
(app/worker/claims.py, app/worker/stager.py); only the statements differ.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, any_, bindparam, func, select, update

from app.clock import now_us, seconds_to_us
from app.db.postgres.writer import notify_work
from app.db.tables import status_is, tasks
from app.worker import stager
from app.worker.claims import (
    Claim,
    ClaimTasks,
    _give_back,
    claim_columns,
    claim_values,
    claimed_task,
    started_event,
)
from app.worker.records import ClaimedTask
from app.worker.stager import STAGE_BATCH, StageDue
from app.worker.status import TaskStatus


def _due(suspect: bool) -> Any:
    """The best `b_limit` pending rows (suspects, or the others), locked, skipping rows
    another transaction holds."""
    which: ColumnElement[bool] = tasks.c.suspect if suspect else tasks.c.suspect.is_(False)
    return (
        select(tasks.c.seq)
        .where(status_is(TaskStatus.PENDING), which)
        .order_by(tasks.c.priority, tasks.c.run_at, tasks.c.seq)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )


@functools.cache
def take_statement(suspect: bool, start: bool) -> Any:
    """UPDATE the rows `_due` locks to running (`start`) or claimed, RETURNING them."""
    return (
        update(tasks)
        .where(tasks.c.seq == any_(func.array(_due(suspect))))
        .values(**claim_values(start))
        .returning(*claim_columns())
    )


def _take(
    conn: Connection, op: ClaimTasks, limit: int, now: int, *, suspect: bool, start: bool
) -> list[ClaimedTask]:
    if limit <= 0:
        return []
    lease = now + seconds_to_us(op.request.lease_seconds)
    params = {"b_now": now, "b_limit": limit, "b_owner": op.request.owner, "b_lease": lease}
    rows = conn.execute(take_statement(suspect, start), params).all()
    step = 0 if start else 1  # a claimed row's attempt is the one it will start as
    claimed = [claimed_task(row, step) for row in rows]
    return sorted(claimed, key=lambda c: (c.priority, c.run_at, c.seq))


def claim(conn: Connection, op: ClaimTasks) -> Claim:
    """ClaimTasks.apply with PostgreSQL's statements."""
    request, now = op.request, now_us()
    if request.give_back:
        _give_back(conn, request.owner, request.give_back)
    stage_due(conn, now)
    taken = Claim()
    if op.stopping is not None and op.stopping.is_set():
        return taken
    if request.suspect and request.start > 0:
        suspects = _take(conn, op, 1, now, suspect=True, start=True)
        taken.started += [dataclasses.replace(c, suspect=True) for c in suspects]
    more = request.start - len(taken.started)
    taken.started += _take(conn, op, more, now, suspect=False, start=True)
    taken.claimed = _take(conn, op, request.prefetch, now, suspect=False, start=False)
    op.events.extend(started_event(c) for c in taken.started)
    return taken


def claim_batch(conn: Connection, ops: Sequence[ClaimTasks]) -> None:
    for op in ops:
        op.set_result(claim(conn, op))


def stage_due(conn: Connection, now: int, limit: int = STAGE_BATCH) -> list[int]:
    """app/worker/stager.py's stage_due (which skips rows another process is moving). Staging
    logs no event, so it tells the other processes itself that there is work (at commit)."""
    priorities = stager.stage_due(conn, now, limit)
    if priorities:
        notify_work(conn)
    return priorities


def stage_batch(conn: Connection, ops: Sequence[StageDue]) -> None:
    for op in ops:
        op.set_result(stage_due(conn, now_us(), op.limit))
