"""Scaling out: tasks/s drained by 1, 2 and 3 processes on PostgreSQL against 1 process on
SQLite, measured in the same run (docs/scaling.md).

    uv run python -m bench.scaling [--tasks 5000] [--processes 1 2 3] [--pool-size 4]

N no-op tasks are queued for later, K worker processes start, each its own
`AsyncTaskWorker` with a bounded pool (1 writer connection, `--pool-size` readers as
LITETASK_READER_POOL_SIZE sets them, and on PostgreSQL 1 LISTEN connection), and once all
of them are up the tasks become due at one moment (see `measure`); the figure is N divided
by the time from that moment to the last completion. Also the CPU per task, from that
moment on, of the worker processes and of PostgreSQL's server processes: it moves much less
than the rate with the machine's load. Needs the PostgreSQL binaries (it starts its own
server, as the tests do). Prints ratios against SQLite's single process, measured in the
same run, and the load average next to each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app import AsyncTaskWorker, TaskRegistry
from app.db.engine import DEFAULT_READER_POOL_SIZE, sync_url
from tests.conftest import free_loopback_port
from tests.pg_server import PostgresServer, start_postgres


async def noop() -> None:
    return None


def registry() -> TaskRegistry:
    found = TaskRegistry()
    found.register("noop", noop)
    return found


async def queue(url: str, n: int) -> None:
    """N tasks scheduled an hour ahead (released later by `release`)."""
    async with AsyncTaskWorker(url, registry=registry(), max_workers=1) as worker:
        worker.stop_starting()
        due = datetime.now(UTC) + timedelta(seconds=3600)
        await asyncio.gather(*(worker.add_task("noop", run_at=due) for _ in range(n)))


def release(url: str, *, notify: bool) -> float:
    """Make every queued task due now, and (PostgreSQL) tell the processes; that moment."""
    moment = time.time()
    engine = create_engine(sync_url(url), poolclass=NullPool)
    with engine.begin() as conn:
        update = text("UPDATE tasks SET run_at = :at WHERE status = 'scheduled'")
        conn.execute(update, {"at": int(moment * 1_000_000)})
        if notify:
            conn.execute(text("SELECT pg_notify('litetask_work', '')"))
    engine.dispose()
    return moment


def drain(url: str, stop: Event, ready: Queue[float], go: Event | None, pool_size: int) -> None:
    """One worker process; with `go` (SQLite), a put of one more task once `go` is set
    wakes its pool, whose claim stages the tasks just made due."""

    async def run() -> None:
        async with AsyncTaskWorker(url, registry=registry(), reader_pool_size=pool_size) as worker:
            ready.put(time.time())
            if go is not None:
                await asyncio.to_thread(go.wait)
                await worker.add_task("noop")
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (all their threads)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(server: PostgresServer | None) -> list[int]:
    """The PostgreSQL server's processes (the postmaster and its children), or none."""
    if server is None:
        return []
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(stat.parent.name))
    return [postmaster, *children]


@dataclass
class Drained:
    per_s: float
    client_us: float  # worker processes' CPU per task
    server_us: float  # PostgreSQL's CPU per task (its processes)


def measure(
    url: str, n: int, processes: int, pool_size: int, server: PostgresServer | None = None
) -> Drained:
    """Tasks/s drained by `processes` worker processes, and CPU per task from the moment
    the tasks were due to the last completion. The tasks are released once every process
    has started: on PostgreSQL a NOTIFY wakes the processes, as a put by another process
    would, and each claim stages what is due; on SQLite the one process puts one task more,
    which wakes its pool the same way."""
    asyncio.run(queue(url, n))
    postgres = server is not None
    context = multiprocessing.get_context("spawn")
    stop, ready, go = context.Event(), context.Queue(), None if postgres else context.Event()
    workers = [
        context.Process(target=drain, args=(url, stop, ready, go, pool_size))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=300)
    pids = [w.pid for w in workers if w.pid is not None]
    client, db = cpu_seconds(pids), cpu_seconds(server_pids(server))
    due = release(url, notify=postgres)
    if go is not None:
        go.set()
    wait_completed(url, n + (0 if postgres else processes))
    seconds = time.time() - due
    client, db = cpu_seconds(pids) - client, cpu_seconds(server_pids(server)) - db
    stop.set()
    for worker in workers:
        worker.join(30)
    return Drained(n / seconds, client / n * 1e6, db / n * 1e6)


def show(what: str, drained: Drained, baseline: float) -> None:
    print(
        f"{what}: {drained.per_s:,.0f} tasks/s, {drained.per_s / baseline:.2f}x SQLite; "
        f"CPU per task: workers {drained.client_us:,.0f} us, "
        f"PostgreSQL {drained.server_us:,.0f} us [{load()}]",
        flush=True,
    )


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
        show("SQLite, 1 process", sqlite, sqlite.per_s)
        for processes in options.processes:
            rate = measure(server.create_database(), n, processes, size, server)
            show(f"PostgreSQL, {processes} process(es)", rate, sqlite.per_s)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
