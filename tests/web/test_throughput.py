"""GET /stats/throughput: completed and failed tasks per minute over the last hour, for the
dashboard's sparkline. Counted from committed events while the service runs; what finished
before it started is read once from an index (never from the whole finished history)."""

from __future__ import annotations

import itertools
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.dialects import sqlite

from app.clock import now_us
from app.worker.throughput import finished_per_minute
from tests.conftest import ClientFactory
from tests.db.migration_rows import database_at
from tests.direct_sql import run_sql
from tests.web.helpers import submit, wait_done

MINUTE = timedelta(minutes=1)


async def run_some(client: httpx.AsyncClient, completed: int, failed: int) -> None:
    tasks = [await submit(client, "demo.add", args=[i, i]) for i in range(completed)]
    tasks += [await submit(client, "demo.fail", max_attempts=1) for _ in range(failed)]
    cancelled = await submit(client, "demo.sleep", delay=600)
    assert (await client.delete(f"/tasks/{cancelled['id']}")).status_code == 200
    for task in tasks:
        await wait_done(client, task["id"])


async def throughput(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/stats/throughput")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def totals(body: dict[str, Any]) -> tuple[int, int]:
    minutes = body["minutes"]
    return sum(m["completed"] for m in minutes), sum(m["failed"] for m in minutes)


async def test_an_hour_of_minutes_with_what_finished(client: httpx.AsyncClient) -> None:
    await run_some(client, completed=3, failed=2)
    body = await throughput(client)
    assert body["bucket_seconds"] == 60
    minutes = body["minutes"]
    assert len(minutes) == 60
    starts = [datetime.fromisoformat(m["start"]) for m in minutes]
    assert all(b - a == MINUTE for a, b in itertools.pairwise(starts))
    assert all(s.second == 0 and s.microsecond == 0 for s in starts)
    assert starts[-1] <= datetime.fromisoformat(body["now"]) < starts[-1] + MINUTE
    assert totals(body) == (3, 2)  # the cancelled task is neither
    assert (body["completed"], body["failed"]) == (3, 2)


async def test_what_finished_before_a_restart_still_counts(make_client: ClientFactory) -> None:
    async with make_client() as client:
        await run_some(client, completed=2, failed=1)
    async with make_client() as client:
        assert totals(await throughput(client)) == (2, 1)  # read from the rows, once
        await run_some(client, completed=1, failed=1)
        assert totals(await throughput(client)) == (3, 2)  # and counted live since


async def test_rows_older_than_the_hour_are_left_out(
    make_client: ClientFactory, fresh_database_url: str
) -> None:
    async with make_client() as client:
        await run_some(client, completed=2, failed=0)
    run_sql(fresh_database_url, "UPDATE tasks SET completed_at = completed_at - 3600000000")
    async with make_client() as client:
        assert totals(await throughput(client)) == (0, 0)


def test_the_history_is_read_from_the_completed_at_index(tmp_path: Path) -> None:
    """With a million finished rows the read costs the rows of the last hour only: a search
    of ix_tasks_finished (which holds the status too), never a scan of the table."""
    database = tmp_path / "plan.db"
    database_at(database, "head", rows=False)
    statement = finished_per_minute(now_us() - 3600 * 10**6, now_us()).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    with closing(sqlite3.connect(database)) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
    plan = "\n".join(str(row[-1]) for row in rows)
    assert "SEARCH tasks USING COVERING INDEX ix_tasks_finished" in plan, plan
    assert "SCAN" not in plan, plan
