"""Fault injection inside one process, for a bounded time, through the public Python API.

While tasks keep being added, the test fills the disk (SQLITE_FULL), holds SQLite's write
lock from another connection (SQLITE_BUSY), makes the event subscriber raise, cancels and
retries tasks, and stops and starts the worker (tasks that ignore cancellation included).
At the end every accepted task is terminal, no task ran two attempts at once in this process,
and none was charged more attempts than it was given plus its interruptions. The seed is
random per run and printed on failure; LITETASK_CHAOS_SEED replays one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from app import (
    AsyncTaskWorker,
    DatabaseUnavailableError,
    TaskRegistry,
    TaskStateError,
    WorkerNotRunningError,
)
from app.events.log import TaskEvent
from tests.faults import Disk, new_disk_full, write_lock_held
from tests.worker.conftest import sql

CHAOS_SECONDS = float(os.environ.get("LITETASK_CHAOS_SECONDS", "15"))
TERMINAL = ("completed", "failed", "cancelled")
pytestmark = pytest.mark.timeout(CHAOS_SECONDS + 120)


@dataclass
class Journal:
    """Every run of every task, as the task functions saw it: (start, end) per `n`."""

    runs: dict[int, list[list[float]]] = field(default_factory=lambda: defaultdict(list))

    def start(self, n: int) -> list[float]:
        run = [time.monotonic(), float("inf")]
        self.runs[n].append(run)
        return run

    def overlapping(self) -> list[int]:
        """Tasks two of whose runs were alive at once."""
        found = []
        for n, runs in self.runs.items():
            spans = sorted(runs)
            if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
                found.append(n)
        return found


def chaos_registry(journal: Journal) -> TaskRegistry:
    registry = TaskRegistry()

    async def work(n: int, seconds: float) -> int:
        run = journal.start(n)
        try:
            await asyncio.sleep(seconds)
        finally:
            run[1] = time.monotonic()
        return n

    async def stubborn(n: int, seconds: float) -> int:
        """Ignores cancellation for longer than the stop timeout."""
        run = journal.start(n)
        try:
            try:
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                await asyncio.sleep(5)
        finally:
            run[1] = time.monotonic()
        return n

    registry.register("work", work)
    registry.register("stubborn", stubborn)
    return registry


class RaisingSubscriber:
    """An event sink that raises now and then, as a buggy subscriber does."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.raised = rng, 0

    def __call__(self, events: list[TaskEvent]) -> None:
        if self.rng.random() < 0.3:
            self.raised += 1
            raise RuntimeError("a subscriber broke")


@dataclass
class Run:
    worker: AsyncTaskWorker
    rng: random.Random
    database_url: str
    # One fault for the whole run: each transaction applies its current cap, so freeing it
    # uncaps the very next one (a cap lives on a connection until a transaction resets it).
    disk: Disk
    accepted: dict[int, str] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)


async def keep_adding(run: Run, stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        kind = run.rng.choices(["work", "stubborn"], [5, 1])[0]
        seconds = round(run.rng.uniform(0.01, 0.4), 3)
        try:
            run.accepted[n] = await run.worker.add_task(
                kind, n, seconds, idempotency_key=f"chaos-{n}"
            )
            n += 1
        except (DatabaseUnavailableError, WorkerNotRunningError):
            pass  # refused, nothing stored: the same key again in a moment
        await asyncio.sleep(run.rng.uniform(0.005, 0.05))


async def fault(run: Run) -> str:
    """One fault, chosen at random; returns its name."""
    action = run.rng.choice(["full", "lock", "restart", "cancel", "retry", "nothing"])
    if action == "full":
        run.disk.fill()
        await asyncio.sleep(run.rng.uniform(0.3, 1.5))
        run.disk.free()
    elif action == "lock":
        with write_lock_held(run.database_url):
            await asyncio.sleep(run.rng.uniform(0.3, 1.5))
    elif action == "restart":
        await run.worker.stop(timeout=0.3)
        await run.worker.start()
    elif action in ("cancel", "retry") and run.accepted:
        await control(run, action, run.rng.choice(list(run.accepted.values())))
    return action


async def control(run: Run, action: str, task_id: str) -> None:
    try:
        if action == "cancel":
            await run.worker.cancel_task(task_id)
        else:
            await run.worker.retry_task(task_id)
    except (TaskStateError, DatabaseUnavailableError, WorkerNotRunningError):
        pass  # not in a state for it, or the database said no: both are answers


async def wait_all_terminal(database_url: str, ids: dict[int, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        statuses = dict(sql(database_url, "SELECT id, status FROM tasks"))
        waiting = [n for n, i in ids.items() if statuses.get(i) not in TERMINAL]
        if not waiting:
            return
        if time.monotonic() > deadline:
            left = sql(
                database_url,
                "SELECT status, count(*), min(run_at), max(attempts) FROM tasks "
                "WHERE status NOT IN ('completed', 'failed', 'cancelled') GROUP BY status",
            )
            raise AssertionError(f"{len(waiting)} not terminal: {left}")
        await asyncio.sleep(0.1)


async def test_faults_in_process_lose_nothing(database_url: str) -> None:
    seed = int(os.environ.get("LITETASK_CHAOS_SEED", random.randrange(2**32)))
    rng, journal = random.Random(seed), Journal()
    subscriber = RaisingSubscriber(random.Random(seed + 1))
    worker = AsyncTaskWorker(
        database_url,
        max_workers=4,
        registry=chaos_registry(journal),
        event_sink=subscriber,
        busy_timeout=0.1,
        write_retry_seconds=0.5,
        reconcile_interval=1.0,
        max_interruptions=50,
    )
    await worker.start()
    disk = new_disk_full(database_url, room=0)
    disk.free()
    run, stop = Run(worker, rng, database_url, disk), asyncio.Event()
    adder = asyncio.create_task(keep_adding(run, stop))
    try:
        until = time.monotonic() + CHAOS_SECONDS
        while time.monotonic() < until:
            await asyncio.sleep(rng.uniform(0.1, 0.8))
            run.done.append(await fault(run))
        stop.set()
        await adder
        await wait_all_terminal(database_url, run.accepted, timeout=30)
    finally:
        stop.set()
        await worker.stop(timeout=0.3)
        disk.close()
    context = f"seed {seed}: {run.done}"
    assert len(run.accepted) > 20 and subscriber.raised > 0, context
    rows = sql(database_url, "SELECT id, attempts, max_attempts, interruptions FROM tasks")
    for task_id, attempts, max_attempts, interruptions in rows:
        assert attempts <= max_attempts + interruptions, (context, task_id)
    assert journal.overlapping() == [], context
