"""Several workers on one PostgreSQL database (app/worker/postgres): they share the queue
without taking a row twice, skip rows another transaction holds, and rescue the rows of a
worker whose heartbeat went stale, whose late outcome is then fenced out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import psycopg
import pytest

from app import AsyncTaskWorker, TaskRegistry, TaskStatus
from app.worker.batch import TaskCall
from app.worker.options import TaskOptions
from tests.pg_server import PostgresServer, commits_held, postgres_sql
from tests.waiting import until

from .conftest import Recorder, eventually, make_registry

WorkerFactory = Callable[..., AsyncTaskWorker]


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.create_database()


@pytest.fixture
async def workers(pg_url: str) -> AsyncIterator[Callable[..., AsyncTaskWorker]]:
    """`await start(registry, **options)`: a started worker on the test's database, each
    stopped at the end."""
    async with AsyncExitStack() as stack:

        async def start(registry: TaskRegistry, **options: object) -> AsyncTaskWorker:
            worker = AsyncTaskWorker(pg_url, registry=registry, retry_backoff=0.01, **options)
            return await stack.enter_async_context(worker)

        yield start  # type: ignore[misc]


def running_by_owner(url: str) -> dict[str, int]:
    rows = postgres_sql(
        url, "SELECT owner, count(*) FROM tasks WHERE status = 'running' GROUP BY 1"
    )
    return {str(owner): int(str(n)) for owner, n in rows}


async def test_two_workers_share_one_queue_and_never_take_a_row_twice(
    workers: WorkerFactory, pg_url: str
) -> None:
    first_recorder, second_recorder = Recorder(), Recorder()
    first = await workers(make_registry(first_recorder), max_workers=4)
    second = await workers(make_registry(second_recorder), max_workers=4)
    gated = [await first.add_task("gated", f"g{i}") for i in range(8)]
    # Eight tasks, four slots each: both must run four at once.
    await eventually(lambda: _settled(running_by_owner(pg_url)), timeout=15)
    assert running_by_owner(pg_url) == {first.boot_id: 4, second.boot_id: 4}
    first_recorder.gate.set()
    second_recorder.gate.set()
    quick = [await second.add_task("record", i) for i in range(200)]
    await first.wait_for_tasks([*gated, *quick], timeout=30)
    ran = [label for r in (first_recorder, second_recorder) for name, label in r.calls]
    assert sorted(ran, key=str) == sorted([f"g{i}" for i in range(8)] + list(range(200)), key=str)
    attempts = postgres_sql(pg_url, "SELECT DISTINCT attempts FROM tasks")
    assert attempts == [(1,)]


async def _settled(found: dict[str, int]) -> bool:
    return sum(found.values()) == 8


async def test_a_row_another_transaction_holds_is_skipped_not_waited_for(
    workers: WorkerFactory, pg_url: str
) -> None:
    recorder = Recorder()
    holder = await workers(make_registry(recorder), max_workers=1)
    await holder.add_task("gated", "busy")  # the holder's only slot stays taken
    await asyncio.wait_for(recorder.started.wait(), 10)
    best = await holder.add_task("record", "best", priority=-10)
    others = [await holder.add_task("record", i) for i in range(5)]
    conninfo = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(conninfo) as lock:
        lock.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (best,))
        second = await workers(make_registry(recorder), max_workers=2)
        await second.wait_for_tasks(others, timeout=15)
        info = await second.get_task_info(best)
        assert info is not None and info.status is TaskStatus.PENDING
        lock.rollback()
    # A lock let go says nothing (a claimer that skipped a row never holds it long); the
    # next put wakes the pool, which takes the best row first.
    nudge = await second.add_task("record", "nudge")
    assert await second.wait_for_tasks([best, nudge], timeout=15) == ["best", "nudge"]
    recorder.gate.set()


async def test_a_stale_worker_is_rescued_and_its_late_outcome_fenced_out(
    workers: WorkerFactory, pg_url: str
) -> None:
    stale_recorder, rescuer_recorder = Recorder(), Recorder()
    stale = await workers(make_registry(stale_recorder), max_workers=1, heartbeat_interval=60)
    task_id = await stale.add_task("gated", "first")
    await asyncio.wait_for(stale_recorder.started.wait(), 10)
    # Its heartbeat is long past, from another host: any other worker judges it dead.
    postgres_sql(
        pg_url,
        f"UPDATE owners SET expires_at = 0, host = 'elsewhere' WHERE boot_id = '{stale.boot_id}'",
    )
    rescuer = await workers(make_registry(rescuer_recorder), max_workers=1, heartbeat_interval=0.2)
    await asyncio.wait_for(rescuer_recorder.started.wait(), 15)
    info = await rescuer.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.RUNNING
    assert (info.attempts, info.interruptions) == (2, 1)
    assert postgres_sql(pg_url, "SELECT boot_id FROM owners") == [(rescuer.boot_id,)]
    stale_recorder.gate.set()  # the old attempt returns late: fenced out
    await until(lambda: ("gated", "first") in stale_recorder.calls, what="the stale attempt")
    await asyncio.sleep(0.2)
    info = await rescuer.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.RUNNING
    rescuer_recorder.gate.set()
    assert await rescuer.wait_for_tasks([task_id], timeout=10) == ["first"]
    assert (await rescuer.get_task_info(task_id)).attempts == 2  # type: ignore[union-attr]


async def test_three_workers_queue_each_periodic_slot_once(
    workers: WorkerFactory, pg_url: str
) -> None:
    """Issue 15 on PostgreSQL: three processes' schedulers race for every one-second slot;
    the slot is the idempotency key, taken in the transaction that records the schedule's
    progress, so each slot is queued (and run) exactly once."""
    ran: list[str] = []

    async def tick(scheduled_at: object) -> None:
        ran.append(str(scheduled_at))

    def registry() -> TaskRegistry:
        each = TaskRegistry()
        each.register("tick", tick, every=1, missed="skip")
        return each

    for _ in range(3):
        await workers(registry())
    await until(lambda: len(ran) >= 4, timeout=30, what="four slots run")
    keys = postgres_sql(pg_url, "SELECT idempotency_key FROM tasks WHERE task_type = 'tick'")
    assert len(keys) == len({k for (k,) in keys}), keys
    assert len(ran) == len(set(ran)), ran


async def test_one_idempotency_key_submitted_on_two_workers_at_once_makes_one_task(
    workers: WorkerFactory, pg_url: str
) -> None:
    """Both workers' writers insert the same key in transactions open at once: the later
    answers with the earlier's task instead of failing on the unique index."""
    first = await workers(make_registry(Recorder()), max_workers=1)
    second = await workers(make_registry(Recorder()), max_workers=1)
    with commits_held(pg_url) as waiting:
        submits = [
            asyncio.create_task(w.add_task("record", "same", idempotency_key="key"))
            for w in (first, second)
        ]
        # One waits on the log's lock, the other on the first one's row of the key.
        await until(lambda: waiting(2), timeout=15, what="both writers to wait")
    ids = await asyncio.gather(*submits)
    assert ids[0] == ids[1]
    assert postgres_sql(pg_url, "SELECT id FROM tasks") == [(ids[0],)]
    assert await first.wait_for_tasks(ids[:1], timeout=15) == ["same"]
    queued = postgres_sql(pg_url, "SELECT count(*) FROM events WHERE type = 'task.queued'")
    assert queued == [(1,)]


