"""Throughput: N no-op tasks enqueued and run to completion in one process, litetask (with
its production settings: WAL, synchronous=FULL, group commit, default max_workers) against
Huey's SqliteHuey with one thread worker, measured in the same run.

    uv run python bench/throughput.py [--tasks 5000] [--rounds 3]

Prints enqueue and end-to-end tasks/s for both and the ratio litetask/Huey (best of rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from huey import SqliteHuey

from app import AsyncTaskWorker, TaskRegistry
from app.events.log import EventType, TaskEvent


@dataclass
class Result:
    enqueue_per_s: float
    end_to_end_per_s: float


async def noop() -> None:
    return None


async def run_litetask(n: int, directory: Path) -> Result:
    registry = TaskRegistry()
    registry.register("noop", noop)
    done = asyncio.Event()
    finished = 0

    def count(events: list[TaskEvent]) -> None:
        nonlocal finished
        finished += sum(1 for e in events if e.type == EventType.COMPLETED)
        if finished >= n:
            done.set()

    url = f"sqlite+aiosqlite:///{directory / 'litetask.db'}"
    async with AsyncTaskWorker(url, registry=registry, event_sink=count) as worker:
        started = time.perf_counter()
        for chunk in range(0, n, 500):
            size = min(500, n - chunk)
            await asyncio.gather(*[worker.add_task("noop") for _ in range(size)])
        enqueued = time.perf_counter()
        await asyncio.wait_for(done.wait(), timeout=300)
        ended = time.perf_counter()
    return Result(n / (enqueued - started), n / (ended - started))


def run_huey(n: int, directory: Path) -> Result:
    huey = SqliteHuey(filename=str(directory / "huey.db"))
    finished = 0
    all_done = threading.Event()
    lock = threading.Lock()

    @huey.task()
    def noop_task() -> None:
        nonlocal finished
        with lock:
            finished += 1
            if finished >= n:
                all_done.set()

    consumer = huey.create_consumer(workers=1, worker_type="thread", initial_delay=0.001)
    consumer.start()  # workers and scheduler threads, without run()'s signal handlers
    started = time.perf_counter()
    for _ in range(n):
        noop_task()
    enqueued = time.perf_counter()
    all_done.wait(timeout=300)
    ended = time.perf_counter()
    consumer.stop(graceful=True)
    return Result(n / (enqueued - started), n / (ended - started))


def best(results: list[Result]) -> Result:
    return Result(max(r.enqueue_per_s for r in results), max(r.end_to_end_per_s for r in results))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    ours: list[Result] = []
    theirs: list[Result] = []
    for _ in range(options.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            theirs.append(run_huey(options.tasks, Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            ours.append(asyncio.run(run_litetask(options.tasks, Path(tmp))))
    lt, hu = best(ours), best(theirs)
    print(f"tasks per round: {options.tasks}, rounds: {options.rounds} (best of)")
    print(f"{'':12}{'enqueue/s':>12}{'end-to-end/s':>15}")
    print(f"{'litetask':12}{lt.enqueue_per_s:12,.0f}{lt.end_to_end_per_s:15,.0f}")
    print(f"{'huey':12}{hu.enqueue_per_s:12,.0f}{hu.end_to_end_per_s:15,.0f}")
    print(
        f"ratio litetask/huey: enqueue {lt.enqueue_per_s / hu.enqueue_per_s:.2f}x, "
        f"end-to-end {lt.end_to_end_per_s / hu.end_to_end_per_s:.2f}x (target >= 1.5x)"
    )


if __name__ == "__main__":
    main()
