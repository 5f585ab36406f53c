"""Taking due tasks and starting them.

A claim first stages the scheduled rows that have come due (app/worker/stager.py), so every
pending row is due and it reads nothing else; then it takes the best pending rows in the
same transaction: as many as there are free slots go
straight to `running` (their functions start as soon as it commits), and, while tasks are
short, a prefetch goes to `claimed` (taken, not started: shown as queued, never charged). A
claimed row becomes `running` through StartTasks, one op for every task started together,
committed before any of their functions runs, so a crash always finds the tasks that had
really started `running` and nothing else. Suspects (rows that were running when their
process died) are taken one at a time, only into a free slot. Once the pool's stop has begun
(`stopping`, set from the event loop, read here in the writer's thread), both take nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    literal_column,
    select,
    text,
    update,
)

from app.clock import now_us, seconds_to_us
from app.db.bulk import execute_compiled
from app.db.tables import status_is, tasks, tasks_indexed_by
from app.db.writer import WriteOp
from app.events.log import EventType
from app.worker.records import ClaimedTask, task_event
from app.worker.stager import stage_due
from app.worker.status import TaskStatus


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """What the pool asks for: `start` rows to run now (one of them a suspect when
    `suspect`), `prefetch` rows to hold as claimed, and `give_back`, claimed rows it no
    longer wants (a more urgent task arrived), returned to pending first."""

    owner: str
    lease_seconds: float
    start: int
    prefetch: int = 0
    suspect: bool = False
    give_back: Sequence[ClaimedTask] = ()


@dataclass(slots=True)
class Claim:
    started: list[ClaimedTask] = field(default_factory=list)
    claimed: list[ClaimedTask] = field(default_factory=list)

    def filled(self, request: ClaimRequest) -> bool:
        """True when every row asked for came back: more may be due."""
        return len(self.started) >= request.start and len(self.claimed) == request.prefetch


_CLAIM_COLUMNS = (
    "id",
    "task_type",
    "args",
    "kwargs",
    "attempts",
    "max_attempts",
    "timeout",
    "priority",
    "run_at",
    "seq",
    "cache_key",
    "cache_ttl",
    "metadata",
    "snoozes",
)


@functools.cache
def _take_statement(index: str, condition: str, start: bool) -> Any:
    """UPDATE the best `b_limit` pending rows (all due), read in order from a partial index,
    to running (`start`) or claimed; RETURNING what the pool needs to run them."""
    seq: ColumnElement[int] = literal_column("seq")
    due = (
        select(seq)
        .select_from(tasks_indexed_by(index))
        .where(text(condition))
        .order_by(literal_column("priority"), literal_column("run_at"), seq)
        .limit(bindparam("b_limit"))
        .scalar_subquery()
    )
    return (
        update(tasks)
        .where(tasks.c.seq.in_(due))
        .values(**claim_values(start))
        .returning(*claim_columns())
    )


def claim_values(start: bool) -> dict[str, Any]:
    """What a claim sets: owner and lease, then running (`start`) or claimed."""
    values: dict[str, Any] = {
        "owner": bindparam("b_owner"),
        "lease_expires_at": bindparam("b_lease"),
    }
    if start:
        values.update(
            status=TaskStatus.RUNNING.value,
            started_at=bindparam("b_now"),
            progress=0.0,
            attempts=tasks.c.attempts + 1,
            suspect=False,
        )
    else:
        values["status"] = TaskStatus.CLAIMED.value
    return values


def claim_columns() -> list[Any]:
    """What a claim returns, in the order `claimed_task` reads."""
    return [tasks.c[name] for name in _CLAIM_COLUMNS]


SUSPECT_WAITING = "status = 'pending' AND suspect = 1"
_NORMAL = ("ix_tasks_pending_order", "status = 'pending' AND suspect = 0")
_SUSPECT = ("ix_tasks_suspects", SUSPECT_WAITING)


class ClaimTasks(WriteOp[Claim]):
    """Give back, stage what came due, then take: suspect first, then the best rows to run,
    then prefetch."""

    def __init__(self, request: ClaimRequest, stopping: threading.Event | None = None) -> None:
        super().__init__()
        self.request, self.stopping = request, stopping

    def apply(self, conn: Connection) -> Claim:
        request, now = self.request, now_us()
        if request.give_back:
            _give_back(conn, request.owner, request.give_back)
        stage_due(conn, now)
        claim = Claim()
        if self.stopping is not None and self.stopping.is_set():
            return claim
        if request.suspect and request.start > 0:
            suspects = self._take(conn, _SUSPECT, 1, now, start=True)
            claim.started += [dataclasses.replace(c, suspect=True) for c in suspects]
        claim.started += self._take(conn, _NORMAL, request.start - len(claim.started), now, True)
        claim.claimed = self._take(conn, _NORMAL, request.prefetch, now, start=False)
        self.events.extend(started_event(c) for c in claim.started)
        return claim

    def _take(
        self, conn: Connection, source: tuple[str, str], limit: int, now: int, start: bool
    ) -> list[ClaimedTask]:
        if limit <= 0:
            return []
        lease = now + seconds_to_us(self.request.lease_seconds)
        params = {"b_now": now, "b_limit": limit, "b_owner": self.request.owner, "b_lease": lease}
        rows = execute_compiled(conn, _take_statement(*source, start), [params]).fetchall()
        step = 0 if start else 1  # a claimed row's attempt is the one it will start as
        claimed = [claimed_task(row, step) for row in rows]
        return sorted(claimed, key=lambda c: (c.priority, c.run_at, c.seq))


def claimed_task(row: Any, step: int) -> ClaimedTask:
    """A RETURNING row (in _CLAIM_COLUMNS order, as the driver gives it: metadata as JSON
    text from SQLite, already decoded from PostgreSQL) as a ClaimedTask."""
    task_id, task_type, args, kwargs, attempts, max_attempts, timeout = row[:7]
    priority, run_at, seq, cache_key, cache_ttl, metadata, snoozes = row[7:]
    return ClaimedTask(
        task_id,
        task_type,
        args,
        kwargs,
        attempts + step,
        max_attempts,
        timeout,
        priority,
        run_at,
        seq,
        cache_key,
        cache_ttl,
        json.loads(metadata) if isinstance(metadata, str) else metadata,
        snoozes=snoozes,
    )


def started_event(claimed: ClaimedTask) -> Any:
    return task_event(
        EventType.STARTED,
        claimed.id,
        claimed.task_type,
        group=claimed.group,
        status="running",
        attempt=claimed.attempt,
        run_at=claimed.run_at,  # the queue wait ends here (metrics)
    )


def _give_back(conn: Connection, owner: str, given: Sequence[ClaimedTask]) -> None:
    conn.execute(
        update(tasks)
        .where(
            tasks.c.id == bindparam("b_id"),
            tasks.c.owner == owner,
            status_is(TaskStatus.CLAIMED),
        )
        .values(status=TaskStatus.PENDING.value, owner=None, lease_expires_at=None),
        [{"b_id": c.id} for c in given],
    )


_START = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("b_id"),
        tasks.c.owner == bindparam("b_owner"),
        tasks.c.attempts == bindparam("b_before"),
        status_is(TaskStatus.CLAIMED),
    )
    .values(
        status=TaskStatus.RUNNING.value,
        started_at=bindparam("b_now"),
        progress=0.0,
        attempts=bindparam("b_attempt"),
        lease_expires_at=bindparam("b_lease"),
    )
)


class StartTasks(WriteOp[set[str]]):
    """Mark claimed tasks `running` (attempt, started_at, progress 0) before their functions
    run; the result is the ids that were still claimed by us (a cancel may have come first)."""

    def __init__(
        self,
        claimed: Sequence[ClaimedTask],
        owner: str,
        lease_seconds: float,
        stopping: threading.Event | None = None,
    ) -> None:
        super().__init__()
        self.claimed, self.owner, self.lease_seconds = list(claimed), owner, lease_seconds
        self.stopping = stopping

    def apply(self, conn: Connection) -> set[str]:
        if self.stopping is not None and self.stopping.is_set():
            return set()
        now = now_us()
        lease = now + seconds_to_us(self.lease_seconds)
        params = [
            {
                "b_id": c.id,
                "b_owner": self.owner,
                "b_before": c.attempt - 1,
                "b_attempt": c.attempt,
                "b_now": now,
                "b_lease": lease,
            }
            for c in self.claimed
        ]
        result = execute_compiled(conn, _START, params)
        started = {c.id for c in self.claimed}
        if result.rowcount != len(params):
            started = self._read_back(conn, now)
        self.events.extend(started_event(c) for c in self.claimed if c.id in started)
        return started

    def _read_back(self, conn: Connection, now: int) -> set[str]:
        attempt_of = {c.id: c.attempt for c in self.claimed}
        rows = conn.execute(
            select(tasks.c.id, tasks.c.attempts).where(
                tasks.c.id.in_(list(attempt_of)),
                status_is(TaskStatus.RUNNING),
                tasks.c.owner == self.owner,
                tasks.c.started_at == now,
            )
        )
        return {row.id for row in rows if attempt_of[row.id] == row.attempts}
