"""The attempt fence: attempts only grow, so an attempt that outlives its cancellation can
never write over a newer attempt, and live attempts are counted per (task, attempt)."""

from __future__ import annotations

import asyncio
import contextlib

from app import AsyncTaskWorker, TaskRegistry, TaskStatus

from .conftest import Recorder, eventually


class Stubborn:
    """A task type whose first run ignores cancellation until `release_old` is set and then
    returns "stale"; later runs wait for `release_new` and return "fresh". `executing` and
    `peak` count task functions running at once (every type of the registry below)."""

    def __init__(self) -> None:
        self.release_old = asyncio.Event()
        self.release_new = asyncio.Event()
        self.old_returned = asyncio.Event()
        self.runs = 0
        self.executing = 0
        self.peak = 0

    def _enter(self) -> None:
        self.executing += 1
        self.peak = max(self.peak, self.executing)

    async def stubborn(self) -> str:
        self._enter()
        self.runs += 1
        try:
            if self.runs == 1:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()  # until cancelled, which it then ignores
                await self.release_old.wait()
                self.old_returned.set()
                return "stale"
            await self.release_new.wait()
            return "fresh"
        finally:
            self.executing -= 1

    async def tracked(self, seconds: float) -> float:
        self._enter()
        try:
            await asyncio.sleep(seconds)
            return seconds
        finally:
            self.executing -= 1


def stubborn_registry(tasks: Stubborn) -> TaskRegistry:
    registry = TaskRegistry()
    registry.register("stubborn", tasks.stubborn)
    registry.register("tracked", tasks.tracked)
    return registry


async def status_of(worker: AsyncTaskWorker, task_id: str) -> TaskStatus:
    info = await worker.get_task_info(task_id)
    assert info is not None
    return info.status


async def cancel_then_retry(worker: AsyncTaskWorker, tasks: Stubborn, task_id: str) -> None:
    """Cancel the first attempt (it keeps running) and queue the task again until its second
    attempt is taken: it waits, without running, for the first to return (one attempt of a
    task at a time in a process)."""

    async def runs(n: int) -> bool:
        return tasks.runs >= n

    async def second_attempt_taken() -> bool:
        info = await worker.get_task_info(task_id)
        return info is not None and (info.status, info.attempts) == (TaskStatus.RUNNING, 2)

    await eventually(lambda: runs(1))
    assert await worker.cancel_task(task_id)
    await worker.retry_task(task_id)
    await eventually(second_attempt_taken)
    await asyncio.sleep(0.2)
    assert tasks.runs == 1, "the second attempt ran beside the first"


async def test_a_cancelled_attempt_that_finishes_late_cannot_complete_the_retried_one(
    database_url: str,
) -> None:
    tasks = Stubborn()
    registry = stubborn_registry(tasks)
    async with AsyncTaskWorker(database_url, max_workers=2, registry=registry) as worker:
        task_id = await worker.add_task("stubborn")
        await cancel_then_retry(worker, tasks, task_id)
        tasks.release_old.set()
        await asyncio.wait_for(tasks.old_returned.wait(), 5)
        await eventually(lambda: runs_at_least(tasks, 2))

        async def left_running() -> bool:
            return await status_of(worker, task_id) is not TaskStatus.RUNNING

        # Today's bug would complete the row with "stale" within milliseconds; give it time.
        with contextlib.suppress(TimeoutError):
            await eventually(left_running, timeout=1.0)
        assert await status_of(worker, task_id) is TaskStatus.RUNNING
        tasks.release_new.set()
        assert await worker.wait_for_tasks([task_id], timeout=5) == ["fresh"]
        info = await worker.get_task_info(task_id)
    assert info is not None and info.attempts == 2


async def runs_at_least(tasks: Stubborn, n: int) -> bool:
    return tasks.runs >= n


async def test_never_more_than_max_workers_functions_run_at_once(database_url: str) -> None:
    tasks = Stubborn()
    registry = stubborn_registry(tasks)
    async with AsyncTaskWorker(database_url, max_workers=2, registry=registry) as worker:
        task_id = await worker.add_task("stubborn")
        await cancel_then_retry(worker, tasks, task_id)
        others = [await worker.add_task("tracked", 0.2) for _ in range(6)]
        tasks.release_old.set()
        await asyncio.wait_for(tasks.old_returned.wait(), 5)
        await worker.wait_for_tasks(others[:2], timeout=10)
        tasks.release_new.set()
        await worker.wait_for_tasks([task_id, *others], timeout=10)
    assert tasks.peak == 2


async def test_retry_keeps_the_attempt_count_and_raises_max_attempts(
    worker: AsyncTaskWorker, recorder: Recorder
) -> None:
    task_id = await worker.add_task("flaky", "monotonic", 1, max_attempts=1)
    with contextlib.suppress(Exception):
        await worker.wait_for_tasks([task_id], timeout=5)
    failed = await worker.get_task_info(task_id)
    assert failed is not None and (failed.status, failed.attempts) == (TaskStatus.FAILED, 1)
    queued = await worker.retry_task(task_id)
    assert (queued.status, queued.attempts, queued.max_attempts) == (TaskStatus.PENDING, 1, 2)
    assert await worker.wait_for_tasks([task_id], timeout=5) == ["ok"]
    done = await worker.get_task_info(task_id)
    assert done is not None and (done.attempts, done.max_attempts) == (2, 2)
    assert [e.attempt for e in done.errors] == [1]
