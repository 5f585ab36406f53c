"""Scaling out: tasks/s drained by 1, 2 and 3 processes on PostgreSQL against 1 process on
SQLite, measured in the same run (docs/scaling.md).

    uv run python -m bench.scaling [--tasks 5000] [--processes 1 2 3] [--pool-size 4]

N no-op tasks are queued for one moment a few seconds ahead (so every process has started
and all of them begin together), then K worker processes, each its own `AsyncTaskWorker`
with a bounded pool (1 writer connection, `--pool-size` readers as LITETASK_READER_POOL_SIZE
sets them, and on PostgreSQL 1 LISTEN connection), drain the queue; the figure is N
divided by the time from that moment to the last completion. Needs the PostgreSQL binaries
(it starts its own server, as the tests do). Prints ratios against SQLite's single process,
measured in the same run, and the load average next to each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.synchronize
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app import AsyncTaskWorker, TaskRegistry
from app.db.engine import DEFAULT_READER_POOL_SIZE, sync_url
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


def drain(url: str, stop: multiprocessing.synchronize.Event, pool_size: int) -> None:
    async def run() -> None:
        async with AsyncTaskWorker(url, registry=registry(), reader_pool_size=pool_size):
            await asyncio.to_thread(stop.wait)

    asyncio.run(run())


def wait_completed(url: str, n: int) -> None:
    """Until `n` tasks are completed (polled on one connection every 50 ms)."""
    engine = create_engine(sync_url(url), poolclass=NullPool)
    statement = text("SELECT count(*) FROM tasks WHERE status = 'completed'")
    try:
        with engine.connect() as conn:
            while int(conn.execute(statement).scalar() or 0) < n:
                conn.rollback()
                time.sleep(0.05)
    finally:
        engine.dispose()


def measure(url: str, n: int, processes: int, pool_size: int) -> float:
    """Tasks/s drained by `processes` worker processes."""
    due = asyncio.run(queue(url, n))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    workers = [context.Process(target=drain, args=(url, stop, pool_size)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    wait_completed(url, n)
    seconds = time.time() - due.timestamp()
    stop.set()
    for worker in workers:
        worker.join(30)
    return n / seconds


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pool-size", type=int, default=DEFAULT_READER_POOL_SIZE)
    options = parser.parse_args()
    n, size = options.tasks, options.pool_size
    print(f"{n:,} no-op tasks; per process 1 writer + {size} readers (+1 LISTEN on PostgreSQL)")
    server = start_postgres(free_loopback_port())
    try:
        with tempfile.TemporaryDirectory() as directory:
            sqlite_url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
            sqlite = measure(sqlite_url, n, 1, size)
        print(f"SQLite, 1 process: {sqlite:,.0f} tasks/s (baseline) [{load()}]", flush=True)
        for processes in options.processes:
            rate = measure(server.create_database(), n, processes, size)
            print(
                f"PostgreSQL, {processes} process(es): {rate:,.0f} tasks/s, "
                f"{rate / sqlite:.2f}x SQLite [{load()}]",
                flush=True,
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
