"""Putting interrupted work back: at start for what a dead process left (after taking
ownership of the database in the same transaction), at graceful stop for what this process
cut short, and, while it lives, for rows of this boot that no attempt owns (the reconciler).

Nothing that never started is charged: `claimed` rows go back as they were. A row that was
`running` when its process died counts an interruption and becomes a suspect (suspects run
one at a time, so a task that kills its process cannot take others down with it again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    literal_column,
    select,
    text,
    update,
)

from app.clock import now_us
from app.db.owner import Owner, take_ownership
from app.db.tables import status_is, tasks, tasks_indexed_by
from app.db.writer import WriteOp
from app.events.log import EventType
from app.worker.claims import SUSPECT_WAITING
from app.worker.records import AttemptKey, group_of, task_event
from app.worker.status import TaskStatus

_RETURNING = (tasks.c.id, tasks.c.task_type, tasks.c.interruptions, tasks.c.metadata)


def requeued_events(op: WriteOp[Any], rows: Sequence[Any], status: str, **extra: Any) -> None:
    """One `status` event per row put back, on `op` (recovery, a stop, PostgreSQL's rescue)."""
    for row in rows:
        op.events.append(
            task_event(
                EventType.FAILED if status == "failed" else EventType.RECOVERED,
                row.id,
                row.task_type,
                group=group_of(row.metadata),
                status=status,
                **extra,
            )
        )


def unclaim(conn: Connection, where: Any) -> list[Any]:
    """Claimed rows back to pending exactly as they were before the claim."""
    statement = (
        update(tasks)
        .where(where, status_is(TaskStatus.CLAIMED))
        .values(status=TaskStatus.PENDING.value, owner=None, lease_expires_at=None)
        .returning(*_RETURNING)
    )
    return list(conn.execute(statement).all())


@dataclass(frozen=True, slots=True)
class Recovered:
    requeued: int  # were running: suspects now
    failed: int  # interrupted once too often
    returned: int  # were only claimed: back as they were
    suspects: bool = False  # suspects wait (these, or earlier boots' not yet run again)


def _any_suspect(conn: Connection) -> bool:
    found: Select[Any] = select(literal_column("1")).select_from(
        tasks_indexed_by("ix_tasks_suspects")
    )
    return conn.execute(found.where(text(SUSPECT_WAITING)).limit(1)).first() is not None


class RecoverInterrupted(WriteOp[Recovered]):
    """At start, in one transaction: take ownership of the database (DatabaseInUseError while
    another process owns it), then put back everything an earlier boot left taken. A task
    interrupted more than `max_interruptions` times fails, so a task that kills its process
    cannot loop forever."""

    def __init__(self, me: Owner, database: str, max_interruptions: int) -> None:
        super().__init__()
        self.me, self.database, self.max_interruptions = me, database, max_interruptions

    def apply(self, conn: Connection) -> Recovered:
        take_ownership(conn, self.me, self.database)
        returned = len(unclaim(conn, tasks.c.owner != self.me.boot_id))
        running = status_is(TaskStatus.RUNNING)
        requeued, failed = interrupt(self, conn, running, self.max_interruptions)
        return Recovered(requeued, failed, returned, _any_suspect(conn))


def interrupt(
    op: WriteOp[Any], conn: Connection, where: Any, max_interruptions: int
) -> tuple[int, int]:
    """Rows matching `where` (running when their process died) count one more interruption
    and go back as suspects, or fail past `max_interruptions`, each with an event in `op`;
    returns (requeued, failed)."""
    now = now_us()
    too_many = tasks.c.interruptions + 1 > max_interruptions
    failed = _interrupt(
        op,
        conn,
        and_(where, too_many),
        status=TaskStatus.FAILED.value,
        completed_at=now,
        error=f"interrupted more than {max_interruptions} times "
        "(the process running it died each time)",
    )
    requeued = _interrupt(
        op, conn, where, status=TaskStatus.PENDING.value, run_at=now, suspect=True
    )
    return requeued, failed


def _interrupt(op: WriteOp[Any], conn: Connection, where: Any, **values: Any) -> int:
    statement = (
        update(tasks)
        .where(where)
        .values(
            **values, owner=None, lease_expires_at=None, interruptions=tasks.c.interruptions + 1
        )
        .returning(*_RETURNING)
    )
    rows = conn.execute(statement).all()
    for row in rows:
        extra = {"reason": "interrupted", "interruptions": row.interruptions}
        requeued_events(op, [row], values["status"], **extra)
    return len(rows)


def _requeue_attempts(
    conn: Connection, owner: str, keys: Sequence[AttemptKey], **values: Any
) -> list[Any]:
    """Running attempts of this owner (fenced by their numbers) back to pending."""
    if not keys:
        return []
    statement = (
        update(tasks)
        .where(
            tasks.c.id == bindparam("b_id"),
            tasks.c.attempts == bindparam("b_attempt"),
            tasks.c.owner == owner,
            status_is(TaskStatus.RUNNING),
        )
        .values(status=TaskStatus.PENDING.value, owner=None, lease_expires_at=None, **values)
        .returning(*_RETURNING)
    )
    # One statement per row: drivers do not all return rows from an executemany.
    return [
        row
        for task_id, attempt in keys
        for row in conn.execute(statement, {"b_id": task_id, "b_attempt": attempt}).all()
    ]


class PutBack(WriteOp[int]):
    """Rows this boot holds, back to pending: `claimed` ones as they were, `running` ones
    (fenced by attempt) with an event giving `reason`. At a graceful stop ("shutdown") the
    cut attempt is given back (`max_attempts` + 1: a shutdown is not the task's failure, and
    the count itself never goes down); for the reconciler ("orphaned": no live attempt owns
    the row) it stays spent, since the attempt started and its outcome never came."""

    def __init__(
        self,
        owner: str,
        claimed: Sequence[str],
        running: Sequence[AttemptKey],
        reason: str = "shutdown",
    ) -> None:
        super().__init__()
        self.owner, self.claimed, self.running = owner, list(claimed), list(running)
        self.reason = reason

    def apply(self, conn: Connection) -> int:
        returned = []
        if self.claimed:
            mine = and_(tasks.c.id.in_(self.claimed), tasks.c.owner == self.owner)
            returned = unclaim(conn, mine)
        values: dict[str, Any] = {"run_at": now_us()}
        if self.reason == "shutdown":
            values["max_attempts"] = tasks.c.max_attempts + 1
        else:  # routine at a stop; worth a fact when a claim was lost
            requeued_events(self, returned, "pending", reason=self.reason)
        rows = _requeue_attempts(conn, self.owner, self.running, **values)
        requeued_events(self, rows, "pending", reason=self.reason)
        return len(returned) + len(rows)
