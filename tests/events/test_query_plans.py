"""Replays by group and by task type read an index, not the tail of the log: a reconnect
costs the rows it returns, however many other events follow its Last-Event-ID. Checked
with SQLite's own planner on the statements the replay really sends."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

from sqlalchemy import event

from app.events.log import read_page
from app.worker.core import AsyncTaskWorker
from tests.events.test_log import log, rec


def plan(database_url: str, statement: str, parameters: Any) -> str:
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    return "\n".join(str(row[-1]) for row in rows)


async def statements_of(worker: AsyncTaskWorker, **filters: str) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def record(_c: object, _cur: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    engine = worker.engines.reader.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        await read_page(worker.engines.reader, 10, **filters)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return [s for s in seen if "FROM events" in s[0]]


async def test_group_and_task_type_replays_use_an_index(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    await log(worker, *(rec(f"t{i}", group=f"g{i % 3}") for i in range(30)))
    for filters, index in (
        ({"group": "g1"}, "ix_events_task_group"),
        ({"task_type": "echo"}, "ix_events_task_type"),
    ):
        statements = await statements_of(worker, **filters)
        assert statements, filters
        for statement in statements:
            text = plan(database_url, *statement)
            assert index in text, text
            assert "SCAN events" not in text and "TEMP B-TREE" not in text, text
    assert [e.task_id for e in (await read_page(worker.engines.reader, 10, group="g1")).events] == [
        "t10",
        "t13",
        "t16",
        "t19",
        "t22",
        "t25",
        "t28",
    ]
