"""Counts by status cost the same whatever the finished history: /health, /health/ready,
/metrics and the dashboard's first paint do as much database work over 20,000 finished
tasks as over 200 (SQLite's own instruction count), the counts stay right through every
kind of change, and the listings stay index reads."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from app.worker.core import AsyncTaskWorker
from app.worker.status import TaskStatus
from tests.conftest import lifespan, settings_for
from tests.history import add_finished
from tests.web.helpers import submit, wait_done, wait_status

FIRST_PAINT = ("/", "/health", "/tasks?limit=50", "/task-types")
READS = (
    *FIRST_PAINT,
    "/health/ready",
    "/metrics",
    "/tasks?status=pending&limit=50",
    "/tasks?status=completed&limit=50",
)
STEP = 100  # SQLite instructions per progress callback


class Steps:
    """Counts the SQLite virtual-machine instructions the reader connections run."""

    def __init__(self) -> None:
        self.value = 0

    def tick(self) -> int:
        self.value += STEP
        return 0  # go on


async def count_steps(engine: AsyncEngine, steps: Steps) -> None:
    """Put the counter on every connection of the reader pool (all checked out at once)."""
    size = engine.pool.size()  # type: ignore[attr-defined]
    connections = [await engine.connect() for _ in range(size)]
    for conn in connections:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.set_progress_handler(steps.tick, STEP)  # type: ignore[union-attr]
    for conn in connections:
        await conn.close()


Serving = tuple[httpx.AsyncClient, AsyncTaskWorker]


Serving = tuple[httpx.AsyncClient, AsyncTaskWorker]


@asynccontextmanager
async def service(directory: Path, **overrides: Any) -> AsyncIterator[Serving]:
    """The app on `directory`/litetask.db (made when missing), pruning left out."""
    await asyncio.to_thread(directory.mkdir, exist_ok=True)
    settings = settings_for(directory, prune_interval=3600.0, **overrides)
    async with lifespan(create_app(settings)) as running, running.client() as client:
        yield client, running.state["worker"]


async def work_per_read(directory: Path, finished: int) -> dict[str, int]:
    """The reader instructions each read costs with `finished` tasks of history."""
    async with service(directory):
        pass  # migrated
    add_finished(directory / "litetask.db", finished)
    steps = Steps()
    async with service(directory) as (client, worker):
        await submit(client, "demo.add", args=[1, 2], delay=3600)
        await count_steps(worker.engines.reader, steps)
        work: dict[str, int] = {}
        for path in READS:
            before = steps.value
            assert (await client.get(path)).status_code == 200, path
            work[path] = steps.value - before
    return work


async def test_reads_cost_the_same_over_a_hundred_times_the_history(tmp_path: Path) -> None:
    small = await work_per_read(tmp_path / "small", 200)
    large = await work_per_read(tmp_path / "large", 20_000)
    for path in READS:
        assert large[path] <= small[path] * 1.2 + 10 * STEP, (path, small, large)


def counted(database: Path) -> dict[str, int]:
    """Counts by status as a full scan finds them (what the counters must equal)."""
    with closing(sqlite3.connect(database)) as conn:
        rows = conn.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall()
    found = dict(rows)
    return {s.value: found.get(s.value, 0) for s in TaskStatus}


async def test_counts_stay_right_through_every_change(tmp_path: Path) -> None:
    database = tmp_path / "litetask.db"

    async def check(client: httpx.AsyncClient) -> None:
        assert (await client.get("/health")).json()["queue"] == counted(database)

    async with service(tmp_path, max_attempts=2, retry_backoff=0.01) as (client, _):
        await check(client)
        done = await submit(client, "demo.add", args=[1, 2])
        failed = await submit(client, "demo.fail")
        later = await submit(client, "demo.add", args=[1, 2], delay=3600)
        running = await submit(client, "demo.sleep", kwargs={"seconds": 60})
        await wait_done(client, done["id"])
        await wait_done(client, failed["id"])
        await wait_status(client, running["id"], "running")
        await check(client)
        await client.delete(f"/tasks/{later['id']}")
        await client.delete(f"/tasks/{running['id']}")
        await wait_done(client, running["id"])
        await check(client)
        await client.post(f"/tasks/{failed['id']}/retry")
        await wait_done(client, failed["id"])
        await check(client)
    add_finished(database, 30, status="failed")  # another program's writes count too
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("UPDATE tasks SET status = 'cancelled' WHERE id = 'failed-10'")
        conn.execute("DELETE FROM tasks WHERE id IN ('failed-11', 'failed-12')")
    async with service(tmp_path) as (client, _):
        await check(client)


def plan(database: Path, statement: str, parameters: Any) -> str:
    with closing(sqlite3.connect(database)) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    return "\n".join(str(row[-1]) for row in rows)


def recording(engine: AsyncEngine) -> tuple[list[tuple[str, Any]], Callable[[], None]]:
    seen: list[tuple[str, Any]] = []

    def record(_c: object, _cur: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_listings_are_index_reads_over_a_long_history(tmp_path: Path) -> None:
    database = tmp_path / "litetask.db"
    async with service(tmp_path):
        pass
    add_finished(database, 20_000)
    async with service(tmp_path) as (client, worker):
        page = (await client.get("/tasks?limit=50")).json()
        seen, stop = recording(worker.engines.reader)
        for path in (
            "/tasks?limit=50",
            "/tasks?status=completed&limit=50",
            "/tasks?status=pending&limit=50",
            f"/tasks?status=completed&limit=50&cursor={page['next_cursor']}",
        ):
            assert (await client.get(path)).status_code == 200
        stop()
    listings = [s for s in seen if "ORDER BY tasks.seq DESC" in s[0]]
    assert len(listings) == 4
    plans = [plan(database, *listing) for listing in listings]
    assert all("TEMP B-TREE" not in p for p in plans), plans
    assert plans[0] == "SCAN tasks"  # rowid order, newest first: stops after 51 rows
    for filtered in plans[1:]:
        assert "SEARCH tasks USING INDEX ix_tasks_status_seq (status=?" in filtered, filtered
