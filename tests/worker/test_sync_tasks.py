"""Plain `def` task functions: run in the worker's bounded thread pool, never on the event
loop; progress from the thread; a timeout ends the attempt at once (the thread is told
through its context)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app import AsyncTaskWorker, TaskContext, TaskRegistry, TaskStatus

from .conftest import eventually

LONG = 20.0  # how long a blocked thread waits at most (a test never waits for it)


class Threads:
    """What the `def` tasks saw, and the events the test releases them with."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.names: list[str] = []
        self.saw_cancelled: list[bool] = []

    def block(self, value: int, progress_callback: Any = None) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.names.append(threading.current_thread().name)
        try:
            if progress_callback is not None:
                progress_callback(0.5)
            self.release.wait(LONG)
            return value
        finally:
            with self.lock:
                self.running -= 1

    def stubborn(self, context: TaskContext) -> str:
        """Ignores everything but its release, then says whether it was told to stop."""
        self.release.wait(LONG)
        self.saw_cancelled.append(context.cancelled)
        return "late"


@pytest.fixture
def threads() -> Threads:
    return Threads()


@pytest.fixture
def sync_registry(threads: Threads) -> TaskRegistry:
    registry = TaskRegistry()
    registry.register("block", threads.block)
    registry.register("stubborn", threads.stubborn, timeout=0.3)

    async def quick(x: int) -> int:
        return x + 1

    registry.register("quick", quick)
    return registry


@pytest.fixture
async def sync_worker(
    database_url: str, sync_registry: TaskRegistry, threads: Threads
) -> AsyncIterator[AsyncTaskWorker]:
    async with AsyncTaskWorker(
        database_url, max_workers=4, registry=sync_registry, thread_workers=2
    ) as started:
        yield started
        threads.release.set()


async def test_a_def_task_runs_beside_an_async_one_without_blocking_it(
    sync_worker: AsyncTaskWorker, threads: Threads
) -> None:
    blocked = await sync_worker.add_task("block", 7)
    await eventually(_running(threads))
    quick = await sync_worker.add_task("quick", 1)
    assert await sync_worker.wait_for_tasks([quick], timeout=10) == [2]  # while it blocks
    info = await sync_worker.get_task_info(blocked)
    assert info is not None and info.status is TaskStatus.RUNNING
    threads.release.set()
    assert await sync_worker.wait_for_tasks([blocked], timeout=10) == [7]
    assert threads.names[0].startswith("litetask-task")
    assert threads.names[0] != threading.main_thread().name


async def test_progress_reported_from_the_thread_is_kept(
    sync_worker: AsyncTaskWorker, threads: Threads
) -> None:
    task_id = await sync_worker.add_task("block", 1)

    async def halfway() -> bool:
        info = await sync_worker.get_task_info(task_id)
        return info is not None and info.progress == 0.5

    await eventually(halfway, timeout=10)
    threads.release.set()
    await sync_worker.wait_for_tasks([task_id], timeout=10)


async def test_at_most_thread_workers_functions_run_at_once(
    sync_worker: AsyncTaskWorker, threads: Threads
) -> None:
    ids = [await sync_worker.add_task("block", i) for i in range(4)]
    await eventually(_running(threads, 2))
    await asyncio.sleep(0.2)  # time for a third to start, were the bound not kept
    assert threads.most == 2
    threads.release.set()
    assert await sync_worker.wait_for_tasks(ids, timeout=10) == [0, 1, 2, 3]
    assert threads.most == 2


async def test_a_timeout_fails_the_attempt_at_once_and_tells_the_thread(
    sync_worker: AsyncTaskWorker, threads: Threads
) -> None:
    started = time.monotonic()
    task_id = await sync_worker.add_task("stubborn")
    future = await sync_worker.get_task_future(task_id)
    await asyncio.wait({future}, timeout=10)
    assert time.monotonic() - started < LONG / 2  # not when the thread returned
    info = await sync_worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.FAILED
    assert [e.error_type for e in info.errors] == ["TaskTimeoutError"]
    threads.release.set()
    await eventually(_saw(threads), timeout=10)
    assert threads.saw_cancelled == [True]


def _running(threads: Threads, count: int = 1) -> Any:
    async def check() -> bool:
        return threads.running >= count

    return check


def _saw(threads: Threads) -> Any:
    async def check() -> bool:
        return bool(threads.saw_cancelled)

    return check
