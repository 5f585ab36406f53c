"""Tasks for later are `scheduled`, apart from due ones: a claim reads only due rows however
many wait at a better priority, and each scheduled task becomes `pending` at its time and
runs in (priority, run_at, submission) order with the rest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from app import AsyncTaskWorker, TaskInfo, TaskRegistry
from app.clock import datetime_to_us
from app.events.log import EventType, TaskEvent

from .conftest import Recorder, eventually


async def info_of(worker: AsyncTaskWorker, task_id: str) -> TaskInfo:
    info = await worker.get_task_info(task_id)
    assert info is not None
    return info


async def status_is(worker: AsyncTaskWorker, task_id: str, status: str) -> bool:
    return (await info_of(worker, task_id)).status == status


def recorded(recorder: Recorder) -> list[Any]:
    return [label for kind, label in recorder.calls if kind == "record"]


async def test_a_task_for_later_is_scheduled_then_runs_at_its_time(
    worker: AsyncTaskWorker, recorder: Recorder
) -> None:
    task_id = await worker.add_task("record", "later", delay=0.3)
    assert (await info_of(worker, task_id)).status == "scheduled"
    assert (await worker.queue_depth())["scheduled"] == 1
    assert await worker.wait_for_tasks([task_id], timeout=10) == ["later"]
    done = await info_of(worker, task_id)
    assert done.started_at is not None and done.started_at >= done.run_at


async def test_due_tasks_run_past_many_scheduled_ones_that_then_run_in_order(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    """2,000 tasks for later at a better priority: a due task still runs at once (they stay
    scheduled), and at their time they run by run_at, then by submission."""
    async with AsyncTaskWorker(database_url, max_workers=1, registry=registry) as worker:
        filler = [worker.add_task("add", i, i, priority=-5, delay=3600) for i in range(2000)]
        await asyncio.gather(*filler)
        base = datetime.now(UTC) + timedelta(seconds=1)
        # Submitted in the reverse of their times; the last two share one time.
        times = {"s3": 0.3, "s2": 0.2, "s1": 0.1, "s0a": 0.0, "s0b": 0.0}
        later = [
            await worker.add_task("record", label, priority=-5, run_at=base + timedelta(seconds=s))
            for label, s in times.items()
        ]
        now = await worker.add_task("record", "now")
        assert await worker.wait_for_tasks([now], timeout=10) == ["now"]
        assert [(await info_of(worker, i)).status for i in later] == ["scheduled"] * 5
        await worker.wait_for_tasks(later, timeout=15)
        for task_id in later:
            info = await info_of(worker, task_id)
            assert info.started_at is not None and info.started_at >= info.run_at
        assert (await worker.queue_depth())["scheduled"] == 2000
    assert recorded(recorder) == ["now", "s0a", "s0b", "s1", "s2", "s3"]


async def test_a_task_that_becomes_due_is_claimed_by_priority_then_time(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    """While the only worker is busy, scheduled tasks come due (and become pending without
    it); once it is free, everything runs in (priority, run_at, submission) order."""
    async with AsyncTaskWorker(database_url, max_workers=1, registry=registry) as worker:
        gate = await worker.add_task("gated", "gate")
        await asyncio.wait_for(recorder.started.wait(), 10)
        start = datetime.now(UTC)
        a = await worker.add_task("record", "a")
        urgent = await worker.add_task(
            "record", "urgent", priority=-1, run_at=start + timedelta(seconds=0.3)
        )
        b = await worker.add_task("record", "b", run_at=start + timedelta(seconds=0.2))
        assert (await info_of(worker, urgent)).status == "scheduled"
        await eventually(lambda: status_is(worker, urgent, "pending"), timeout=10)
        assert (await info_of(worker, b)).status == "pending"
        c = await worker.add_task("record", "c")
        recorder.gate.set()
        await worker.wait_for_tasks([gate, a, urgent, b, c], timeout=10)
    assert recorded(recorder) == ["urgent", "a", "b", "c"]


async def test_a_scheduled_task_can_be_cancelled_and_retried(
    worker: AsyncTaskWorker, recorder: Recorder
) -> None:
    task_id = await worker.add_task("record", "x", delay=3600)
    assert (await info_of(worker, task_id)).status == "scheduled"
    assert await worker.cancel_task(task_id) is True
    assert (await info_of(worker, task_id)).status == "cancelled"
    assert (await worker.queue_depth())["scheduled"] == 0
    queued = await worker.retry_task(task_id)  # runs now: its time is spent
    assert queued.status == "pending"
    assert await worker.wait_for_tasks([task_id], timeout=10) == ["x"]


async def test_a_retry_waits_its_backoff_as_scheduled(
    database_url: str, registry: TaskRegistry
) -> None:
    events: list[TaskEvent] = []
    async with AsyncTaskWorker(
        database_url, registry=registry, retry_backoff=0.6, event_sink=events.extend
    ) as worker:
        task_id = await worker.add_task("flaky", "k", 1, max_attempts=2)

        async def retrying() -> list[TaskEvent]:
            return [e for e in events if e.type == EventType.RETRYING]

        (retry,) = await eventually(retrying, timeout=10)
        assert retry.payload["status"] == "scheduled"
        waiting = await info_of(worker, task_id)
        if waiting.attempts == 1:  # not yet started again
            assert waiting.status == "scheduled"
            assert abs(datetime_to_us(waiting.run_at) - retry.payload["retry_at"]) <= 1
        assert await worker.wait_for_tasks([task_id], timeout=10) == ["ok"]
        done = await info_of(worker, task_id)
    assert done.started_at is not None
    assert datetime_to_us(done.started_at) >= retry.payload["retry_at"] - 1


async def test_more_tasks_due_at_once_than_one_batch_all_become_pending(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    """1,200 tasks due at the same moment (more than the stager moves per transaction) all
    become pending while the only worker is busy, then all run."""
    async with AsyncTaskWorker(database_url, max_workers=1, registry=registry) as worker:
        gate = await worker.add_task("gated", "gate")
        await asyncio.wait_for(recorder.started.wait(), 10)
        at = datetime.now(UTC) + timedelta(seconds=1)
        ids = await asyncio.gather(*[worker.add_task("add", i, 1, run_at=at) for i in range(1200)])

        async def all_pending() -> bool:
            depth = await worker.queue_depth()
            return depth["pending"] == 1200 and depth["scheduled"] == 0

        await eventually(all_pending, timeout=15)
        recorder.gate.set()
        results = await worker.wait_for_tasks([gate, *ids], timeout=30)
    assert results == ["gate", *range(1, 1201)]
