"""The hot queries are index lookups: a claim reads only the rows it takes, whatever the
backlog (DESIGN: nothing scans the table per task). Checked with SQLite's own planner."""

from __future__ import annotations

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


async def test_claims_and_next_due_use_the_partial_indexes(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    seen: list[tuple[str, Any]] = []

    def record(_c: object, _cur: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    for engine in (worker.engines.writer, worker.engines.reader.sync_engine):
        event.listen(engine, "before_cursor_execute", record)
    task_ids = [await worker.add_task("add", i, i) for i in range(3)]
    later = await worker.add_task("add", 1, 1, delay=3600)
    await worker.wait_for_tasks(task_ids, timeout=5)
    claims = [s for s in seen if "INDEXED BY ix_tasks_pending_order" in s[0]]
    next_due = [s for s in seen if "min(run_at)" in s[0]]
    assert claims and next_due
    claim_plan = plan(database_url, *claims[0])
    assert "ix_tasks_pending_order" in claim_plan
    assert "TEMP B-TREE" not in claim_plan
    assert "ix_tasks_pending_run_at" in plan(database_url, *next_due[0])
    assert await worker.cancel_task(later)


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
    assert list(counts) == [("pending", "add", 1)]
    (statement,) = [s for s in seen if "GROUP BY" in s[0]]
    assert "SEARCH tasks USING INDEX ix_tasks_status_seq (status=?)" in plan(
        database_url, *statement
    )
