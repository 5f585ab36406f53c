"""Resuming: replay from the log, then live, with neither gap nor duplicate, also for events
committed while the stream switches over; ids the log cannot resume get a reset."""

from __future__ import annotations

import asyncio

from app.events.epoch import LogPosition
from app.events.filters import EventFilter
from app.events.log import REPLAY_PAGE, TaskEvent
from app.events.manager import EventManager
from app.events.retention import Retention, prune_events
from app.events.stream import Resume, plan_resume, replay_then_live, until_terminal
from app.worker.core import AsyncTaskWorker
from tests.events.test_log import log, rec


async def produce(worker: AsyncTaskWorker, count: int, group: str | None = None) -> None:
    """Commit `count` events, a few per transaction, yielding in between."""
    for i in range(0, count, 3):
        records = [rec(f"p{i + k}", group=group or f"g{(i + k) % 2}") for k in range(3)]
        await log(worker, *records)
        await asyncio.sleep(0)


async def collect_until(
    worker: AsyncTaskWorker, manager: EventManager, event_filter: EventFilter, after: int, last: int
) -> list[int]:
    ids: list[int] = []
    async with manager.subscribe(event_filter, max_queue=100_000) as sub:
        async for batch in replay_then_live(worker.engines.reader, sub, after):
            ids.extend(e.id for e in batch if e.id is not None)
            if ids and ids[-1] >= last:
                return ids
    return ids


async def test_no_gap_no_duplicate_while_events_commit_during_the_switch(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    await produce(worker, 2400)  # several replay pages
    producer = asyncio.create_task(produce(worker, 600))
    ids = await asyncio.wait_for(collect_until(worker, manager, EventFilter(), 100, 3000), 30)
    await producer
    assert ids == list(range(101, 3001))


async def test_filtered_replay_then_live_is_exact(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    await produce(worker, 1200)
    producer = asyncio.create_task(produce(worker, 300))
    ids = await asyncio.wait_for(
        collect_until(worker, manager, EventFilter(group="g1"), 0, 1500), 30
    )
    await producer
    assert ids == list(range(2, 1501, 2))


async def test_without_a_last_id_only_live_events_come(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    await produce(worker, 9)
    async with manager.subscribe() as sub:
        stream = replay_then_live(worker.engines.reader, sub, None)
        await log(worker, rec("live"))
        batch = await asyncio.wait_for(anext(stream), 5)
        await stream.aclose()
    assert [e.id for e in batch] == [10]


async def test_plan_resume_flags_other_epochs_pruned_and_unknown_ids(
    worker: AsyncTaskWorker,
) -> None:
    reader, epoch = worker.engines.reader, worker.log_epoch

    def at(event_id: int, of: str | None = epoch) -> LogPosition:
        return LogPosition(of, event_id)

    assert (await plan_resume(reader, at(0), epoch)).reset is None  # empty log, from the start
    assert (await plan_resume(reader, at(5), epoch)).reset == "unknown"
    await log(worker, *(rec(f"t{i}") for i in range(10)))
    await prune_events(worker.writer, Retention(max_age=None, max_count=5))  # keeps 6..10
    assert (await plan_resume(reader, at(5), epoch)) == Resume(5)  # next wanted id 6 is there
    assert (await plan_resume(reader, at(4), epoch)) == Resume(10, "expired")
    assert (await plan_resume(reader, at(11), epoch)) == Resume(10, "unknown")
    assert (await plan_resume(reader, at(7, "0" * 12), epoch)) == Resume(10, "epoch")
    assert (await plan_resume(reader, at(7, None), epoch)) == Resume(10, "epoch")
    assert (await plan_resume(reader, at(0, None), epoch)) == Resume(10, "expired")


async def test_until_terminal_stops_after_the_terminal_event(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    task_id = await worker.add_task("echo", 1)
    async with manager.subscribe(EventFilter(task_id=task_id)) as sub:
        batches = until_terminal(replay_then_live(worker.engines.reader, sub, 0))
        types = [e.type async for batch in batches for e in batch]
    assert types == ["task.queued", "task.started", "task.completed"]


async def test_a_prune_during_a_long_replay_sends_reset_expired_not_a_silent_gap(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    await log(worker, *(rec(f"t{i}") for i in range(3 * REPLAY_PAGE)))
    newest = 3 * REPLAY_PAGE
    got: list[object] = []
    async with manager.subscribe(max_queue=100_000) as sub:
        stream = replay_then_live(worker.engines.reader, sub, 0)
        got.extend(await anext(stream))  # the first page is on its way to the client...
        # ... when retention deletes the rows the next pages would have read
        await prune_events(worker.writer, Retention(max_age=None, max_count=REPLAY_PAGE))
        async for item in stream:
            got.extend(item if isinstance(item, list) else [item])
            if not isinstance(item, list) or got[-1].id == newest:  # type: ignore[attr-defined]
                break
        await log(worker, rec("live"))
        got.extend(await asyncio.wait_for(anext(stream), 5))  # type: ignore[arg-type]
    ids = [x.id for x in got if isinstance(x, TaskEvent)]
    marks = [x for x in got if not isinstance(x, TaskEvent)]
    assert ids == [*range(1, REPLAY_PAGE + 1), newest + 1]
    assert [(getattr(m, "reason", None), getattr(m, "cursor", None)) for m in marks] == [
        ("expired", newest)
    ]
