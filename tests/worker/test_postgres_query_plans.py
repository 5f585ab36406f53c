"""On PostgreSQL too, a claim reads only the rows it takes, whatever the backlog (DESIGN:
nothing scans the table per task). Checked with PostgreSQL's planner on the statement the
writer really ran, in both plans a prepared statement may get: a custom plan (made for the
parameters' values) and a generic plan (made once for any values: psycopg prepares a
statement run 5 times, and PostgreSQL may then keep a generic plan, or be told to with
plan_cache_mode). A generic plan cannot see the LIMIT's value and guesses a tenth of the
table, which must not turn the claim into a scan of the backlog."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from app import AsyncTaskWorker, TaskRegistry
from bench.backlog import fill_pending, psycopg_url
from tests.pg_server import PostgresServer

from .test_query_plans import recording

BACKLOG = 50_000


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.create_database()


def as_prepared(statement: str, parameters: dict[str, Any]) -> tuple[str, list[Any]]:
    """psycopg's `%(name)s` statement as PREPARE's `$n` one, and the values in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"%\((\w+)\)s", number, statement), [parameters[n] for n in names]


def plans(url: str, statement: str, parameters: dict[str, Any]) -> dict[str, str]:
    """EXPLAIN of `statement` as a custom and as a generic plan (nothing is run)."""
    prepared, values = as_prepared(statement, parameters)
    found: dict[str, str] = {}
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        conn.execute(f"PREPARE claim AS {prepared}")
        marks = ", ".join(psycopg.sql.Literal(v).as_string(conn) for v in values)
        for mode in ("force_custom_plan", "force_generic_plan"):
            conn.execute(f"SET plan_cache_mode = {mode}")
            rows = conn.execute(f"EXPLAIN EXECUTE claim({marks})").fetchall()
            found[mode] = "\n".join(str(row[0]) for row in rows)
    return found


async def test_a_claim_reads_only_the_rows_it_takes_in_any_plan(
    pg_url: str, noop_registry: TaskRegistry
) -> None:
    async with AsyncTaskWorker(pg_url, registry=noop_registry) as worker:
        seen = recording(worker)
        await worker.wait_for_tasks([await worker.add_task("noop")], timeout=30)
    claims = [(s, p) for s, p in seen if s.startswith("UPDATE tasks") and "status = 'pending'" in s]
    assert claims, "no claim statement seen"
    fill_pending(pg_url, BACKLOG)
    for mode, plan in plans(pg_url, *claims[0]).items():
        assert "Index Scan using ix_tasks_pending_order" in plan, (mode, plan)
        assert "Limit" in plan, (mode, plan)
        assert "Seq Scan" not in plan, (mode, plan)
        assert "Sort" not in plan, (mode, plan)
