"""Reading the event log back and pruning it (through the group-commit writer)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from app.clock import now_us
from app.db.writer import WriteOp
from app.events.log import (
    EventType,
    TaskEvent,
    log_bounds,
    newest_event_id,
    oldest_event_id,
    read_page,
)
from app.events.manager import EventManager
from app.events.retention import PruneEvents, Retention, prune_events
from app.worker.core import AsyncTaskWorker


class LogEvents(WriteOp[None]):
    """Writes nothing but its events: the writer logs them in the same transaction."""

    def __init__(self, records: list[TaskEvent]) -> None:
        super().__init__()
        self.records = records

    def apply(self, conn: Connection) -> None:
        self.events = list(self.records)


def rec(task_id: str, task_type: str = "echo", age_s: float = 0, **payload: Any) -> TaskEvent:
    created = now_us() - int(age_s * 1_000_000)
    return TaskEvent(EventType.QUEUED, task_id, task_type, created, payload)


async def log(worker: AsyncTaskWorker, *records: TaskEvent) -> None:
    await worker.writer.run(LogEvents(list(records)))


async def test_read_events_after_an_id_with_filters(worker: AsyncTaskWorker) -> None:
    await log(
        worker,
        rec("a", group="g1"),
        rec("b", "mail", group="g1"),
        rec("a", "echo"),
        rec("c", "mail", group="g2"),
    )
    reader = worker.engines.reader
    assert [e.id for e in (await read_page(reader, 0)).events] == [1, 2, 3, 4]
    assert [e.id for e in (await read_page(reader, 2)).events] == [3, 4]
    assert [e.id for e in (await read_page(reader, 0, task_id="a")).events] == [1, 3]
    assert [e.id for e in (await read_page(reader, 0, task_type="mail")).events] == [2, 4]
    assert [e.id for e in (await read_page(reader, 0, group="g1")).events] == [1, 2]
    assert [e.id for e in (await read_page(reader, 0, group="g1", task_type="mail")).events] == [2]
    assert [e.id for e in (await read_page(reader, 0, limit=3)).events] == [1, 2, 3]
    first = ((await read_page(reader, 0, limit=1)).events)[0]
    assert first.payload == {"group": "g1"} and first.task_id == "a"


async def test_bounds_of_an_empty_and_a_filled_log(worker: AsyncTaskWorker) -> None:
    reader = worker.engines.reader
    assert await log_bounds(reader) == (None, None)
    assert await oldest_event_id(reader) is None
    await log(worker, rec("a"), rec("b"), rec("a"))
    assert await log_bounds(reader) == (1, 3)
    assert await newest_event_id(reader, "b") == 2
    assert await newest_event_id(reader, "zzz") is None


async def test_prune_by_count_and_age_keeps_the_newest(worker: AsyncTaskWorker) -> None:
    reader = worker.engines.reader
    await log(worker, *(rec(f"t{i}", age_s=3600) for i in range(10)))
    await log(worker, *(rec(f"n{i}") for i in range(10)))
    deleted = await prune_events(worker.writer, Retention(max_age=60, max_count=None))
    assert deleted == 10 and await log_bounds(reader) == (11, 20)
    deleted = await prune_events(worker.writer, Retention(max_age=None, max_count=4))
    assert deleted == 6 and await log_bounds(reader) == (17, 20)
    assert await prune_events(worker.writer, Retention(max_age=None, max_count=4)) == 0


async def test_prune_everything_still_keeps_the_newest_row(worker: AsyncTaskWorker) -> None:
    await log(worker, *(rec(f"t{i}", age_s=3600) for i in range(5)))
    assert await prune_events(worker.writer, Retention(max_age=0, max_count=0)) == 4
    assert await log_bounds(worker.engines.reader) == (5, 5)


async def test_prune_goes_in_batches(worker: AsyncTaskWorker) -> None:
    await log(worker, *(rec(f"t{i}") for i in range(25)))
    assert await worker.writer.run(PruneEvents(Retention(None, 0, batch=10))) == 10
    assert await prune_events(worker.writer, Retention(None, 0, batch=10)) == 14
    assert await log_bounds(worker.engines.reader) == (25, 25)


async def test_ids_are_not_reused_after_a_prune_and_a_restart(
    database_url: str, manager: EventManager
) -> None:
    async with AsyncTaskWorker(database_url) as first:
        await log(first, *(rec(f"t{i}") for i in range(5)))
        await prune_events(first.writer, Retention(max_age=None, max_count=0))
    async with AsyncTaskWorker(database_url) as second:
        await log(second, rec("after"))
        assert await log_bounds(second.engines.reader) == (5, 6)
