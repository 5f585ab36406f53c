"""The group-commit writer on PostgreSQL: the same WriteOps, batched the same way, in one
transaction on the writer thread's psycopg connection (app/db/postgres/engine.py says why).

What differs from SQLite's writer (app/db/writer.py):
- Ops whose SQL must differ (claims with FOR UPDATE SKIP LOCKED, process registration and
  rescue) run through `overrides`, a table from op class to its PostgreSQL batch function,
  given by the layer that owns those ops; every other op runs its own `apply_batch`.
- Event ids must follow commit order, or a reader resuming after id n could miss an id below
  n committed later by another process. So a transaction that logs events takes a
  transaction-scoped advisory lock just before inserting them and holds it to its commit:
  ids are handed out in commit order, at the cost of serialising those last moments.
- With the events it NOTIFYs `litetask_events` with the newest id (payload = event id), and
  `litetask_work` when it made work runnable, so idle processes wake
  (app/worker/postgres/wake.py). Lock, insert and NOTIFYs are one statement, so the lock is
  held for that statement and the COMMIT only (LOG_AND_NOTIFY).
- QuietOps (WAL checkpoints) have no meaning here: they are skipped (outcome None).
- Before taking the rest of a batch, the thread yields the GIL once (`time.sleep(0)`): the
  event loop then finishes queuing what its current step writes. A task's outcome and the
  claim for its freed slot are submitted a step apart, and the commit that ran before woke
  the loop's LISTEN/log-follower I/O, so without it a completion often committed alone
  (1.45 commits per task in a producer loop, 1.0-1.1 with it; SQLite's 1.1 without).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, text

from app.db.bulk import json_text
from app.db.commit_loop import CommitLoop, Inbox, Pending, Settle
from app.db.write_op import WriteOp
from app.db.writer import GroupCommitWriter
from app.events.log import group_of_event

BatchApply = Callable[[Connection, Sequence[Any]], None]
EVENTS_CHANNEL = "litetask_events"
WORK_CHANNEL = "litetask_work"
# pg_advisory_xact_lock key of the event log ("ltevents" in ASCII).
EVENT_LOG_LOCK = 0x6C746576656E7473
# Events after which some process may find new work to claim; after RECOVERED, suspects.
WORK_EVENTS = frozenset({"task.queued", "task.retrying", "task.recovered"})
RECOVERED = "task.recovered"
SUSPECTS_PAYLOAD = "suspects"
NOTIFY = "SELECT pg_notify(:channel, :payload)"


class PostgresWriter(GroupCommitWriter):
    """GroupCommitWriter for PostgreSQL (see the module docstring): the same thread and
    inbox, its transactions run by PostgresCommitLoop."""

    def __init__(
        self, engine: Engine, *, overrides: Mapping[type[Any], BatchApply], **options: Any
    ) -> None:
        super().__init__(engine, **options)
        self._work = PostgresCommitLoop(
            engine, self._inbox, self._settle_soon, self._max_batch, overrides
        )


class PostgresCommitLoop(CommitLoop):
    """The writer thread's loop with PostgreSQL's ops, event ids in commit order and NOTIFY."""

    def __init__(
        self,
        engine: Engine,
        inbox: Inbox,
        settle: Settle,
        max_batch: int,
        overrides: Mapping[type[Any], BatchApply],
    ) -> None:
        super().__init__(engine, inbox, settle, max_batch)
        self._overrides = dict(overrides)

    def _gather(self) -> None:
        time.sleep(0)  # let the event loop queue the rest of its step (module docstring)

    def _run_quiet(self, group: list[Pending]) -> None:
        for pending in group:
            pending.op.set_result(None)
        if group:
            self.settle(group, None)

    def _apply(self, batch_type: type[WriteOp[Any]], conn: Connection, run: list[Any]) -> None:
        apply: BatchApply = self._overrides.get(batch_type, batch_type.apply_batch)
        apply(conn, run)

    def _log(self, conn: Connection, ops: list[WriteOp[Any]]) -> None:
        log_and_notify(conn, ops)


# One statement, one round trip: take the event log's lock, insert the events in the given
# order (the insert's source is sorted by ordinality, and PostgreSQL evaluates the ids'
# nextval above that sort, so ids follow the order given), NOTIFY the newest id, and
# `litetask_work` when asked. Three statements before, each a round trip to the client
# while the lock was held, so every other process's commit waited on this process being
# scheduled (docs/scaling.md, "Throughput across processes").
LOG_AND_NOTIFY = text(
    """
WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(:lock_key) AS held),
given AS (
    SELECT u.*
    FROM locked, unnest(
        CAST(:types AS TEXT[]), CAST(:task_ids AS TEXT[]), CAST(:task_types AS TEXT[]),
        CAST(:created AS BIGINT[]), CAST(:payloads AS JSON[]), CAST(:groups AS TEXT[])
    ) WITH ORDINALITY AS u(type, task_id, task_type, created_at, payload, task_group, n)
),
logged AS (
    INSERT INTO events (type, task_id, task_type, created_at, payload, task_group)
    SELECT type, task_id, task_type, created_at, payload, task_group FROM given ORDER BY n
    RETURNING id
),
told AS MATERIALIZED (
    SELECT pg_notify(:events_channel, CAST(max(id) AS TEXT)) AS events,
        CASE WHEN :work THEN pg_notify(:work_channel, :work_payload) END AS work
    FROM logged
)
SELECT logged.id FROM logged, told ORDER BY logged.id
"""
)


def log_and_notify(conn: Connection, ops: Sequence[WriteOp[Any]]) -> None:
    """Log the ops' events with ids in commit order, and tell the other processes (one
    statement: LOG_AND_NOTIFY)."""
    records = [e for op in ops for e in op.events]
    if not records:
        return
    work = any(e.type in WORK_EVENTS for e in records)
    suspects = any(e.type == RECOVERED for e in records)
    params = {
        "lock_key": EVENT_LOG_LOCK,
        "types": [str(e.type) for e in records],
        "task_ids": [e.task_id for e in records],
        "task_types": [e.task_type for e in records],
        "created": [e.created_at for e in records],
        "payloads": [json_text(e.payload) for e in records],
        "groups": [group_of_event(e) for e in records],
        "events_channel": EVENTS_CHANNEL,
        "work": work,
        "work_channel": WORK_CHANNEL,
        "work_payload": SUSPECTS_PAYLOAD if suspects else "",
    }
    ids = iter(conn.execute(LOG_AND_NOTIFY, params).scalars())
    for op in ops:
        op.events = [dataclasses.replace(e, id=next(ids)) for e in op.events]


def notify_work(conn: Connection, *, suspects: bool = False) -> None:
    """NOTIFY the processes that work became runnable (suspects among it), at commit."""
    payload = SUSPECTS_PAYLOAD if suspects else ""
    conn.execute(text(NOTIFY), {"channel": WORK_CHANNEL, "payload": payload})
