"""Scaling out: tasks/s drained by 1, 2 and 3 processes on PostgreSQL against 1 process on
SQLite, measured in the same run (docs/scaling.md).

    uv run python -m bench.scaling [--tasks 5000]

N no-op tasks are queued for one moment a few seconds ahead (so every process has started
and all of them begin together), then K worker processes, each its own `AsyncTaskWorker`
(its own writer connection and reader pool), drain the queue; the figure is N divided by
the time from that moment to the last completion. Needs the PostgreSQL binaries (it starts
its own server, as the tests do). Prints ratios against SQLite's single process.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.synchronize
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from app import AsyncTaskWorker, TaskRegistry
from app.db.engine import sync_url
from tests.conftest import free_loopback_port
from tests.pg_server import start_postgres

START_AFTER = 6.0  # seconds between the end of queueing and the moment the tasks are due


async def noop() -> None:
    return None


def registry() -> TaskRegistry:
    found = TaskRegistry()
    found.register("noop", noop)
    return found


async def queue(url: str, n: int) -> datetime:
    """N tasks due together START_AFTER seconds after the last is queued; that moment."""
    async with AsyncTaskWorker(url, registry=registry(), max_workers=1) as worker:
        worker.stop_starting()
        due = datetime.now(UTC) + timedelta(seconds=3600)
        for _ in range(n):
            await worker.add_task("noop", run_at=due)
    due = datetime.now(UTC) + timedelta(seconds=START_AFTER)
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        moment = int(due.timestamp() * 1_000_000)
        conn.execute(
            text("UPDATE tasks SET run_at = :at WHERE status = 'scheduled'"), {"at": moment}
        )
    engine.dispose()
    return due


def drain(url: str, stop: multiprocessing.synchronize.Event) -> None:
    async def run() -> None:
        async with AsyncTaskWorker(url, registry=registry()):
            await asyncio.to_thread(stop.wait)

    asyncio.run(run())


def completed(url: str) -> int:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            statement = text("SELECT count(*) FROM tasks WHERE status = 'completed'")
            return int(conn.execute(statement).scalar() or 0)
    finally:
        engine.dispose()


def measure(url: str, n: int, processes: int) -> float:
    """Tasks/s drained by `processes` worker processes."""
    due = asyncio.run(queue(url, n))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    workers = [context.Process(target=drain, args=(url, stop)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    while completed(url) < n:
        time.sleep(0.05)
    seconds = time.time() - due.timestamp()
    stop.set()
    for worker in workers:
        worker.join(30)
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    n = parser.parse_args().tasks
    server = start_postgres(free_loopback_port())
    try:
        with tempfile.TemporaryDirectory() as directory:
            sqlite = measure(f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}", n, 1)
        print(f"SQLite, 1 process: {sqlite:,.0f} tasks/s (baseline)")
        for processes in (1, 2, 3):
            rate = measure(server.create_database(), n, processes)
            print(
                f"PostgreSQL, {processes} process(es): {rate:,.0f} tasks/s, "
                f"{rate / sqlite:.2f}x SQLite"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
