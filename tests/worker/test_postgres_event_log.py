"""The event log on PostgreSQL: ids in commit order need a lock held from the first id to
the commit, so what a transaction does while holding it decides how long every other
process waits (docs/scaling.md). Its events go in, in order, in one statement with the lock
and the NOTIFYs: nothing but the COMMIT follows it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from app import AsyncTaskWorker, TaskRegistry
from app.db.postgres.writer import EVENT_LOG_LOCK
from tests.pg_server import PostgresServer, postgres_sql


def transactions(worker: AsyncTaskWorker) -> list[list[str]]:
    """The statements of each transaction the writer commits from now on, COMMIT included."""
    found: list[list[str]] = [[]]

    def statement(_c: object, _cur: object, sql: str, params: Any, *_: object) -> None:
        found[-1].append(sql if "pg_advisory_xact_lock" not in sql else f"LOCK {params}")

    def commit(_conn: object) -> None:
        found[-1].append("COMMIT")
        found.append([])

    event.listen(worker.engines.writer, "before_cursor_execute", statement)
    event.listen(worker.engines.writer, "commit", commit)
    return found


async def test_the_log_lock_is_held_for_one_statement_and_the_commit(
    postgres: PostgresServer, noop_registry: TaskRegistry
) -> None:
    url = postgres.create_database()
    async with AsyncTaskWorker(url, registry=noop_registry) as worker:
        seen = transactions(worker)
        ids = await worker.add_tasks("noop", [(i,) for i in range(20)])
        assert await worker.wait_for_tasks(ids, timeout=30) == list(range(20))
    locking = [t for t in seen if any(str(EVENT_LOG_LOCK) in s for s in t)]
    assert locking, "no transaction logged events"
    for statements in locking:
        at = next(i for i, s in enumerate(statements) if str(EVENT_LOG_LOCK) in s)
        assert statements[at + 1 :] == ["COMMIT"], statements
    queued = postgres_sql(url, "SELECT task_id FROM events WHERE type = 'task.queued' ORDER BY id")
    assert [row[0] for row in queued] == ids  # one transaction: ids in the order given
