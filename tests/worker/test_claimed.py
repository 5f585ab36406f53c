"""Claimed is not running: rows the pool takes ahead of free slots are `claimed` (shown as
queued), a task is `running` only once its function starts, and prefetch never makes a later,
more urgent task wait behind less urgent ones."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app import ACTIVE, AsyncTaskWorker, TaskExecutionError, TaskInfo, TaskRegistry, TaskStatus

from .conftest import Recorder, eventually, sql


async def warm_up(worker: AsyncTaskWorker) -> None:
    """Quick tasks first, so the pool sees short tasks and prefetches."""
    await worker.wait_for_tasks([await worker.add_task("add", i, i) for i in range(20)], 10)


async def wait_depth(worker: AsyncTaskWorker, status: str, at_most: int) -> dict[str, int]:
    async def depth() -> dict[str, int] | None:
        found = await worker.queue_depth()
        return found if found[status] <= at_most else None

    return await eventually(depth)


async def wait_claimed(worker: AsyncTaskWorker, at_least: int) -> None:
    async def claimed() -> bool:
        return (await worker.queue_depth())["claimed"] >= at_least

    await eventually(claimed)


async def test_prefetched_rows_are_claimed_and_only_started_ones_are_running(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    async with AsyncTaskWorker(database_url, max_workers=2, registry=registry) as worker:
        await warm_up(worker)
        gates = [await worker.add_task("gated", f"g{i}") for i in range(2)]
        queued = [await worker.add_task("record", i) for i in range(10)]
        depth = await wait_depth(worker, "pending", at_most=5)
        assert depth["running"] == 2
        assert depth["claimed"] >= 5
        claimed = await worker.get_all_tasks(status=TaskStatus.CLAIMED)
        assert {t.id for t in claimed} <= set(queued)
        assert all(t.attempts == 0 and t.started_at is None for t in claimed)
        assert TaskStatus.CLAIMED in ACTIVE
        recorder.gate.set()
        await worker.wait_for_tasks([*gates, *queued], timeout=10)
    assert sql(database_url, "select max(attempts), min(attempts) from tasks") == [(1, 1)]


async def test_a_later_more_urgent_task_starts_before_prefetched_ones(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    async with AsyncTaskWorker(database_url, max_workers=1, registry=registry) as worker:
        await warm_up(worker)
        gate = await worker.add_task("gated", priority=5)
        await asyncio.wait_for(recorder.started.wait(), 5)
        low = [await worker.add_task("record", f"low{i}", priority=5) for i in range(4)]
        await wait_claimed(worker, at_least=2)  # taken ahead (claims top up by halves)
        urgent = await worker.add_task("record", "urgent", priority=0)
        recorder.gate.set()
        await worker.wait_for_tasks([gate, *low, urgent], timeout=10)
    order = [label for kind, label in recorder.calls if kind == "record"]
    assert order[0] == "urgent", order


async def test_a_new_attempt_starts_with_progress_zero(database_url: str) -> None:
    second_started = asyncio.Event()
    finish = asyncio.Event()
    runs: list[int] = []

    async def half_then_fail(progress_callback: Any = None) -> str:
        runs.append(1)
        if len(runs) == 1:
            progress_callback(0.5)
            raise RuntimeError("first attempt fails halfway")
        second_started.set()
        await finish.wait()
        return "done"

    registry = TaskRegistry()
    registry.register("half", half_then_fail, max_attempts=2)
    async with AsyncTaskWorker(database_url, registry=registry, retry_backoff=0.01) as worker:
        task_id = await worker.add_task("half")
        await asyncio.wait_for(second_started.wait(), 5)
        info = await worker.get_task_info(task_id)
        assert info is not None
        assert (info.status, info.attempts, info.progress) == (TaskStatus.RUNNING, 2, 0.0)
        finish.set()
        assert await worker.wait_for_tasks([task_id], timeout=5) == ["done"]


async def test_a_task_type_missing_at_run_time_retries_later(
    database_url: str, registry: TaskRegistry
) -> None:
    """A deploy in progress: the row names a type this process does not have (yet)."""
    async with AsyncTaskWorker(database_url, registry=registry) as old:
        task_id = await old.add_task("record", "deployed", max_attempts=3, delay=3600)
    sql(database_url, "update tasks set run_at = 0")
    async with AsyncTaskWorker(database_url, registry=TaskRegistry(), retry_backoff=60) as new:

        async def failed_once() -> TaskInfo | None:
            info = await new.get_task_info(task_id)
            return info if info is not None and info.errors else None

        info = await eventually(failed_once)
    assert (info.status, info.attempts, info.progress) == (TaskStatus.SCHEDULED, 1, 0.0)
    [error] = info.errors
    assert error.error_type == "UnknownTaskTypeError"
    assert "'record'" in error.message and "not registered" in error.message
    sql(database_url, "update tasks set run_at = 0")
    async with AsyncTaskWorker(database_url, registry=registry) as fixed:
        assert await fixed.wait_for_tasks([task_id], timeout=5) == ["deployed"]


async def test_a_task_type_that_never_arrives_fails_after_its_attempts(
    database_url: str, registry: TaskRegistry
) -> None:
    async with AsyncTaskWorker(database_url, registry=registry) as old:
        task_id = await old.add_task("record", "never", max_attempts=2, delay=3600)
    sql(database_url, "update tasks set run_at = 0")
    async with AsyncTaskWorker(database_url, registry=TaskRegistry(), retry_backoff=0.01) as new:
        with pytest.raises(TaskExecutionError, match="not registered"):
            await new.wait_for_tasks([task_id], timeout=10)
        info = await new.get_task_info(task_id)
    assert info is not None and (info.status, info.attempts) == (TaskStatus.FAILED, 2)
    assert [e.error_type for e in info.errors] == ["UnknownTaskTypeError"] * 2
