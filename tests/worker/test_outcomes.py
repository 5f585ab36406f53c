"""Outcomes cannot be lost: an attempt's outcome is kept and retried until the database takes
it, one the database can never take fails the task with a clear error, a graceful stop waits
for outcomes still pending, and a submit the database refuses raises a typed error."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from app import TERMINAL, AsyncTaskWorker, TaskExecutionError, TaskRegistry, TaskStatus
from app.errors import DatabaseUnavailableError, TaskError, WriterFailedError
from app.events.log import EventType, TaskEvent
from tests.faults import (
    add_rejecting_trigger,
    disk_full,
    kill_writer_thread,
    read_only,
    write_lock_held,
)

from .conftest import Recorder, sql

BIG = 256 * 1024  # a result that needs new pages: a full disk refuses it


def worker_on(database_url: str, registry: TaskRegistry, **options: Any) -> AsyncTaskWorker:
    return AsyncTaskWorker(
        database_url, max_workers=2, registry=registry, busy_timeout=0.05, **options
    )


async def until(condition: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


def status_of(database_url: str, task_id: str) -> tuple[object, ...]:
    [row] = sql(
        database_url, f"select status, attempts, interruptions from tasks where id = '{task_id}'"
    )
    return row


async def test_an_outcome_waits_out_a_full_disk_and_is_then_stored(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    async with worker_on(database_url, registry, write_retry_seconds=0.2) as worker:
        task_id = await worker.add_task("gated_blob", BIG)
        await asyncio.wait_for(recorder.started.wait(), 5)
        with disk_full(database_url) as disk:
            recorder.gate.set()
            await asyncio.sleep(1.0)  # several write budgets go by: the outcome is kept
            assert status_of(database_url, task_id) == ("running", 1, 0)
            disk.free()
            assert await worker.wait_for_tasks([task_id], timeout=20) == [b"x" * BIG]
    assert status_of(database_url, task_id) == ("completed", 1, 0)


async def test_an_outcome_waits_out_a_held_write_lock(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    async with worker_on(database_url, registry, write_retry_seconds=0.2) as worker:
        task_id = await worker.add_task("gated", "held")
        await asyncio.wait_for(recorder.started.wait(), 5)
        with write_lock_held(database_url) as lock:
            recorder.gate.set()
            await until(lambda: recorder.calls == [("gated", "held")])
            await asyncio.sleep(1.0)  # SQLITE_BUSY past the busy timeout, many times over
            lock.release()
            assert await worker.wait_for_tasks([task_id], timeout=20) == ["held"]
    assert status_of(database_url, task_id) == ("completed", 1, 0)


async def test_a_graceful_stop_waits_for_a_pending_outcome(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    worker = worker_on(database_url, registry, write_retry_seconds=0.2)
    await worker.start()
    task_id = await worker.add_task("gated_blob", BIG)
    await asyncio.wait_for(recorder.started.wait(), 5)
    with disk_full(database_url) as disk:
        recorder.gate.set()
        await asyncio.sleep(0.3)
        stopping = asyncio.create_task(worker.stop(timeout=10))
        await asyncio.sleep(0.5)
        assert not stopping.done()  # waiting for the outcome, not abandoning it
        disk.free()
        await asyncio.wait_for(stopping, 20)
    assert status_of(database_url, task_id) == ("completed", 1, 0)


async def test_a_stop_that_outlasts_a_full_disk_puts_the_task_back(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    """The outcome never fits before the stop timeout: the task goes back to pending (its
    attempt given back as max_attempts + 1, no interruption counted) instead of staying
    `running`."""
    worker = worker_on(database_url, registry, write_retry_seconds=0.2)
    await worker.start()
    task_id = await worker.add_task("gated_blob", BIG)
    await asyncio.wait_for(recorder.started.wait(), 5)
    with disk_full(database_url):
        recorder.gate.set()
        await asyncio.sleep(0.3)
        await asyncio.wait_for(worker.stop(timeout=0.5), 10)
        assert status_of(database_url, task_id) == ("pending", 1, 0)
        assert sql(database_url, f"select max_attempts from tasks where id = '{task_id}'") == [(2,)]
    async with worker_on(database_url, registry) as again:
        assert await again.wait_for_tasks([task_id], timeout=10) == [b"x" * BIG]


async def test_an_outcome_the_database_can_never_store_fails_the_task(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    add_rejecting_trigger(
        database_url,
        "no_completions",
        "BEFORE UPDATE OF status",
        "tasks",
        "completions are refused here",
        when="NEW.status = 'completed'",
    )
    task_id = await worker.add_task("add", 1, 2)
    with pytest.raises(TaskExecutionError) as failed:
        await worker.wait_for_tasks([task_id], timeout=10)
    assert failed.value.error_type == "OutcomeNotStoredError"
    assert "completions are refused here" in str(failed.value)
    info = await worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.FAILED
    assert info.errors[-1].error_type == "OutcomeNotStoredError"


async def test_a_submit_the_database_refuses_raises_a_typed_error(
    database_url: str, registry: TaskRegistry
) -> None:
    async with worker_on(database_url, registry, write_retry_seconds=0.3) as worker:
        with write_lock_held(database_url) as lock:
            with pytest.raises(DatabaseUnavailableError) as refused:
                await asyncio.wait_for(worker.add_task("add", 1, 2, task_id="busy"), 10)
            assert refused.value.category == "unavailable"
            assert refused.value.reason == lock.reason
        with disk_full(database_url) as disk, pytest.raises(DatabaseUnavailableError) as full:
            await worker.add_task("record", "x" * BIG, task_id="full")
        assert full.value.reason == disk.reason
        assert await worker.get_task_info("busy") is None
        assert await worker.get_task_info("full") is None
        assert await worker.wait_for_tasks([await worker.add_task("add", 2, 2)], timeout=5) == [4]


async def test_a_submit_to_a_read_only_database_raises_a_typed_error(
    database_url: str, registry: TaskRegistry
) -> None:
    async with worker_on(database_url, registry, write_retry_seconds=0.3) as worker:
        with read_only(database_url) as fault:
            with pytest.raises(DatabaseUnavailableError) as refused:
                await asyncio.wait_for(worker.add_task("add", 1, 2, task_id="ro"), 10)
            fault.release()
            assert await worker.wait_for_tasks([await worker.add_task("add", 2, 2)], 5) == [4]
        assert (refused.value.category, refused.value.reason) == ("unavailable", fault.reason)
        assert await worker.get_task_info("ro") is None


async def test_a_refused_submit_publishes_no_event(
    database_url: str, registry: TaskRegistry
) -> None:
    published: list[TaskEvent] = []
    async with worker_on(database_url, registry, event_sink=published.extend) as worker:
        add_rejecting_trigger(
            database_url,
            "no_records",
            "BEFORE INSERT",
            "tasks",
            "not this one",
            when="NEW.task_type = 'record'",
        )
        with pytest.raises(Exception, match="not this one"):
            await worker.add_task("record", "refused", task_id="refused")
        ok = await worker.add_task("add", 1, 1)
        await worker.wait_for_tasks([ok], timeout=5)
    assert "refused" not in {e.task_id for e in published}
    assert (ok, EventType.QUEUED) in {(e.task_id, e.type) for e in published}


async def test_a_raising_event_sink_cannot_stop_the_worker(
    database_url: str, registry: TaskRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_subscriber(events: list[TaskEvent]) -> None:
        raise RuntimeError("subscriber broke")

    worker = worker_on(database_url, registry, event_sink=broken_subscriber)
    async with worker:
        first = await worker.add_task("add", 1, 2)
        assert await worker.wait_for_tasks([first], timeout=5) == [3]
        second = await worker.add_task("add", 2, 2)
        assert await worker.wait_for_tasks([second], timeout=5) == [4]
    assert "subscriber broke" in caplog.text
    # stop() released the database: another worker can own it now.
    async with worker_on(database_url, registry) as again:
        assert await again.wait_for_tasks([await again.add_task("add", 3, 3)], timeout=5) == [6]


async def test_a_dead_writer_fails_every_caller_and_stop_still_releases_the_database(
    database_url: str, registry: TaskRegistry
) -> None:
    worker = worker_on(database_url, registry)
    await worker.start()
    try:
        pending = await worker.add_task("record", "later", delay=60)
        waiter = await worker.get_task_future(pending)
        kill_writer_thread(worker.writer)
        with pytest.raises(WriterFailedError, match="database writer stopped"):
            await worker.add_task("add", 1, 2)
        assert worker.failure is not None and not worker.running
        with pytest.raises(WriterFailedError):  # at once, not at stop
            await asyncio.wait_for(waiter, 5)
    finally:
        await asyncio.wait_for(worker.stop(), 20)  # no error: the failure was reported
    async with worker_on(database_url, registry) as again:  # the lock was released
        assert await again.get_task_info(pending) is not None


async def test_a_result_the_cache_cannot_keep_never_leaves_its_task_running(
    worker: AsyncTaskWorker,
) -> None:
    """An infinite cache TTL cannot be stored (µs overflow). Refused up front or failed
    with a clear error, the task must never stay `running`."""
    try:
        task_id = await worker.add_task("add", 1, 2, use_cache=True, cache_ttl=float("inf"))
    except TaskError:
        return  # refused before anything was written: nothing can be stuck
    with contextlib.suppress(TaskExecutionError):
        await worker.wait_for_tasks([task_id], timeout=10)
    info = await worker.get_task_info(task_id)
    assert info is not None and info.status in TERMINAL, info
