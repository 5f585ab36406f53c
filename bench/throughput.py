"""Throughput of the single-call paths and of concurrent submission, litetask (with its
production settings: WAL, synchronous=FULL, group commit, default max_workers) against
Huey's SqliteHuey (one thread worker, synchronous=FULL) measured in the same run.

    uv run python -m bench.throughput [--modes sequential,producer,concurrent]
        [--tasks 3000] [--concurrent-tasks 20000] [--rounds 3] [--seconds 30] [--metrics]

(`-m`: run as a file, bench/http.py would shadow the standard library's `http`.)

Every task carries the same ~100-byte argument. Modes, each against its Huey twin:
- sequential: `await add_task(...)` one at a time, the pool idle (max_workers=0, so nothing
  claims) vs Huey's enqueue with no consumer;
- producer: a loop awaiting `add_task` while the pool runs the tasks, until the last one is
  done (end to end) vs Huey's enqueue loop with its consumer running, until the last is done;
- concurrent: --concurrent-tasks submitted 500 at a time with `asyncio.gather`, end to end,
  vs the same Huey enqueue-then-process run.
Each phase stops at its task count or after --seconds, whichever comes first (rates count
what was done). Prints each round's rates and the median ratio litetask/Huey over rounds.
--metrics feeds the service's Prometheus metrics from every event and commit, as
`litetask serve` wires them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from huey import SqliteHuey

from app import AsyncTaskWorker, TaskRegistry
from app.events.log import EventType, TaskEvent
from app.metrics import ServiceMetrics

PAYLOAD = "p" * 100  # the fixed argument of every task (~100 bytes stored)
CHUNK = 500  # tasks per gather in the concurrent mode
TARGETS = {"sequential": 0.6, "producer": 0.6, "concurrent": 2.0}


async def noop(payload: str) -> None:
    return None


class Finished:
    """Counts completed events (the event sink) and wakes whoever waits for a number."""

    def __init__(self, metrics: bool) -> None:
        self.count = 0
        self.wanted = 0
        self.reached = asyncio.Event()
        self.observed = ServiceMetrics.build().tasks if metrics else None

    def __call__(self, events: list[TaskEvent]) -> None:
        self.count += sum(1 for e in events if e.type == EventType.COMPLETED)
        if self.observed is not None:
            self.observed.observe_events(events)
        if self.wanted and self.count >= self.wanted:
            self.reached.set()

    async def wait_for(self, wanted: int, timeout: float) -> None:
        self.wanted = wanted
        if self.count < wanted:
            await asyncio.wait_for(self.reached.wait(), timeout)


@dataclass
class Measured:
    per_second: float
    cpu_us: float  # process CPU time per task (all threads), steadier than rates under load


class Clock:
    """Wall and process CPU time since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def measured(self, tasks: int) -> Measured:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return Measured(tasks / wall, cpu / max(tasks, 1) * 1e6)


Driver = Callable[[AsyncTaskWorker, int, float], Awaitable[int]]


async def add_one_by_one(worker: AsyncTaskWorker, n: int, deadline: float) -> int:
    done = 0
    while done < n and time.perf_counter() < deadline:
        await worker.add_task("noop", PAYLOAD)
        done += 1
    return done


async def add_concurrently(worker: AsyncTaskWorker, n: int, deadline: float) -> int:
    done = 0
    while done < n and time.perf_counter() < deadline:
        size = min(CHUNK, n - done)
        await asyncio.gather(*[worker.add_task("noop", PAYLOAD) for _ in range(size)])
        done += size
    return done


async def run_litetask(mode: str, n: int, directory: Path, args: argparse.Namespace) -> Measured:
    """Tasks per second of `mode` (only the adds with the pool idle; else end to end)."""
    registry = TaskRegistry()
    registry.register("noop", noop)
    finished = Finished(args.metrics)
    observer = finished.observed.observe_commit if finished.observed is not None else None
    url = f"sqlite+aiosqlite:///{directory / 'litetask.db'}"
    workers = 0 if mode == "sequential" else 10
    drive: Driver = add_concurrently if mode == "concurrent" else add_one_by_one
    async with AsyncTaskWorker(
        url, max_workers=workers, registry=registry, event_sink=finished, commit_observer=observer
    ) as worker:
        clock = Clock()
        added = await drive(worker, n, clock.wall + args.seconds)
        if workers:
            await finished.wait_for(added, timeout=args.seconds + 60)
        return clock.measured(added)


def run_huey(mode: str, n: int, directory: Path, seconds: float) -> Measured:
    """Huey's twin of `mode`: enqueue alone (sequential), else enqueue and process."""
    huey = SqliteHuey(filename=str(directory / "huey.db"), fsync=True)
    finished = [0]
    all_done = threading.Event()
    lock = threading.Lock()

    @huey.task()
    def noop_task(payload: str) -> None:
        with lock:
            finished[0] += 1
            if finished[0] >= n:
                all_done.set()

    consumer = None
    if mode != "sequential":
        consumer = huey.create_consumer(workers=1, worker_type="thread", initial_delay=0.001)
        consumer.start()  # workers and scheduler threads, without run()'s signal handlers
    clock = Clock()
    added, deadline = 0, clock.wall + seconds
    while added < n and time.perf_counter() < deadline:
        noop_task(PAYLOAD)
        added += 1
    if consumer is not None:
        n = added
        while finished[0] < n and not all_done.wait(0.05):
            pass
    result = clock.measured(added)
    if consumer is not None:
        consumer.stop(graceful=True)
    return result


def one_round(
    mode: str, n: int, args: argparse.Namespace, huey_first: bool
) -> tuple[Measured, Measured]:
    """litetask's and Huey's run of `mode`, in the order given (alternated by rounds)."""

    def huey() -> Measured:
        with tempfile.TemporaryDirectory() as tmp:
            return run_huey(mode, n, Path(tmp), args.seconds)

    def ours() -> Measured:
        with tempfile.TemporaryDirectory() as tmp:
            return asyncio.run(run_litetask(mode, n, Path(tmp), args))

    if huey_first:
        theirs = huey()
        return ours(), theirs
    mine = ours()
    return mine, huey()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", default="sequential,producer,concurrent")
    parser.add_argument("--tasks", type=int, default=3000, help="per sequential phase")
    parser.add_argument("--concurrent-tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0, help="cap on each phase")
    parser.add_argument("--metrics", action="store_true")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print(f"rounds: {args.rounds}, metrics: {args.metrics}, payload {len(PAYLOAD)} bytes")
    print(
        f"{'mode':12}{'round':>6}{'litetask/s':>12}{'huey/s':>10}{'ratio':>8}"
        f"{'cpu µs/task':>14}{'huey':>8}"
    )
    for mode in modes:
        n = args.concurrent_tasks if mode == "concurrent" else args.tasks
        ratios = []
        for index in range(args.rounds):
            ours, theirs = one_round(mode, n, args, huey_first=index % 2 == 0)
            ratio = ours.per_second / theirs.per_second
            ratios.append(ratio)
            print(
                f"{mode:12}{index + 1:6}{ours.per_second:12,.0f}{theirs.per_second:10,.0f}"
                f"{ratio:8.2f}{ours.cpu_us:14.0f}{theirs.cpu_us:8.0f}"
            )
        median = statistics.median(ratios)
        verdict = "meets" if median >= TARGETS[mode] else "misses"
        print(f"{mode:12} median ratio {median:.2f}x ({verdict} the {TARGETS[mode]}x target)")


if __name__ == "__main__":
    main()
