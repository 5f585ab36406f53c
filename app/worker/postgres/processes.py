"""Processes on PostgreSQL: many at once, each with a heartbeat row, any of them rescuing
the rows of one that died (River's rescuer, Oban's Lifeline, Solid Queue's pruning).

SQLite has one owner per file and refuses a second (app/db/owner.py); here a process at start
only adds its own row to `owners`. Every heartbeat (and every start) then looks at the other
rows: a process judged dead (its heartbeat expired, or, on this host, its pid no longer runs
the process that wrote the row) loses its row, and the rows it held go back in the same
transaction: `claimed` ones as they were, `running` ones as suspects with one more
interruption (or `failed` past max_interruptions), exactly as a restart of a SQLite service
puts them back. Rows whose owner has no row at all (removed while it was stalled) go back
too. A process that was only slow finds its row gone at its next heartbeat and stops
working; its late outcomes are fenced out by attempt (app/worker/attempts.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select

from app.clock import now_us
from app.db.owner import Heartbeat, Owner, insert_owner, is_alive
from app.db.postgres.counts import fold_counts
from app.db.tables import events, owners, status_is, tasks
from app.db.write_op import WriteOp
from app.worker.recovery import (
    Recovered,
    RecoverInterrupted,
    interrupt,
    requeued_events,
    unclaim,
)
from app.worker.status import TaskStatus


def register(conn: Connection, me: Owner) -> None:
    """Add this process's row (no other process is refused: many share the database). Its
    log follower will start from the log's newest id: nothing before it is this process's
    to publish, so the pruner need not keep it."""
    newest = select(func.coalesce(func.max(events.c.id), 0)).scalar_subquery()
    insert_owner(conn, me, now_us(), events_seen=newest)


def dead_processes(conn: Connection, me: Owner) -> list[str]:
    """The boot ids of other processes judged dead now; their rows are deleted."""
    now = now_us()
    others = conn.execute(select(owners).where(owners.c.boot_id != me.boot_id)).all()
    dead = [row.boot_id for row in others if not is_alive(row, me, now)]
    if dead:
        conn.execute(delete(owners).where(owners.c.boot_id.in_(dead)))
    return dead


def _orphaned(dead: Sequence[str]) -> Any:
    """Rows held by a dead process, or by one without a row at all."""
    known = select(owners.c.boot_id).scalar_subquery()
    return and_(
        tasks.c.owner.is_not(None), or_(tasks.c.owner.in_(dead), tasks.c.owner.not_in(known))
    )


def rescue(conn: Connection, op: WriteOp[Any], me: Owner, max_interruptions: int) -> Recovered:
    """Put back what dead processes held, with events in `op` (see the module docstring)."""
    where = _orphaned(dead_processes(conn, me))
    returned = unclaim(conn, where)
    requeued_events(op, returned, "pending", reason="rescued")
    running = and_(where, status_is(TaskStatus.RUNNING))
    requeued, failed = interrupt(op, conn, running, max_interruptions)
    return Recovered(requeued, failed, len(returned), any_suspect(conn))


def any_suspect(conn: Connection) -> bool:
    found = select(tasks.c.seq).where(status_is(TaskStatus.PENDING), tasks.c.suspect).limit(1)
    return conn.execute(found).first() is not None


def recover_batch(conn: Connection, ops: Sequence[RecoverInterrupted]) -> None:
    """RecoverInterrupted on PostgreSQL: register, then rescue the dead."""
    for op in ops:
        register(conn, op.me)
        op.set_result(rescue(conn, op, op.me, op.max_interruptions))


def heartbeat_batch(max_interruptions: int) -> Any:
    """Heartbeat on PostgreSQL: beat (False when our row is gone: we were judged dead), then
    rescue the dead and fold the task counts."""

    def apply(conn: Connection, ops: Sequence[Heartbeat]) -> None:
        for op in ops:
            beat = op.apply(conn)
            if beat:
                rescue(conn, op, op.me, max_interruptions)
            op.set_result(beat)
        fold_counts(conn)

    return apply
