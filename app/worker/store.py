"""Reading tasks back: TaskInfo snapshots, listings with keyset pagination, queue depth and
the next due time. Reads use the reader engine, never the writer; every row read renders,
whatever it holds (app/worker/rendering.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, Select, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clock import datetime_to_us
from app.db.tables import task_attempts, task_counts, tasks, tasks_indexed_by
from app.worker.rendering import TASK_INFO_COLUMNS, to_task_info
from app.worker.status import ACTIVE, TaskInfo, TaskStatus


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of a listing; pass `next_cursor` back to get the next (None at the end)."""

    tasks: list[TaskInfo]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class RowPage:
    """One page as stored rows (TASK_INFO_COLUMNS, in order), not yet rendered."""

    rows: list[Sequence[Any]]
    next_cursor: int | None


class TaskStore:
    """Read-side queries over the tasks table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, task_id: str) -> TaskInfo | None:
        if "\x00" in task_id:
            return None  # no stored id holds NUL (PostgreSQL cannot even compare one)
        async with self._engine.connect() as conn:
            row = (await conn.execute(task_row(task_id))).first()
            if row is None:
                return None
            errors = (await conn.execute(attempt_rows(task_id))).all()
        return to_task_info(row, errors)

    async def list(self, **filters: Any) -> TaskPage:
        """Newest first, filtered as `rows` is; `cursor` is the `next_cursor` of the previous
        page."""
        page = await self.rows(**filters)
        return TaskPage([to_task_info(row) for row in page.rows], page.next_cursor)

    async def rows(
        self,
        *,
        status: TaskStatus | Sequence[TaskStatus] | None = None,
        task_type: str | None = None,
        limit: int = 100,
        older_than: datetime | None = None,
        cursor: int | None = None,
    ) -> RowPage:
        """A page as stored rows of TASK_INFO_COLUMNS (for a caller that renders them
        itself, as the HTTP listing does), newest first."""
        statement = (
            select(tasks.c.seq, *TASK_INFO_COLUMNS).order_by(tasks.c.seq.desc()).limit(limit + 1)
        )
        if isinstance(status, str):
            statement = statement.where(tasks.c.status == TaskStatus(status).value)
        elif status is not None:
            statement = statement.where(tasks.c.status.in_([TaskStatus(s).value for s in status]))
        if task_type is not None:
            statement = statement.where(tasks.c.task_type == task_type)
        if older_than is not None:
            statement = statement.where(tasks.c.created_at < datetime_to_us(older_than))
        if cursor is not None:
            statement = statement.where(tasks.c.seq < cursor)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        page = rows[:limit]
        next_cursor = page[-1][0] if len(rows) > limit and page else None
        return RowPage([row[1:] for row in page], next_cursor)

    async def counts(self) -> dict[str, int]:
        """How many tasks are in each status (every status present, zero included): the
        counters triggers keep (app/db/tables.py), a read of a few rows however long the
        history is."""
        statement = select(task_counts.c.status, task_counts.c.total)
        async with self._engine.connect() as conn:
            found = {status: n for status, n in (await conn.execute(statement)).all()}
        return {s.value: int(found.get(s.value, 0)) for s in TaskStatus}

    async def held_by(self, owner: str) -> Sequence[tuple[str, TaskStatus, int]]:
        """(id, status, attempts) of the rows `owner` holds, claimed or running."""
        held = (TaskStatus.CLAIMED.value, TaskStatus.RUNNING.value)
        statement = select(tasks.c.id, tasks.c.status, tasks.c.attempts).where(
            tasks.c.status.in_(held), tasks.c.owner == owner
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [(row.id, TaskStatus(row.status), int(row.attempts)) for row in rows]

    async def active_counts(self) -> Sequence[tuple[str, str, int]]:
        """(status, task_type, count) of the active tasks (scheduled, pending, claimed,
        running): an index search over those rows only, never the finished history."""
        statement = (
            select(tasks.c.status, tasks.c.task_type, func.count())
            .where(tasks.c.status.in_(sorted(s.value for s in ACTIVE)))
            .group_by(tasks.c.status, tasks.c.task_type)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [(status, task_type, int(n)) for status, task_type, n in rows]

    async def oldest_due(self) -> int | None:
        """The earliest run_at among pending tasks (every one is due), µs; None when nothing
        is pending."""
        return await self._earliest_run_at("ix_tasks_pending_run_at", TaskStatus.PENDING)

    async def next_scheduled(self) -> int | None:
        """The earliest run_at among scheduled tasks (µs), or None when none is scheduled:
        when the stager must next look."""
        return await self._earliest_run_at("ix_tasks_scheduled", TaskStatus.SCHEDULED)

    async def _earliest_run_at(self, index: str, status: TaskStatus) -> int | None:
        statement = (
            select(func.min(literal_column("run_at", Integer)))
            .select_from(tasks_indexed_by(index))
            .where(text(f"status = '{status.value}'"))
        )
        async with self._engine.connect() as conn:
            value = (await conn.execute(statement)).scalar()
        return int(value) if value is not None else None


def task_row(task_id: str) -> Select[Any]:
    return select(*TASK_INFO_COLUMNS).where(tasks.c.id == task_id)


def attempt_rows(task_id: str) -> Select[Any]:
    return (
        select(task_attempts)
        .where(task_attempts.c.task_id == task_id)
        .order_by(task_attempts.c.attempt, task_attempts.c.id)
    )


def read_task(conn: Connection, task_id: str) -> TaskInfo | None:
    """A TaskInfo read on a synchronous connection (the writer thread's)."""
    row = conn.execute(task_row(task_id)).first()
    if row is None:
        return None
    return to_task_info(row, conn.execute(attempt_rows(task_id)).all())
