"""Throughput: N no-op tasks enqueued and run to completion in one process, litetask (with
its production settings: WAL, synchronous=FULL, group commit, default max_workers) against
Huey's SqliteHuey with one thread worker, measured in the same run.

    uv run python -m bench.throughput [--tasks 5000] [--rounds 3]

(`-m`: run as a file, bench/http.py would shadow the standard library's `http`.)

Prints enqueue and end-to-end tasks/s for both and the ratio litetask/Huey (best of rounds).
litetask runs twice per round: bare, and with the service's Prometheus metrics fed by every
event and commit as `litetask serve` wires them, so their cost shows as a ratio too.
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
from app.metrics import ServiceMetrics


@dataclass
class Result:
    enqueue_per_s: float
    end_to_end_per_s: float


async def noop() -> None:
    return None


async def run_litetask(n: int, directory: Path, *, metrics: bool = False) -> Result:
    registry = TaskRegistry()
    observed = ServiceMetrics.build().tasks if metrics else None
    registry.register("noop", noop)
    done = asyncio.Event()
    finished = 0

    def count(events: list[TaskEvent]) -> None:
        nonlocal finished
        finished += sum(1 for e in events if e.type == EventType.COMPLETED)
        if observed is not None:
            observed.observe_events(events)
        if finished >= n:
            done.set()

    url = f"sqlite+aiosqlite:///{directory / 'litetask.db'}"
    commits = observed.observe_commit if observed is not None else None
    async with AsyncTaskWorker(
        url, registry=registry, event_sink=count, commit_observer=commits
    ) as worker:
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
    measured: list[Result] = []
    theirs: list[Result] = []
    for _ in range(options.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            theirs.append(run_huey(options.tasks, Path(tmp)))
        # Bare and with metrics in alternating order, so neither always runs warmer.
        for metrics in (False, True) if len(ours) % 2 == 0 else (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                result = asyncio.run(run_litetask(options.tasks, Path(tmp), metrics=metrics))
            (measured if metrics else ours).append(result)
    lt, lm, hu = best(ours), best(measured), best(theirs)
    print(f"tasks per round: {options.tasks}, rounds: {options.rounds} (best of)")
    print(f"{'':12}{'enqueue/s':>12}{'end-to-end/s':>15}")
    print(f"{'litetask':12}{lt.enqueue_per_s:12,.0f}{lt.end_to_end_per_s:15,.0f}")
    print(f"{'+metrics':12}{lm.enqueue_per_s:12,.0f}{lm.end_to_end_per_s:15,.0f}")
    print(f"{'huey':12}{hu.enqueue_per_s:12,.0f}{hu.end_to_end_per_s:15,.0f}")
    print(
        f"ratio litetask/huey: enqueue {lt.enqueue_per_s / hu.enqueue_per_s:.2f}x, "
        f"end-to-end {lt.end_to_end_per_s / hu.end_to_end_per_s:.2f}x (target >= 1.5x)"
    )
    print(
        f"ratio with metrics/without: enqueue {lm.enqueue_per_s / lt.enqueue_per_s:.2f}x, "
        f"end-to-end {lm.end_to_end_per_s / lt.end_to_end_per_s:.2f}x (noise: about ±0.1x)"
    )


if __name__ == "__main__":
    main()
