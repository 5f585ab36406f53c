"""Progress events: at most the latest value per task every ~250 ms and always the final
one, and never anything after the task's terminal event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.events.filters import EventFilter
from app.events.log import TaskEvent
from app.events.manager import EventManager, Subscription
from app.worker.core import AsyncTaskWorker
from tests.events.conftest import Gates
from tests.waiting import until


@asynccontextmanager
async def collected(manager: EventManager, task_type: str) -> AsyncIterator[list[TaskEvent]]:
    """Every event of `task_type` tasks published while inside, in order."""
    got: list[TaskEvent] = []

    async def collect(sub: Subscription) -> None:
        async for event in sub:
            got.append(event)

    async with manager.subscribe(EventFilter(task_type=task_type), max_queue=1_000_000) as sub:
        reader = asyncio.create_task(collect(sub))
        yield got
        reader.cancel()


async def test_a_task_reporting_in_a_loop_publishes_a_few_events_a_second(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    async with collected(manager, "spin") as got:
        task_id = await worker.add_task("spin")
        await until(lambda: any(e.type == "task.progress" for e in got))
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(1.0)
        elapsed = asyncio.get_running_loop().time() - started
        assert await worker.cancel_task(task_id)
        await asyncio.sleep(0.6)  # a throttled value still due would be published by now
    progress = [e for e in got if e.type == "task.progress"]
    # one every 250 ms (plus the first at once), whatever the task's own rate
    assert 2 <= len(progress) <= elapsed / 0.25 + 3, len(progress)


async def test_nothing_follows_the_terminal_event_of_a_cancelled_task(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    async with collected(manager, "spin") as got:
        task_id = await worker.add_task("spin")
        await until(lambda: any(e.type == "task.progress" for e in got))
        assert await worker.cancel_task(task_id)
        await until(lambda: any(e.type == "task.cancelled" for e in got))
        await asyncio.sleep(0.6)  # longer than the progress interval: its timer has fired
    types = [e.type for e in got]
    assert types[-1] == "task.cancelled", types[-5:]
    assert all(e.payload.get("status") != "running" for e in got if e.type == "task.progress")


async def test_the_final_value_is_always_published_before_completion(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    async with collected(manager, "ramp") as got:
        task_id = await worker.add_task("ramp", 20_000)
        await worker.wait_for_tasks([task_id], timeout=10)
        await until(lambda: any(e.type == "task.completed" for e in got))
    progress = [e.payload["progress"] for e in got if e.type == "task.progress"]
    assert progress[-1] == 1.0
    assert len(progress) <= 5, len(progress)
    assert [e.type for e in got][-1] == "task.completed"
    info = await worker.get_task_info(task_id)
    assert info is not None and info.progress == 1.0


async def test_the_value_passed_on_after_an_interval_is_the_latest_one(
    worker: AsyncTaskWorker, manager: EventManager, gates: Gates
) -> None:
    """Values reported within one interval: the first goes out at once, then only the
    latest of the rest (never one in between), written to the row at the same moment."""
    async with collected(manager, "burst") as got:
        task_id = await worker.add_task("burst", "b", [0.1, 0.2, 0.3, 0.4])

        def published() -> list[float]:
            return [e.payload["progress"] for e in got if e.type == "task.progress"]

        await until(lambda: len(published()) >= 2)
        await asyncio.sleep(0.6)  # two more intervals: nothing else is due
        assert published() == [0.1, 0.4]
        info = await worker.get_task_info(task_id)
        assert info is not None and info.progress == 0.4
        gates.gate("b").set()
        await worker.wait_for_tasks([task_id], timeout=10)
        await until(lambda: any(e.type == "task.completed" for e in got))
    assert published() == [0.1, 0.4]  # the final value had gone out already
