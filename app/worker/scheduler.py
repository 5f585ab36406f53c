"""The scheduler: periodic task types queue their slots while the worker runs.

Like the stager, it sleeps until the next slot of any schedule (never longer than a minute,
which costs no query: a wall clock that jumps is noticed that late at worst), then queues
the due slots of every schedule in one transaction (app/worker/slots.py) and wakes the pool.
An idle service with schedules makes one transaction per slot and nothing in between. When
the database refuses that transaction, nothing was written: the same slots are decided again
at the next wake, a second later, so none is lost and none is queued twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clock import now_us, us_to_datetime
from app.db.tables import schedules, tasks
from app.errors import DatabaseUnavailableError
from app.worker.queue import TaskQueue
from app.worker.registry import TaskDefinition, TaskRegistry
from app.worker.slots import DEFAULT_CAP, QueueSlots
from app.worker.status import TaskStatus

logger = logging.getLogger(__name__)
MAX_SLEEP_SECONDS = 60.0
RETRY_US = 1_000_000
NEVER = 2**63


class Scheduler:
    """Queues each slot of the registry's periodic task types, once; at most `cap` of one
    type at a time."""

    def __init__(
        self,
        queue: TaskQueue,
        registry: TaskRegistry,
        cap: int = DEFAULT_CAP,
        default_max_attempts: int = 1,
    ) -> None:
        self.queue, self.cap, self.default_max_attempts = queue, cap, default_max_attempts
        self.periodic = {d.name: d for d in registry.definitions() if d.schedule is not None}
        # When each schedule is next due (µs); 0: decide at once (missed slots, at the start).
        self.due = dict.fromkeys(self.periodic, 0)
        self.booted_at = now_us()

    async def run(self) -> None:
        """Until cancelled (the worker's stop); returns at once without periodic types."""
        if not self.periodic:
            return
        self.booted_at = now_us()  # slots before this passed while nothing ran here
        while True:
            await self.turn()
            delay = min(MAX_SLEEP_SECONDS, (min(self.due.values()) - now_us()) / 1_000_000)
            if delay > 0:
                await asyncio.sleep(delay)

    async def turn(self) -> None:
        """Queue the slots of every schedule that is due; on a refusal, try again in 1 s."""
        ready = [self.periodic[name] for name, at in self.due.items() if at <= now_us()]
        if not ready:
            return
        op = QueueSlots(
            ready,
            booted_at=self.booted_at,
            cap=self.cap,
            default_max_attempts=self.default_max_attempts,
        )
        try:
            decided = await self.queue.writer.run(op)
        except DatabaseUnavailableError as exc:
            logger.warning("queueing periodic tasks: %s; trying again in 1 s", exc)
            self._retry(ready)
            return
        except Exception:
            logger.exception("queueing periodic tasks failed; trying again in 1 s")
            self._retry(ready)
            return
        for outcome in decided:
            self._note(outcome.name, outcome.decided_until, len(outcome.created))
            for task in outcome.created:
                self.queue.accepted(task)

    def _retry(self, ready: list[TaskDefinition]) -> None:
        retry_at = now_us() + RETRY_US
        for definition in ready:
            self.due[definition.name] = retry_at

    def _note(self, name: str, decided_until: int, created: int) -> None:
        schedule = self.periodic[name].schedule
        assert schedule is not None
        following = schedule.next_after(decided_until)
        self.due[name] = NEVER if following is None else following
        if created > 1:
            logger.info("periodic task type %s: %s slots queued at once", name, created)


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A periodic task type as it stands: its schedule, the latest slot queued (`last_run`,
    with its task's id and status; the status is None once the task is pruned), and the
    next slot (`next_run`)."""

    name: str
    cron: str | None
    every: int | None
    timezone: str
    missed: str
    last_run: datetime | None
    last_task_id: str | None
    last_status: TaskStatus | None
    next_run: datetime | None


async def read_schedules(
    engine: AsyncEngine, definitions: Iterable[TaskDefinition]
) -> list[ScheduleInfo]:
    """Every periodic task type among `definitions`, by name, with its row's progress."""
    periodic = {d.name: d for d in definitions if d.schedule is not None}
    s = schedules.c
    statement = (
        select(s.name, s.decided_until, s.last_slot, s.last_task_id, tasks.c.status)
        .select_from(schedules.outerjoin(tasks, tasks.c.id == s.last_task_id))
        .where(s.name.in_(list(periodic)))
    )
    async with engine.connect() as conn:
        rows = {row.name: row for row in await conn.execute(statement)}
    now = now_us()
    return [_info(periodic[name], rows.get(name), now) for name in sorted(periodic)]


def _info(definition: TaskDefinition, row: object | None, now: int) -> ScheduleInfo:
    schedule = definition.schedule
    assert schedule is not None
    decided = int(getattr(row, "decided_until", 0) or 0)
    status = getattr(row, "status", None)
    following = schedule.next_after(max(now, decided))
    return ScheduleInfo(
        name=definition.name,
        cron=schedule.cron,
        every=schedule.every,
        timezone=schedule.timezone,
        missed=schedule.missed,
        last_run=us_to_datetime(getattr(row, "last_slot", None)),
        last_task_id=getattr(row, "last_task_id", None),
        last_status=TaskStatus(status) if status in set(TaskStatus) else None,
        next_run=us_to_datetime(following),
    )
