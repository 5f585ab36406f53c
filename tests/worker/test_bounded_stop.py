"""A stop is bounded whatever a task does, through AsyncTaskWorker: a task that swallows its
cancellation is put back all the same, a cut stops waiting at once, a task raising SystemExit
(or any BaseException but CancelledError) fails alone, and nothing starts once a stop began."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings

import pytest

from app import (
    AsyncTaskWorker,
    DatabaseUnavailableError,
    TaskExecutionError,
    TaskRegistry,
    TaskStatus,
)
from tests.faults import write_lock_held
from tests.waiting import until

from .conftest import Recorder, make_registry, sql

RAISED = {
    "SystemExit": SystemExit(2),
    "KeyboardInterrupt": KeyboardInterrupt(),
    "GeneratorExit": GeneratorExit(),
}


class Stubborn:
    """A task that swallows every cancellation until `seconds` have passed."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancellations = 0
        self.ended = asyncio.Event()
        self.runs = self.running = self.most_at_once = 0

    async def run(self, seconds: float) -> str:
        self.started.set()
        self.runs += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    await asyncio.sleep(left)
                except asyncio.CancelledError:  # swallowed: the fault under test
                    self.cancellations += 1
            return "late"
        finally:
            self.running -= 1
            self.ended.set()


async def raise_base(kind: str) -> None:
    raise RAISED[kind]


@pytest.fixture
def stubborn() -> Stubborn:
    return Stubborn()


@pytest.fixture
def registry(recorder: Recorder, stubborn: Stubborn) -> TaskRegistry:
    registry = make_registry(recorder)
    registry.register("stubborn", stubborn.run)
    registry.register("raise_base", raise_base)
    return registry


async def test_a_task_that_swallows_cancellation_is_put_back_within_the_bound(
    database_url: str, registry: TaskRegistry, stubborn: Stubborn
) -> None:
    worker = AsyncTaskWorker(database_url, registry=registry)
    await worker.start()
    task_id = await worker.add_task("stubborn", 3.0)
    await asyncio.wait_for(stubborn.started.wait(), 5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with asyncio.timeout(10):
        await worker.stop(timeout=0.2)
    assert loop.time() - began < 0.2 + 2.0  # the timeout and about a second of grace
    assert stubborn.cancellations >= 1 and not stubborn.ended.is_set()
    query = f"select status, attempts, max_attempts from tasks where id = '{task_id}'"
    assert sql(database_url, query) == [("pending", 1, 2)]
    # Its late result changes nothing: the row went back, the task runs again.
    await asyncio.wait_for(stubborn.ended.wait(), 10)
    assert sql(database_url, query) == [("pending", 1, 2)]


async def test_a_restart_waits_for_an_attempt_that_outlived_the_stop(
    database_url: str, registry: TaskRegistry, stubborn: Stubborn
) -> None:
    """The row goes back at the stop, but its old attempt still runs in this process: started
    again, the same worker runs the task's next attempt only once that one has returned."""
    worker = AsyncTaskWorker(database_url, registry=registry)
    await worker.start()
    task_id = await worker.add_task("stubborn", 1.5)
    await asyncio.wait_for(stubborn.started.wait(), 5)
    await worker.stop(timeout=0.1)
    assert not stubborn.ended.is_set()
    await worker.start()
    try:
        assert await worker.wait_for_tasks([task_id], timeout=15) == ["late"]
    finally:
        await worker.stop()
    assert stubborn.runs == 2 and stubborn.most_at_once == 1


async def test_a_cut_stops_waiting_for_running_tasks(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    worker = AsyncTaskWorker(database_url, registry=registry)
    await worker.start()
    task_id = await worker.add_task("gated", "long")
    await asyncio.wait_for(recorder.started.wait(), 5)
    cut = asyncio.Event()
    stopping = asyncio.create_task(worker.stop(timeout=300, cut=cut))
    await until(lambda: not worker.running, what="the stop began")
    cut.set()
    async with asyncio.timeout(10):
        await stopping
    assert recorder.cancelled == ["long"]
    query = f"select status, attempts, max_attempts from tasks where id = '{task_id}'"
    assert sql(database_url, query) == [("pending", 1, 2)]


@pytest.mark.parametrize("kind", list(RAISED))
async def test_a_base_exception_fails_its_task_and_the_worker_goes_on(
    worker: AsyncTaskWorker, kind: str
) -> None:
    task_id = await worker.add_task("raise_base", kind)
    with pytest.raises(TaskExecutionError):
        await worker.wait_for_tasks([task_id], timeout=5)
    info = await worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.FAILED
    assert [e.error_type for e in info.errors] == [kind]
    after = await worker.add_task("add", 2, 3)
    assert await worker.wait_for_tasks([after], timeout=5) == [5]


async def test_a_claim_in_flight_when_the_stop_begins_starts_nothing(
    database_url: str, registry: TaskRegistry, recorder: Recorder
) -> None:
    worker = AsyncTaskWorker(database_url, max_workers=1, registry=registry, write_retry_seconds=60)
    await worker.start()
    gated = await worker.add_task("gated", "slow")
    await asyncio.wait_for(recorder.started.wait(), 5)
    backlog = [await worker.add_task("record", i) for i in range(3)]
    with write_lock_held(database_url) as lock:
        recorder.gate.set()  # its outcome and the claim for the freed slot wait for the lock
        await until(lambda: ("gated", "slow") in recorder.calls, what="the slow task returned")
        await asyncio.sleep(0.3)  # the claim is asked for meanwhile
        stopping = asyncio.create_task(worker.stop(timeout=10))
        await until(lambda: not worker.running, what="the stop began")
        lock.release()
        async with asyncio.timeout(30):
            await stopping
    assert sql(database_url, f"select status from tasks where id = '{gated}'") == [("completed",)]
    ids = ", ".join(f"'{i}'" for i in backlog)
    left = sql(database_url, f"select status, attempts, started_at from tasks where id in ({ids})")
    assert left == [("pending", 0, None)] * 3
    assert [label for name, label in recorder.calls if name == "record"] == []


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "litetask-writer"]


async def test_a_writer_abandoned_at_the_stop_closes_its_connection(
    database_url: str, registry: TaskRegistry
) -> None:
    """A stop gives up on a transaction that does not return in time (here: waiting for a
    lock another program holds) and closes the database. When that transaction returns
    later, its thread closes its connection for good: nothing is left for the garbage
    collector to find open (psycopg warns of it: a ResourceWarning in a later test)."""
    before = writer_threads()
    worker = AsyncTaskWorker(
        database_url, registry=registry, busy_timeout=3.0, write_retry_seconds=0.3
    )
    await worker.start()
    with write_lock_held(database_url):
        submit = asyncio.ensure_future(worker.add_task("add", 1, 2))
        await asyncio.sleep(0.3)  # the writer waits for the lock
        await asyncio.wait_for(worker.stop(timeout=0.1), 10)  # and is abandoned
        assert not submit.done() or submit.exception() is not None
    with pytest.raises(DatabaseUnavailableError):
        await submit
    await until(lambda: writer_threads() == before, 20, "the abandoned writer thread ended")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w.message for w in caught if issubclass(w.category, ResourceWarning)] == []
