"""QueueSlots: the slots of periodic task types become tasks, each exactly once.

One transaction per wake of the scheduler reads each due schedule's row, decides which
slots to queue, inserts their tasks through the same acceptance as any submit (PutTask:
the slot's idempotency key, `periodic:<name>:<UTC time>`, is checked and stored with the
row) and moves the schedule's row on. So a slot is never queued twice: not after a restart
(the row says how far it got), not by a process that read the row late (on PostgreSQL,
several processes: the key is unique), and a transaction the database refuses leaves
nothing behind, so the next wake decides the same slots again and nothing is lost.

Which slots: those that came while this process ran (after `booted_at`) are all queued,
however late; those that passed before it started (downtime) follow the schedule's
`missed` policy: `skip` none, `one` the latest, `all` every one. Either way at most
`cap` (the latest) per schedule at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from app.bounds import DEFAULT_MISSED_SLOTS
from app.clock import now_us, us_to_datetime
from app.db.tables import schedules
from app.db.writer import WriteOp
from app.errors import IdempotencyKeyReusedError
from app.worker.accept import PutTask
from app.worker.options import TaskOptions, build_new_task
from app.worker.periodic import SLOT_PARAMETER, Schedule, slot_key
from app.worker.records import NewTask
from app.worker.registry import TaskDefinition

logger = logging.getLogger(__name__)
DEFAULT_CAP = DEFAULT_MISSED_SLOTS  # slots of one schedule queued at once, at most (the latest)
MISSED_WANTED = {"skip": 0, "one": 1}  # "all": the cap


@dataclass(frozen=True, slots=True)
class Decided:
    """What one schedule's turn did: every slot up to `decided_until` is decided; `slots`
    were queued (or found queued already), `created` are the tasks inserted now."""

    name: str
    decided_until: int
    slots: list[int]
    created: list[NewTask]


def decide(
    schedule: Schedule, decided_until: int | None, booted_at: int, now: int, cap: int
) -> list[int]:
    """The slots to queue now, earliest first: every one since the row's progress that
    came while this process ran, and of those that passed before it started, what the
    missed policy keeps; at most `cap`, the latest. A schedule seen for the first time
    has missed nothing."""
    since = booted_at if decided_until is None else decided_until
    missed: list[int] = []
    if since < booted_at:
        wanted = MISSED_WANTED.get(schedule.missed, cap)
        missed = schedule.latest(since, min(booted_at, now), wanted)
    live = schedule.latest(max(since, booted_at), now, cap)
    return (missed + live)[-cap:]


def slot_task(definition: TaskDefinition, slot: int, default_max_attempts: int) -> NewTask:
    """A slot's task, as a submit of the type with its defaults would make it: no arguments
    (the slot as `scheduled_at` when the function declares it), due at the slot."""
    moment = us_to_datetime(slot)
    kwargs = {SLOT_PARAMETER: moment} if SLOT_PARAMETER in definition.signature.parameters else {}
    options = TaskOptions(
        metadata={"schedule": definition.name},
        run_at=moment,
        idempotency_key=slot_key(definition.name, slot),
    )
    return build_new_task(
        definition, [], kwargs, options, default_max_attempts=default_max_attempts
    )


class QueueSlots(WriteOp[list[Decided]]):
    """Decide and queue the due slots of some periodic task types, in one transaction."""

    def __init__(
        self,
        definitions: Sequence[TaskDefinition],
        *,
        booted_at: int,
        cap: int = DEFAULT_CAP,
        default_max_attempts: int = 1,
    ) -> None:
        super().__init__()
        self.definitions = definitions
        self.booted_at, self.cap = booted_at, cap
        self.default_max_attempts = default_max_attempts

    def apply(self, conn: Connection) -> list[Decided]:
        now = now_us()
        rows = _rows(conn, [d.name for d in self.definitions])
        plans = {d.name: self._slots(d, rows.get(d.name), now) for d in self.definitions}
        puts = {
            d.name: [
                PutTask(slot_task(d, slot, self.default_max_attempts)) for slot in plans[d.name]
            ]
            for d in self.definitions
        }
        PutTask.apply_batch(conn, [put for group in puts.values() for put in group])
        decided = []
        for name, group in puts.items():
            ids, created = self._outcomes(group)
            _advance(conn, name, rows.get(name), now, plans[name], ids)
            decided.append(Decided(name, max(now, _progress(rows.get(name))), plans[name], created))
        return decided

    def _slots(self, definition: TaskDefinition, row: Any, now: int) -> list[int]:
        assert definition.schedule is not None
        progress = None if row is None else row.decided_until
        return decide(definition.schedule, progress, self.booted_at, now, self.cap)

    def _outcomes(self, puts: list[PutTask]) -> tuple[list[str | None], list[NewTask]]:
        """Each slot's task id (None: its key was taken by a different request), and the
        tasks inserted now; their events join this op's."""
        ids: list[str | None] = []
        created: list[NewTask] = []
        for put in puts:
            try:
                accepted = put.outcome()
            except IdempotencyKeyReusedError:
                logger.warning(
                    "slot %s was already taken by another request; passed over",
                    put.task.idempotency_key,
                )
                ids.append(None)
                continue
            ids.append(accepted.task_id)
            if accepted.task is not None:
                created.append(accepted.task)
            self.events.extend(put.events)
        return ids, created


def _rows(conn: Connection, names: list[str]) -> dict[str, Any]:
    """The schedules' rows, locked for this transaction where the database can."""
    statement = select(schedules).where(schedules.c.name.in_(names)).with_for_update()
    return {row.name: row for row in conn.execute(statement)}


def _progress(row: Any) -> int:
    return 0 if row is None else int(row.decided_until)


def _advance(
    conn: Connection, name: str, row: Any, now: int, slots: list[int], ids: list[str | None]
) -> None:
    """Move the schedule's row on: decided up to now, and its latest slot queued."""
    values: dict[str, Any] = {"decided_until": max(now, _progress(row)), "updated_at": now}
    queued = [(slot, task_id) for slot, task_id in zip(slots, ids, strict=True) if task_id]
    if queued and (row is None or row.last_slot is None or queued[-1][0] > row.last_slot):
        values["last_slot"], values["last_task_id"] = queued[-1]
    if row is None:
        conn.execute(insert(schedules).values(name=name, **values))
    else:
        conn.execute(update(schedules).where(schedules.c.name == name).values(**values))
