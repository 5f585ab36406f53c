"""Never stuck while the process lives, and one owner per database: the reconciler requeues
rows this boot holds with no live attempt, every start() is a new boot, and an owner row with
a heartbeat keeps a second worker out even when the lock file is gone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from app import AsyncTaskWorker, DatabaseInUseError, TaskRegistry, TaskStatus
from app.events.log import EventType, TaskEvent

from .conftest import Recorder, eventually, sql


def lock_file(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite+aiosqlite:///") + ".lock")


async def test_the_reconciler_requeues_rows_this_boot_holds_without_a_live_attempt(
    database_url: str, registry: TaskRegistry
) -> None:
    async with AsyncTaskWorker(database_url, registry=registry, reconcile_interval=0.1) as worker:
        lost = await worker.add_task("record", "lost", delay=3600)
        unstarted = await worker.add_task("record", "unstarted", delay=3600)
        # Fault injection, as another program (or a lost outcome write) would leave them:
        # rows of this boot, one `running` and one `claimed`, that no attempt here owns.
        sql(
            database_url,
            f"update tasks set status = 'running', owner = '{worker.boot_id}', attempts = 1, "
            f"run_at = 0 where id = '{lost}'",
        )
        sql(
            database_url,
            f"update tasks set status = 'claimed', owner = '{worker.boot_id}', run_at = 0 "
            f"where id = '{unstarted}'",
        )
        assert await worker.wait_for_tasks([lost, unstarted], timeout=10) == ["lost", "unstarted"]
        again = await worker.get_task_info(unstarted)
    assert again is not None and again.attempts == 1 and again.interruptions == 0


async def test_stop_and_start_of_one_worker_recovers_like_a_restart(
    database_url: str, registry: TaskRegistry
) -> None:
    worker = AsyncTaskWorker(database_url, registry=registry)
    await worker.start()
    try:
        task_id = await worker.add_task("record", "left", delay=3600)
        # Fault injection: a row left `running` by this boot with no attempt behind it.
        sql(
            database_url,
            f"update tasks set status = 'running', owner = '{worker.boot_id}', attempts = 1, "
            f"run_at = 0 where id = '{task_id}'",
        )
        await worker.stop()
        await worker.start()
        assert await worker.wait_for_tasks([task_id], timeout=5) == ["left"]
        info = await worker.get_task_info(task_id)
        assert info is not None and (info.attempts, info.interruptions) == (2, 1)
    finally:
        await worker.stop()


async def test_a_second_worker_refuses_even_without_the_lock_file(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    async with AsyncTaskWorker(database_url, registry=registry) as first:
        task_id = await first.add_task("gated", "once")
        await asyncio.wait_for(recorder.started.wait(), 5)
        lock_file(database_url).unlink()
        second = AsyncTaskWorker(database_url, registry=registry)
        with pytest.raises(DatabaseInUseError, match="another litetask process"):
            await second.start()
        assert not second.running
        recorder.gate.set()
        assert await first.wait_for_tasks([task_id], timeout=5) == ["once"]
        info = await first.get_task_info(task_id)
    assert info is not None and (info.attempts, info.interruptions) == (1, 0)
    assert recorder.calls == [("gated", "once")]


async def test_an_owner_on_another_host_is_refused_while_its_heartbeat_is_fresh(
    database_url: str, registry: TaskRegistry
) -> None:
    async with AsyncTaskWorker(database_url, registry=registry) as worker:
        task_id = await worker.add_task("record", "x", delay=3600)
    now_us = int(time.time() * 1_000_000)
    # Another machine's process, as it would have written its owner row.
    sql(
        database_url,
        "insert into owners (boot_id, host, pid, process, started_at, heartbeat_at, "
        f"expires_at) values ('elsewhere-boot', 'elsewhere', 1, '', {now_us}, {now_us}, "
        f"{now_us + 60_000_000})",
    )
    with pytest.raises(DatabaseInUseError, match="elsewhere"):
        await AsyncTaskWorker(database_url, registry=registry).start()
    sql(database_url, f"update owners set expires_at = {now_us - 1}")  # it stopped beating
    async with AsyncTaskWorker(database_url, registry=registry) as taken_over:
        info = await taken_over.get_task_info(task_id)
        assert info is not None and info.status is TaskStatus.SCHEDULED


async def test_a_worker_whose_ownership_was_taken_over_stops_running_tasks(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    async with AsyncTaskWorker(database_url, registry=registry, heartbeat_interval=0.05) as worker:
        running = await worker.add_task("gated", "cut")
        await asyncio.wait_for(recorder.started.wait(), 5)
        # Fault injection: another process took the database over (its row replaced ours).
        sql(database_url, "update owners set boot_id = 'usurper'")

        async def halted() -> bool:
            return not worker.running

        await eventually(halted)
        assert recorder.cancelled == ["cut"]
        later = await worker.add_task("record", "never", delay=0)
        await asyncio.sleep(0.2)  # a running pool would have started it by now
        assert recorder.calls == []
    # It wrote nothing more: the new owner's recovery decides about the row it had running.
    statuses = dict(sql(database_url, "select id, status from tasks"))
    assert statuses == {running: "running", later: "pending"}


async def test_the_reconciler_leaves_live_attempts_and_claims_alone(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    """Many reconciler rounds while this boot holds a running task and tasks claimed ahead
    of its one slot: none of them is put back, and each runs once."""
    events: list[TaskEvent] = []
    async with AsyncTaskWorker(
        database_url,
        registry=registry,
        max_workers=1,
        reconcile_interval=0.01,
        event_sink=events.extend,
    ) as worker:
        warm = [await worker.add_task("add", i, i) for i in range(20)]  # short: prefetch on
        await worker.wait_for_tasks(warm, timeout=10)
        gate = await worker.add_task("gated", "held")
        await asyncio.wait_for(recorder.started.wait(), 5)
        ids = [await worker.add_task("record", i) for i in range(4)]

        async def claimed() -> bool:
            return (await worker.queue_depth())["claimed"] >= 2

        await eventually(claimed)
        await asyncio.sleep(0.3)  # some thirty reconciler rounds see them held
        recorder.gate.set()
        await worker.wait_for_tasks([gate, *ids], timeout=10)
    assert [e for e in events if e.type == EventType.RECOVERED] == []
    assert sorted(label for kind, label in recorder.calls if kind == "record") == [0, 1, 2, 3]
    assert sql(database_url, "select max(attempts) from tasks") == [(1,)]
