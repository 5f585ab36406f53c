"""The durable event log: task events written in the same transaction as the state change
they describe (a transactional outbox), read back for replay after a reconnect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Select, func, insert, select, true
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.bulk import insert_rows, json_text
from app.db.tables import events

# Key in the writer connection's info dict: the highest event id it has handed out. The
# writer drops it whenever a transaction fails, so the next one reads the table again.
LAST_EVENT_ID = "litetask.last_event_id"


class EventType(StrEnum):
    QUEUED = "task.queued"
    STARTED = "task.started"
    PROGRESS = "task.progress"
    RETRYING = "task.retrying"
    COMPLETED = "task.completed"
    FAILED = "task.failed"
    CANCELLED = "task.cancelled"
    RECOVERED = "task.recovered"


# After one of these a task stays put unless someone retries it (which queues it again).
TERMINAL_EVENT_TYPES: frozenset[str] = frozenset(
    {EventType.COMPLETED, EventType.FAILED, EventType.CANCELLED}
)


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One thing that happened to a task. `id` is the log row id; None for ephemeral events
    (progress), which are published but never stored."""

    type: str
    task_id: str
    task_type: str
    created_at: int
    payload: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


EVENT_COLUMNS = ("id", "type", "task_id", "task_type", "created_at", "payload", "task_group")


def group_of_event(event: TaskEvent) -> str | None:
    """The event's group (its payload's "group" string), stored apart for indexed replays."""
    group = event.payload.get("group")
    return group if isinstance(group, str) else None


def append_events(conn: Connection, records: Sequence[TaskEvent]) -> list[TaskEvent]:
    """Insert `records` into the log and return them carrying their row ids, in order."""
    if not records:
        return []
    if conn.dialect.name == "sqlite":
        ids = _number_rows(conn, records)
    else:
        rows = [
            {
                "type": r.type,
                "task_id": r.task_id,
                "task_type": r.task_type,
                "created_at": r.created_at,
                "payload": r.payload,
                "task_group": group_of_event(r),
            }
            for r in records
        ]
        statement = insert(events).returning(events.c.id, sort_by_parameter_order=True)
        ids = list(conn.execute(statement, rows).scalars())
    return [
        TaskEvent(r.type, r.task_id, r.task_type, r.created_at, r.payload, row_id)
        for r, row_id in zip(records, ids, strict=True)
    ]


def _number_rows(conn: Connection, records: Sequence[TaskEvent]) -> list[int]:
    """SQLite: the writer holds the write lock (BEGIN IMMEDIATE), so it can number the rows
    itself and insert them in one executemany; RETURNING would cost a statement per row."""
    last = conn.info.get(LAST_EVENT_ID)
    if last is None:
        last = conn.execute(select(func.max(events.c.id))).scalar() or 0
    ids = list(range(last + 1, last + 1 + len(records)))
    conn.info[LAST_EVENT_ID] = ids[-1]
    rows = [
        (
            row_id,
            str(r.type),
            r.task_id,
            r.task_type,
            r.created_at,
            json_text(r.payload),
            group_of_event(r),
        )
        for row_id, r in zip(ids, records, strict=True)
    ]
    insert_rows(conn, events, EVENT_COLUMNS, rows)
    return ids


# -- reading the log back (replay after a reconnect) ----------------------------------------

REPLAY_PAGE = 500
_ROW_COLUMNS = (
    events.c.id,
    events.c.type,
    events.c.task_id,
    events.c.task_type,
    events.c.created_at,
    events.c.payload,
)


def _row_to_event(row: Any) -> TaskEvent:
    return TaskEvent(
        row.type, row.task_id, row.task_type, row.created_at, dict(row.payload or {}), row.id
    )


def _where(
    statement: Select[Any], task_id: str | None, task_type: str | None, group: str | None
) -> Select[Any]:
    """Filters that an index serves: (task_id, id), (task_group, id) or (task_type, id)."""
    if task_id is not None:
        statement = statement.where(events.c.task_id == task_id)
    if task_type is not None:
        statement = statement.where(events.c.task_type == task_type)
    if group is not None:
        statement = statement.where(events.c.task_group == group)
    return statement


@dataclass(frozen=True, slots=True)
class LogPage:
    """Up to a page of matching events after an id, and the log's bounds as the same read
    saw them (None when the log is empty): a replay can tell whether rows it needed were
    pruned before it read them."""

    events: list[TaskEvent]
    oldest: int | None
    newest: int | None


async def read_page(
    engine: AsyncEngine,
    after_id: int,
    *,
    task_id: str | None = None,
    task_type: str | None = None,
    group: str | None = None,
    limit: int = REPLAY_PAGE,
) -> LogPage:
    """Up to `limit` logged events with id > `after_id`, oldest first, that match every
    filter given (`group` is the payload's "group" value), and the log's bounds, read in one
    statement (one snapshot): the bounds row is outer-joined to the page, so an empty page
    still reports them."""
    page = (
        _where(select(*_ROW_COLUMNS).where(events.c.id > after_id), task_id, task_type, group)
        .order_by(events.c.id)
        .limit(limit)
        .subquery("page")
    )
    bounds = select(
        select(func.min(events.c.id)).scalar_subquery().label("oldest"),
        select(func.max(events.c.id)).scalar_subquery().label("newest"),
    ).subquery("bounds")
    statement = select(bounds.c.oldest, bounds.c.newest, page).select_from(
        bounds.outerjoin(page, true())
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    # Sorted here: an ORDER BY on the join would sort the page again in a temporary b-tree.
    found = sorted((_row_to_event(row) for row in rows if row.id is not None), key=_event_id)
    return LogPage(found, rows[0].oldest, rows[0].newest)


def _event_id(event: TaskEvent) -> int:
    return event.id or 0


async def oldest_event_id(engine: AsyncEngine) -> int | None:
    """The smallest id still in the log (None when it is empty)."""
    async with engine.connect() as conn:
        value = (await conn.execute(select(func.min(events.c.id)))).scalar()
    return int(value) if value is not None else None


async def newest_event_id(engine: AsyncEngine, task_id: str | None = None) -> int | None:
    """The largest id in the log, or of one task's events (None when there is none)."""
    statement = select(func.max(events.c.id))
    if task_id is not None:
        statement = statement.where(events.c.task_id == task_id)
    async with engine.connect() as conn:
        value = (await conn.execute(statement)).scalar()
    return int(value) if value is not None else None


async def log_bounds(engine: AsyncEngine) -> tuple[int | None, int | None]:
    """(oldest id, newest id) of the log, read together."""
    statement = select(func.min(events.c.id), func.max(events.c.id))
    async with engine.connect() as conn:
        oldest, newest = (await conn.execute(statement)).one()
    return oldest, newest
