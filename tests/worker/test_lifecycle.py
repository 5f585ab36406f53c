"""A task's life through the public API: accepted, run, finished, kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app import (
    AsyncTaskWorker,
    TaskAlreadyExistsError,
    TaskArgumentsError,
    TaskExecutionError,
    TaskNotFoundError,
    TaskRegistry,
    TaskSerializationError,
    TaskStatus,
    UnknownTaskTypeError,
)

from .conftest import Recorder, sql


async def test_add_task_returns_once_the_row_is_committed(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    task_id = await worker.add_task("add", 2, 3)
    assert sql(database_url, f"select task_type from tasks where id = '{task_id}'") == [("add",)]
    assert await worker.wait_for_tasks([task_id], timeout=5) == [5]
    info = await worker.get_task_info(task_id)
    assert info is not None
    assert info.status is TaskStatus.COMPLETED
    assert info.result == 5
    assert info.progress == 1.0
    assert info.attempts == 1
    assert info.started_at is not None and info.completed_at is not None
    assert info.created_at <= info.started_at <= info.completed_at
    assert info.created_at.tzinfo is UTC


async def test_add_task_accepts_the_function_itself(worker: AsyncTaskWorker) -> None:
    add = worker.registry.get("add").func
    task_id = await worker.add_task(add, 1, b=2)
    assert await worker.wait_for_tasks([task_id], timeout=5) == [3]


async def test_kwargs_metadata_and_options_are_kept_apart(worker: AsyncTaskWorker) -> None:
    task_id = await worker.add_task(
        "record", label="x", priority=3, metadata={"group": "g1"}, timeout=9
    )
    await worker.wait_for_tasks([task_id], timeout=5)
    info = await worker.get_task_info(task_id)
    assert info is not None
    assert info.kwargs == {"label": "x"}
    assert info.metadata == {"group": "g1"}
    assert (info.priority, info.timeout) == (3, 9.0)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda w: w.add_task("nope"), UnknownTaskTypeError),
        (lambda w: w.add_task("add", 1), TaskArgumentsError),
        (lambda w: w.add_task("add", 1, 2, c=3), TaskArgumentsError),
        (lambda w: w.add_task("record", object()), TaskSerializationError),
        (lambda w: w.add_task("record", "x", metadata={"k": object()}), TaskSerializationError),
        (
            lambda w: w.add_task("record", "x", delay=1, run_at=datetime.now(UTC)),
            TaskArgumentsError,
        ),
        (lambda w: w.add_task("record", "x", max_attempts=0), TaskArgumentsError),
        (lambda w: w.add_task("record", "x", timeout=-1), TaskArgumentsError),
        (lambda w: w.add_task("record", "x", priority="high"), TaskArgumentsError),
        (lambda w: w.add_task("record", "x", task_id=""), TaskArgumentsError),
    ],
)
async def test_bad_input_is_refused_before_anything_is_written(
    worker: AsyncTaskWorker, database_url: str, call: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await call(worker)  # type: ignore[operator]
    assert sql(database_url, "select count(*) from tasks") == [(0,)]


async def test_lower_priority_number_runs_first_fifo_within_a_priority(
    database_url: str, registry: object, recorder: Recorder
) -> None:
    async with AsyncTaskWorker(database_url, max_workers=1, registry=registry) as worker:  # type: ignore[arg-type]
        gate = await worker.add_task("gated")
        await asyncio.wait_for(recorder.started.wait(), 5)
        ids = [
            await worker.add_task("record", label, priority=priority)
            for label, priority in [("c1", 5), ("a1", 0), ("b1", 1), ("a2", 0), ("c2", 5)]
        ]
        recorder.gate.set()
        await worker.wait_for_tasks([gate, *ids], timeout=5)
    order = [label for kind, label in recorder.calls if kind == "record"]
    assert order == ["a1", "a2", "b1", "c1", "c2"]


async def test_delayed_tasks_run_at_their_time(worker: AsyncTaskWorker) -> None:
    start = datetime.now(UTC)
    later = await worker.add_task("record", "later", delay=0.4)
    at = await worker.add_task("record", "at", run_at=start + timedelta(seconds=0.2))
    now = await worker.add_task("record", "now")
    await worker.wait_for_tasks([later, at, now], timeout=5)
    started = {}
    for task_id in (later, at, now):
        info = await worker.get_task_info(task_id)
        assert info is not None and info.started_at is not None
        started[task_id] = (info.started_at - start).total_seconds()
    assert started[now] < 0.2
    assert 0.2 <= started[at] < started[later]
    assert started[later] >= 0.4


async def test_progress_is_reported_and_kept(worker: AsyncTaskWorker) -> None:
    task_id = await worker.add_task("with_progress", 5)
    assert await worker.wait_for_tasks([task_id], timeout=5) == [5]
    info = await worker.get_task_info(task_id)
    assert info is not None and info.progress == 1.0


async def test_progress_is_persisted_while_running(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    task_id = await worker.add_task("with_progress", 60)
    seen: set[float] = set()
    for _ in range(100):
        info = await worker.get_task_info(task_id)
        assert info is not None
        if info.status is TaskStatus.RUNNING:
            seen.add(info.progress)
        if info.is_terminal:
            break
        await asyncio.sleep(0.02)
    assert any(0 < p < 1 for p in seen), seen


async def test_failure_keeps_each_attempts_error_and_traceback(worker: AsyncTaskWorker) -> None:
    task_id = await worker.add_task("boom", max_attempts=3)
    with pytest.raises(TaskExecutionError, match="boom") as caught:
        await worker.wait_for_tasks([task_id], timeout=10)
    assert caught.value.error_type == "ValueError"
    info = await worker.get_task_info(task_id)
    assert info is not None
    assert info.status is TaskStatus.FAILED
    assert info.attempts == 3
    assert [e.attempt for e in info.errors] == [1, 2, 3]
    assert all(e.error_type == "ValueError" and e.message == "boom" for e in info.errors)
    assert all(e.traceback and "raise ValueError" in e.traceback for e in info.errors)


async def test_retries_use_the_task_type_default_and_then_succeed(
    worker: AsyncTaskWorker,
) -> None:
    task_id = await worker.add_task("flaky", "k", 2)
    assert await worker.wait_for_tasks([task_id], timeout=10) == ["ok"]
    info = await worker.get_task_info(task_id)
    assert info is not None
    assert (info.status, info.attempts, len(info.errors)) == (TaskStatus.COMPLETED, 3, 2)


async def test_retry_backoff_grows(database_url: str, registry: object) -> None:
    async with AsyncTaskWorker(database_url, registry=registry, retry_backoff=0.2) as worker:  # type: ignore[arg-type]
        task_id = await worker.add_task("boom", max_attempts=3)
        with pytest.raises(TaskExecutionError):
            await worker.wait_for_tasks([task_id], timeout=10)
        info = await worker.get_task_info(task_id)
    assert info is not None
    first, second, third = (e.failed_at for e in info.errors)
    # Full jitter in [ceiling/2, ceiling]: 0.1-0.2 s, then 0.2-0.4 s.
    assert 0.1 <= (second - first).total_seconds() < 0.35
    assert 0.2 <= (third - second).total_seconds() < 0.6


async def test_timeout_fails_the_attempt_with_task_timeout_error(
    worker: AsyncTaskWorker,
) -> None:
    task_id = await worker.add_task("sleepy", 5, timeout=0.1)
    with pytest.raises(TaskExecutionError, match=r"within 0\.1 seconds"):
        await worker.wait_for_tasks([task_id], timeout=5)
    info = await worker.get_task_info(task_id)
    assert info is not None
    assert info.status is TaskStatus.FAILED
    assert info.errors[0].error_type == "TaskTimeoutError"


async def test_an_unserializable_result_fails_without_retrying(worker: AsyncTaskWorker) -> None:
    task_id = await worker.add_task("unpackable", max_attempts=3)
    with pytest.raises(TaskExecutionError, match="cannot serialize"):
        await worker.wait_for_tasks([task_id], timeout=5)
    info = await worker.get_task_info(task_id)
    assert info is not None and info.attempts == 1


async def test_task_id_and_idempotency_key(worker: AsyncTaskWorker, database_url: str) -> None:
    assert await worker.add_task("record", "a", task_id="mine") == "mine"
    with pytest.raises(TaskAlreadyExistsError):
        await worker.add_task("record", "b", task_id="mine")
    first = await worker.add_task("record", "c", idempotency_key="key-1")
    again = await worker.add_task("record", "c", idempotency_key="key-1")
    assert again == first
    same = await asyncio.gather(
        *[worker.add_task("record", "e", idempotency_key="key-2") for _ in range(25)]
    )
    assert len(set(same)) == 1
    assert sql(database_url, "select count(*) from tasks") == [(3,)]


async def test_get_all_tasks_filters_newest_first(worker: AsyncTaskWorker) -> None:
    ids = [await worker.add_task("record", str(i)) for i in range(3)]
    failing = await worker.add_task("boom")
    await worker.wait_for_tasks(ids, timeout=5)
    with pytest.raises(TaskExecutionError):
        await worker.wait_for_tasks([failing], timeout=5)
    everything = await worker.get_all_tasks()
    assert [t.id for t in everything] == [failing, *reversed(ids)]
    failed = await worker.get_all_tasks(status=TaskStatus.FAILED)
    assert [t.id for t in failed] == [failing]
    assert [t.id for t in await worker.get_all_tasks(task_type="record", limit=2)] == [
        ids[2],
        ids[1],
    ]
    page = await worker.list_tasks(limit=2)
    rest = await worker.list_tasks(limit=2, cursor=page.next_cursor)
    assert [t.id for t in page.tasks + rest.tasks] == [failing, *reversed(ids)]
    assert rest.next_cursor is None
    future = datetime.now(UTC) + timedelta(seconds=5)
    assert len(await worker.get_all_tasks(older_than=future)) == 4
    assert await worker.get_all_tasks(older_than=datetime(2000, 1, 1, tzinfo=UTC)) == []


async def test_wait_for_any_task(worker: AsyncTaskWorker) -> None:
    slow = await worker.add_task("sleepy", 1.0)
    fast = await worker.add_task("sleepy", 0.01)
    assert await worker.wait_for_any_task([slow, fast], timeout=5) == (fast, 0.01)


async def test_futures_of_finished_and_unknown_tasks(worker: AsyncTaskWorker) -> None:
    task_id = await worker.add_task("add", 1, 1)
    await worker.wait_for_tasks([task_id], timeout=5)
    future = await worker.get_task_future(task_id)
    assert future.done() and future.result() == 2
    with pytest.raises(TaskNotFoundError):
        await worker.get_task_future("no-such-task")


async def test_results_round_trip_rich_types(worker: AsyncTaskWorker) -> None:
    value = {"when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "pair": (1, 2), "raw": b"\x00"}
    task_id = await worker.add_task("record", value)
    assert await worker.wait_for_tasks([task_id], timeout=5) == [value]


async def test_second_worker_on_the_same_file_refuses(
    worker: AsyncTaskWorker, database_url: str, tmp_path: Path
) -> None:
    from app import DatabaseInUseError

    with pytest.raises(DatabaseInUseError, match="already using"):
        await AsyncTaskWorker(database_url).start()
    assert worker.running


async def test_every_event_of_a_grouped_task_carries_its_group(
    database_url: str, registry: object
) -> None:
    events: list[object] = []
    async with AsyncTaskWorker(
        database_url,
        registry=registry,  # type: ignore[arg-type]
        retry_backoff=0.01,
        event_sink=events.extend,
    ) as worker:
        task_id = await worker.add_task("boom", max_attempts=2, metadata={"group": "eu"})
        with pytest.raises(TaskExecutionError):
            await worker.wait_for_tasks([task_id], timeout=5)
        other = await worker.add_task("with_progress", 2, metadata={"group": 7})
        await worker.wait_for_tasks([other], timeout=5)
    kinds = {(e.type, e.payload.get("group")) for e in events}  # type: ignore[attr-defined]
    assert kinds >= {
        ("task.queued", "eu"), ("task.started", "eu"), ("task.retrying", "eu"),
        ("task.failed", "eu"), ("task.progress", "7"), ("task.completed", "7"),
    }  # fmt: skip
    assert all(e.payload.get("group") is not None for e in events)  # type: ignore[attr-defined]


async def test_terminal_events_carry_the_result_or_error_capped(
    database_url: str, registry: object
) -> None:
    events: list[object] = []
    async with AsyncTaskWorker(
        database_url,
        registry=registry,  # type: ignore[arg-type]
        event_sink=events.extend,
    ) as worker:
        small = await worker.add_task("record", {"when": datetime(2026, 1, 1, tzinfo=UTC)})
        big = await worker.add_task("record", "x" * 10_000)
        failing = await worker.add_task("boom")
        await worker.wait_for_tasks([small, big], timeout=5)
        with pytest.raises(TaskExecutionError):
            await worker.wait_for_tasks([failing], timeout=5)
    payloads = {e.task_id: e.payload for e in events if e.type in ("task.completed", "task.failed")}  # type: ignore[attr-defined]
    assert payloads[small]["result"] == {"when": "2026-01-01T00:00:00+00:00"}
    assert payloads[big] == payloads[big] | {"result_truncated": True}
    assert "result" not in payloads[big]
    assert payloads[failing]["error"] == "boom"


async def test_every_event_committed_before_a_stop_reaches_the_sink(
    database_url: str, registry: TaskRegistry
) -> None:
    """On PostgreSQL events reach the sink through the log follower, a moment after their
    commit: a stop right after the tasks finished must still hand over every one of them
    (the follower reads the log to its end before it stops), as SQLite's commit does."""
    for _ in range(3):
        events: list[Any] = []
        async with AsyncTaskWorker(database_url, registry=registry, event_sink=events.extend) as w:
            failing = await w.add_task("boom")
            with pytest.raises(TaskExecutionError):
                await w.wait_for_tasks([failing], timeout=10)
        assert [e.task_id for e in events if e.type == "task.failed"] == [failing]
