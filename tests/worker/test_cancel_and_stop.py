"""Cancellation, graceful stop, recovery of interrupted rows, and an idle pool's silence."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event

from app import (
    AsyncTaskWorker,
    TaskCancellationError,
    TaskNotFoundError,
    TaskRegistry,
    TaskStateError,
    TaskStatus,
)
from tests.faults import write_lock_held

from .conftest import Recorder, sql


async def test_cancel_a_pending_task(worker: AsyncTaskWorker, recorder: Recorder) -> None:
    task_id = await worker.add_task("record", "never", delay=60)
    assert await worker.cancel_task(task_id) is True
    info = await worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.CANCELLED
    with pytest.raises(TaskCancellationError):
        await worker.wait_for_tasks([task_id], timeout=1)
    assert recorder.calls == []


async def test_cancel_a_running_task_is_not_a_failure(
    worker: AsyncTaskWorker, recorder: Recorder
) -> None:
    task_id = await worker.add_task("gated", "running", max_attempts=3)
    await asyncio.wait_for(recorder.started.wait(), 5)
    assert await worker.cancel_task(task_id) is True
    for _ in range(50):
        if recorder.cancelled:
            break
        await asyncio.sleep(0.01)
    assert recorder.cancelled == ["running"]
    await asyncio.sleep(0.1)  # any late write would land now
    info = await worker.get_task_info(task_id)
    assert info is not None
    assert info.status is TaskStatus.CANCELLED
    assert (info.attempts, info.errors) == (1, [])


async def test_cancel_a_finished_or_unknown_task(worker: AsyncTaskWorker) -> None:
    task_id = await worker.add_task("add", 1, 2)
    await worker.wait_for_tasks([task_id], timeout=5)
    assert await worker.cancel_task(task_id) is False
    with pytest.raises(TaskNotFoundError):
        await worker.cancel_task("missing")


async def test_retry_a_failed_task(worker: AsyncTaskWorker) -> None:
    task_id = await worker.add_task("flaky", "r", 1, max_attempts=1)
    with pytest.raises(Exception, match="flaky failure"):
        await worker.wait_for_tasks([task_id], timeout=5)
    await worker.retry_task(task_id)
    assert await worker.wait_for_tasks([task_id], timeout=5) == ["ok"]
    with pytest.raises(TaskStateError):
        await worker.retry_task(task_id)


async def test_graceful_stop_puts_cut_tasks_back_and_they_run_after_restart(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    worker = AsyncTaskWorker(database_url, max_workers=2, registry=registry)
    await worker.start()
    quick = await worker.add_task("sleepy", 0.05)
    cut = await worker.add_task("gated", "cut")
    await asyncio.wait_for(recorder.started.wait(), 5)
    await worker.stop(timeout=0.3)
    assert recorder.cancelled == ["cut"]
    # The cut start still counts (attempts only grow); the attempt is given back instead.
    query = f"select status, attempts, max_attempts from tasks where id = '{cut}'"
    assert sql(database_url, query) == [("pending", 1, 2)]
    assert sql(database_url, f"select status from tasks where id = '{quick}'") == [("completed",)]
    recorder.gate.set()
    async with AsyncTaskWorker(database_url, registry=registry) as restarted:
        assert await restarted.wait_for_tasks([cut], timeout=5) == ["cut"]


async def test_rows_left_running_by_a_dead_process_are_recovered_at_start(
    database_url: str, registry: TaskRegistry
) -> None:
    async with AsyncTaskWorker(database_url, registry=registry) as worker:
        orphan = await worker.add_task("record", "orphan", delay=3600)
        doomed = await worker.add_task("record", "doomed", delay=3600)
    # What a process killed mid-task leaves behind: rows `running`, owned by its boot.
    sql(
        database_url,
        f"update tasks set status = 'running', owner = 'dead-boot', attempts = 1 "
        f"where id = '{orphan}'",
    )
    sql(
        database_url,
        f"update tasks set status = 'running', owner = 'dead-boot', interruptions = 3 "
        f"where id = '{doomed}'",
    )
    sql(database_url, "update tasks set run_at = 0")
    async with AsyncTaskWorker(database_url, registry=registry, max_interruptions=3) as worker:
        assert await worker.wait_for_tasks([orphan], timeout=5) == ["orphan"]
        info = await worker.get_task_info(orphan)
        assert info is not None and info.interruptions == 1
        failed = await worker.get_task_info(doomed)
        assert failed is not None
        assert failed.status is TaskStatus.FAILED
        assert failed.error is not None and "interrupted more than 3 times" in failed.error


async def test_an_idle_worker_makes_no_queries(worker: AsyncTaskWorker) -> None:
    """Not even with a task for later: the stager sleeps until its time."""
    task_id = await worker.add_task("add", 1, 1)
    await worker.add_task("record", "much later", delay=3600)
    await worker.wait_for_tasks([task_id], timeout=5)
    await asyncio.sleep(0.1)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engines = worker.engines
    for engine in (engines.writer, engines.reader.sync_engine):
        event.listen(engine, "before_cursor_execute", count)
    await asyncio.sleep(1.0)
    for engine in (engines.writer, engines.reader.sync_engine):
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []


async def test_a_delayed_task_wakes_the_idle_pool_without_polling(
    worker: AsyncTaskWorker,
) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    task_id = await worker.add_task("record", "soon", delay=0.5)
    await asyncio.sleep(0.05)
    event.listen(worker.engines.reader.sync_engine, "before_cursor_execute", count)
    event.listen(worker.engines.writer, "before_cursor_execute", count)
    assert await worker.wait_for_tasks([task_id], timeout=5) == ["soon"]
    # Waking at the due time: the stager's move to pending and its next-time read, a claim
    # (BEGIN/UPDATE/events) and a few reads, not a poll loop.
    assert len(statements) < 30, statements


async def test_another_connection_holding_the_write_lock_only_delays_a_submit(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    """busy_timeout (lock_timeout on PostgreSQL) makes the writer wait for a lock held
    elsewhere (a backup, a sqlite3 shell, a maintenance script) instead of surfacing
    "database is locked" to the caller."""
    with write_lock_held(database_url) as lock:
        submit = asyncio.create_task(worker.add_task("add", 1, 2))
        await asyncio.sleep(0.5)
        assert not submit.done()
        lock.release()
        task_id = await asyncio.wait_for(submit, 5)
    assert await worker.wait_for_tasks([task_id], timeout=5) == [3]
