"""Completed and failed tasks per minute over the last hour: the dashboard's sparkline.

Counted in memory from the events the writer publishes after each commit (a change that
rolled back never counts), so a read costs sixty dictionary lookups however much history the
database holds. What finished before this process started counting is read once, at the
first read, from ix_tasks_finished: a search over the last hour's finished rows, which
the index covers (it holds the status too), never a scan of the finished history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Select, String, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clock import now_us
from app.db.tables import tasks_indexed_by
from app.events.log import EventType, TaskEvent
from app.worker.status import TaskStatus

MINUTE_US = 60 * 1_000_000
WINDOW_MINUTES = 60
# Index of each outcome in a minute's [completed, failed], by event type and by status.
BY_EVENT = {EventType.COMPLETED.value: 0, EventType.FAILED.value: 1}
BY_STATUS = {TaskStatus.COMPLETED.value: 0, TaskStatus.FAILED.value: 1}


@dataclass(frozen=True, slots=True)
class MinuteCount:
    """Tasks that finished in the minute starting at `start_us` (µs since the epoch)."""

    start_us: int
    completed: int
    failed: int


class Throughput:
    """Per-minute counts of completed and failed tasks, the last WINDOW_MINUTES kept."""

    def __init__(self) -> None:
        # Events from here on are counted live; rows that finished before, read once.
        self.counting_since = now_us()
        self._counts: dict[int, list[int]] = {}  # minute number -> [completed, failed]
        self._history_read = False
        self._reading = asyncio.Lock()

    def observe(self, events: Sequence[TaskEvent]) -> None:
        """Count committed events (an event sink of the worker; a few dict updates)."""
        for event in events:
            outcome = BY_EVENT.get(event.type)
            if outcome is not None:
                self._add(event.created_at // MINUTE_US, outcome, 1)

    async def minutes(self, reader: AsyncEngine) -> list[MinuteCount]:
        """The last WINDOW_MINUTES minutes, oldest first, the current (partial) one last."""
        await self._read_history(reader)
        current = now_us() // MINUTE_US
        return [
            MinuteCount(minute * MINUTE_US, *self._counts.get(minute, (0, 0)))
            for minute in range(current - WINDOW_MINUTES + 1, current + 1)
        ]

    def _add(self, minute: int, outcome: int, count: int) -> None:
        counts = self._counts.get(minute)
        if counts is None:
            counts = self._counts[minute] = [0, 0]
            for old in [m for m in self._counts if m <= minute - WINDOW_MINUTES]:
                del self._counts[old]
        counts[outcome] += count

    async def _read_history(self, reader: AsyncEngine) -> None:
        if self._history_read:
            return
        async with self._reading:
            if self._history_read:
                return
            first = (self.counting_since // MINUTE_US - WINDOW_MINUTES + 1) * MINUTE_US
            async with reader.connect() as conn:
                rows = (await conn.execute(finished_per_minute(first, self.counting_since))).all()
            for minute, status, count in rows:
                self._add(int(minute), BY_STATUS[status], int(count))
            self._history_read = True


def finished_per_minute(since_us: int, until_us: int) -> Select[int, str, int]:
    """(minute number, status, count) of the tasks that completed or failed in
    [since_us, until_us), from ix_tasks_finished alone (named: without statistics the
    planner would take the status index and read every finished row of those statuses)."""
    completed_at = literal_column("completed_at", BigInteger)
    status = literal_column("status", String)
    minute = (completed_at // MINUTE_US).label("minute")
    return (
        select(minute, status, func.count())
        .select_from(tasks_indexed_by("ix_tasks_finished"))
        .where(completed_at >= since_us, completed_at < until_us, status.in_(sorted(BY_STATUS)))
        .group_by(minute, status)
    )