async def test_one_key_in_batches_on_two_workers_at_once_makes_one_task(
    workers: WorkerFactory, pg_url: str
) -> None:
    """submit_batch (all or none) on both workers at once, each batch with the shared key
    and one of its own: one task for the shared key, the others created."""
    first = await workers(make_registry(Recorder()), max_workers=1)
    second = await workers(make_registry(Recorder()), max_workers=1)

    def batch(own: str) -> list[TaskCall]:
        return [
            TaskCall("record", ("shared",), options=TaskOptions(idempotency_key="shared")),
            TaskCall("record", (own,), options=TaskOptions(idempotency_key=own)),
        ]

    with commits_held(pg_url) as waiting:
        submits = [
            asyncio.create_task(w.submit_batch(batch(f"own-{n}")))
            for n, w in enumerate((first, second))
        ]
        await until(lambda: waiting(2), timeout=15, what="both writers to wait")
    answers = await asyncio.gather(*submits)
    assert answers[0][0].task_id == answers[1][0].task_id
    assert sorted(a[0].created for a in answers) == [False, True]
    assert all(answer[1].created for answer in answers)
    keys = postgres_sql(pg_url, "SELECT idempotency_key FROM tasks ORDER BY 1")
    assert keys == [("own-0",), ("own-1",), ("shared",)]


async def test_one_key_for_two_requests_on_two_workers_at_once_refuses_the_later(
    workers: WorkerFactory, pg_url: str
) -> None:
    """The same race with different requests: the later is refused with the typed error a
    reused key gets, and nothing of it is written."""
    first = await workers(make_registry(Recorder()), max_workers=1)
    second = await workers(make_registry(Recorder()), max_workers=1)
    with commits_held(pg_url) as waiting:
        submits = [
            asyncio.create_task(w.add_task("record", label, idempotency_key="key"))
            for w, label in ((first, "one"), (second, "other"))
        ]
        await until(lambda: waiting(2), timeout=15, what="both writers to wait")
    outcomes = await asyncio.gather(*submits, return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["IdempotencyKeyReusedError", "str"]
    assert postgres_sql(pg_url, "SELECT count(*) FROM tasks") == [(1,)]
