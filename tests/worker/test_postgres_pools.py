"""Connections per process on PostgreSQL are bounded by its pools (docs/scaling.md,
"Connections and pool sizes"): one writer, `reader_pool_size` readers
(LITETASK_READER_POOL_SIZE) and one LISTEN connection, however many reads run at once."""

from __future__ import annotations

import asyncio
import threading

import psycopg

from app import AsyncTaskWorker, TaskRegistry
from bench.backlog import psycopg_url
from tests.pg_server import PostgresServer


def peak_connections(url: str, done: threading.Event) -> int:
    """The most connections to `url`'s database seen at once (this one aside) until `done`."""
    peak = 0
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        while not done.is_set():
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            peak = max(peak, int(row[0]) if row else 0)
    return peak


async def test_a_process_holds_no_more_connections_than_its_pools(
    postgres: PostgresServer, noop_registry: TaskRegistry
) -> None:
    url = postgres.create_database()
    async with AsyncTaskWorker(url, registry=noop_registry, reader_pool_size=2) as worker:
        ids = [await worker.add_task("noop") for _ in range(20)]
        await worker.wait_for_tasks(ids, timeout=30)
        done = threading.Event()
        sampling = asyncio.create_task(asyncio.to_thread(peak_connections, url, done))
        for _ in range(10):
            found = await asyncio.gather(*(worker.get_task_info(i) for i in ids * 5))
            assert all(info is not None for info in found)
        done.set()
        peak = await sampling
    assert 3 <= peak <= 1 + 2 + 1  # writer, 2 readers, LISTEN
