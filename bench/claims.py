"""Claims with a large schedule: tasks held for later must not slow down the tasks due now.

    uv run python -m bench.claims [--scheduled 200000] [--claims 2000] [--tasks 2000]

Two databases in the same run: one empty, one holding `--scheduled` tasks due in an hour at
a *better* priority than the work that is due (the worst case for a claim that reads a
priority-ordered index of every queued row). On each:

- end to end: `--tasks` no-op tasks submitted through AsyncTaskWorker and run (10 workers);
- the claim itself: `--claims` claims of one due row each, the ClaimTasks write op applied in
  a transaction of its own on the writer's connection, timed from its first statement to
  its last (the time it holds SQLite's write lock, without the commit's fsync).

Prints both as ratios loaded/empty (target for the claim: within ~1.5x of empty).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert

from app import AsyncTaskWorker, TaskRegistry
from app.cache.serialization import packb
from app.clock import now_us
from app.db.engine import create_engines
from app.db.tables import tasks
from app.events.log import EventType, TaskEvent
from app.worker.claims import ClaimRequest, ClaimTasks

LATER_PRIORITY = -10  # better than the due work (lower runs first)
DUE_PRIORITY = 0


@dataclass
class Measured:
    end_to_end_per_s: float
    claim_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.claim_ms)

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.claim_ms, n=100)[98]


async def noop() -> None:
    return None


async def _submit(
    worker: AsyncTaskWorker, n: int, priority: int, delay: float | None = None
) -> list[str]:
    ids: list[str] = []
    for chunk in range(0, n, 1000):
        size = min(1000, n - chunk)
        batch = [worker.add_task("noop", priority=priority, delay=delay) for _ in range(size)]
        ids += await asyncio.gather(*batch)
    return ids


async def end_to_end(url: str, scheduled: int, n: int) -> float:
    """Fill the schedule, then time `n` due no-op tasks from the first submit to the last
    completion (tasks/s)."""
    registry = TaskRegistry()
    registry.register("noop", noop)
    finished, done = 0, asyncio.Event()

    def count(events: list[TaskEvent]) -> None:
        nonlocal finished
        finished += sum(1 for e in events if e.type == EventType.COMPLETED)
        if finished >= n:
            done.set()

    async with AsyncTaskWorker(url, registry=registry, event_sink=count) as worker:
        await _submit(worker, scheduled, delay=3600, priority=LATER_PRIORITY)
        started = time.perf_counter()
        await _submit(worker, n, priority=DUE_PRIORITY)
        await asyncio.wait_for(done.wait(), timeout=600)
        return n / (time.perf_counter() - started)


def claim_latencies(url: str, n: int) -> list[float]:
    """Insert `n` due rows, then claim them one per transaction; ms each claim took."""
    engines = create_engines(url)
    writer = engines.writer
    packed_args, packed_kwargs = packb([]), packb({})
    due = now_us() - 1_000_000
    rows = [
        {
            "id": uuid.uuid4().hex,
            "task_type": "noop",
            "status": "pending",
            "priority": DUE_PRIORITY,
            "args": packed_args,
            "kwargs": packed_kwargs,
            "metadata": {},
            "progress": 0.0,
            "attempts": 0,
            "max_attempts": 1,
            "interruptions": 0,
            "created_at": due,
            "run_at": due,
            "from_cache": False,
        }
        for _ in range(n)
    ]
    request = ClaimRequest(owner="bench", lease_seconds=300, start=1)
    took: list[float] = []
    try:
        with writer.connect() as conn:
            with conn.begin():
                conn.execute(insert(tasks), rows)
            for _ in range(n):
                with conn.begin():
                    began = time.perf_counter()
                    claim = ClaimTasks(request).apply(conn)
                    took.append((time.perf_counter() - began) * 1000)
                assert [c.priority for c in claim.started] == [DUE_PRIORITY], "a wrong row"
    finally:
        asyncio.run(engines.dispose())
    return took


def measure(directory: Path, scheduled: int, options: argparse.Namespace) -> Measured:
    url = f"sqlite+aiosqlite:///{directory / 'claims.db'}"
    per_s = asyncio.run(end_to_end(url, scheduled, options.tasks))
    return Measured(per_s, claim_latencies(url, options.claims))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scheduled", type=int, default=200_000)
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=2000)
    options = parser.parse_args()
    results: dict[str, Measured] = {}
    for name, scheduled in (("empty", 0), ("scheduled", options.scheduled)):
        with tempfile.TemporaryDirectory() as tmp:
            results[name] = measure(Path(tmp), scheduled, options)
    empty, loaded = results["empty"], results["scheduled"]
    print(f"scheduled rows (due in 1 h, priority {LATER_PRIORITY}): {options.scheduled:,}")
    print(f"{'':22}{'claim median ms':>16}{'claim p99 ms':>14}{'end-to-end/s':>14}")
    for name, r in results.items():
        print(f"{name:22}{r.median:16.4f}{r.p99:14.4f}{r.end_to_end_per_s:14,.0f}")
    print(
        f"ratio scheduled/empty: claim median {loaded.median / empty.median:.2f}x, "
        f"p99 {loaded.p99 / empty.p99:.2f}x (target <= ~1.5x); "
        f"end-to-end {loaded.end_to_end_per_s / empty.end_to_end_per_s:.2f}x"
    )


if __name__ == "__main__":
    main()
