"""The hot queries are index lookups: a claim reads only the rows it takes, whatever the
backlog (DESIGN: nothing scans the table per task). Checked with SQLite's own planner."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from typing import Any

from sqlalchemy import event

from app import AsyncTaskWorker
from app.worker.store import TaskStore


def plan(database_url: str, statement: str, parameters: Any) -> str:
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    return "\n".join(str(row[-1]) for row in rows)


def vm_steps(database_url: str, statements: list[tuple[str, Any]]) -> int:
    """How many SQLite VM instructions `statements` take (in a transaction rolled back): the
    work they do, whatever the machine's speed."""
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.set_progress_handler(step, 1)
        for statement, parameters in statements:
            conn.execute(statement, parameters).fetchall()
        conn.set_progress_handler(None, 1)
        conn.execute("ROLLBACK")
    return steps


def recording(worker: AsyncTaskWorker) -> list[tuple[str, Any]]:
    """Every statement the worker runs from now on, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_c: object, _cur: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    for engine in (worker.engines.writer, worker.engines.reader.sync_engine):
        event.listen(engine, "before_cursor_execute", record)
    return seen


async def test_claims_and_the_stager_use_the_partial_indexes(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    seen = recording(worker)
    task_ids = [await worker.add_task("add", i, i) for i in range(3)]
    later = await worker.add_task("add", 1, 1, delay=3600)
    await worker.wait_for_tasks(task_ids, timeout=5)
    claims = [s for s in seen if "INDEXED BY ix_tasks_pending_order" in s[0]]
    stages = [s for s in seen if s[0].startswith("UPDATE") and "ix_tasks_scheduled" in s[0]]
    next_time = [s for s in seen if "min(run_at)" in s[0] and "ix_tasks_scheduled" in s[0]]
    assert claims and stages and next_time
    claim_plan = plan(database_url, *claims[0])
    assert "ix_tasks_pending_order" in claim_plan
    assert "TEMP B-TREE" not in claim_plan
    assert "run_at <=" not in claims[0][0]  # every pending row is due
    stage_plan = plan(database_url, *stages[0])
    assert "SEARCH tasks USING INDEX ix_tasks_scheduled (run_at<?)" in stage_plan
    assert "TEMP B-TREE" not in stage_plan
    assert "ix_tasks_scheduled" in plan(database_url, *next_time[0])
    assert await worker.cancel_task(later)


async def test_a_claim_reads_no_scheduled_row(worker: AsyncTaskWorker, database_url: str) -> None:
    """2,000 tasks for later at a better priority add nothing to what a claim reads: it
    takes the due row without stepping over them (it did: every pending row was in the
    claim's index, due or not)."""
    seen = recording(worker)
    await worker.wait_for_tasks([await worker.add_task("add", 1, 1)], timeout=5)
    taken = {s: p for s, p in seen if s.startswith("UPDATE") and "INDEXED BY ix_tasks_" in s}
    claim = list(taken.items())
    assert any("ix_tasks_pending_order" in s for s, _ in claim)
    empty = vm_steps(database_url, claim)
    later = [worker.add_task("add", i, i, priority=-1, delay=3600) for i in range(2000)]
    await asyncio.gather(*later)
    assert vm_steps(database_url, claim) <= empty + 10


async def test_metrics_reads_search_the_active_rows_only(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    """A scrape counts the active tasks by type over the status index, never by reading the
    finished history (which grows with every task until retention prunes it)."""
    seen: list[tuple[str, Any]] = []

    def record(_c: object, _cur: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    await worker.add_task("add", 1, 1, delay=3600)
    event.listen(worker.engines.reader.sync_engine, "before_cursor_execute", record)
    counts = await TaskStore(worker.engines.reader).active_counts()
    assert list(counts) == [("scheduled", "add", 1)]
    (statement,) = [s for s in seen if "GROUP BY" in s[0]]
    assert "SEARCH tasks USING INDEX ix_tasks_status_seq (status=?)" in plan(
        database_url, *statement
    )
