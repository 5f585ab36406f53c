"""Claim latency with a large backlog of pending tasks: a claim takes the best K rows in
O(K), whatever the backlog (docs/scaling.md, docs/performance.md).

    uv run python -m bench.backlog [--backend postgresql] [--backlog 1000000] [--small 1000]
                                   [--claims 50] [--take 10]

Two databases in the same run, migrated with the real schema: one holding `--backlog`
pending tasks, one holding `--small`. They are filled by one server-side INSERT ... SELECT
(generate_series on PostgreSQL, a recursive CTE on SQLite) through the real tables, so the
task-count triggers see every row (`task_counts` stays right), then ANALYZEd as autovacuum
would. Then `--claims` claims of `--take` rows each go through the real claim code path (the
service's group-commit writer applying ClaimTasks: app/worker/postgres/claims.py on
PostgreSQL, app/worker/claims.py on SQLite, with their events, NOTIFY and commit),
alternating between the two databases so that both see the same machine load. Prints the
median and p90 per claim and the ratio backlog/small (O(taken): ~1x), and the claim
statement's plan: on PostgreSQL EXPLAIN (ANALYZE, BUFFERS) on each database (rolled back),
whose buffer counts do not grow with the backlog, and the generic plan's shape.

PostgreSQL needs its binaries (the bench starts its own server, as the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.dialects import postgresql

from app.db.engine import create_engines, sqlite_path
from app.db.migrate import upgrade
from app.db.writer import GroupCommitWriter
from app.worker.claims import ClaimRequest, ClaimTasks
from app.worker.postgres.backend import build_writer
from app.worker.postgres.claims import take_statement
from tests.conftest import free_loopback_port
from tests.pg_server import start_postgres

COLUMNS = (
    "id, task_type, status, priority, args, kwargs, metadata, progress, attempts, "
    "max_attempts, interruptions, created_at, run_at, from_cache"
)
PG_FILL = (
    f"INSERT INTO tasks ({COLUMNS}) SELECT md5(g::text), 'noop', 'pending', 0, "
    "'\\x90'::bytea, '\\x80'::bytea, '{}'::json, 0, 0, 1, 0, g, g, false "
    "FROM generate_series(1, %(n)s) AS g"
)
SQLITE_FILL = (
    "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n) "
    f"INSERT INTO tasks ({COLUMNS}) SELECT printf('%032x', x), 'noop', 'pending', 0, "
    "x'90', x'80', '{}', 0, 0, 1, 0, x, x, 0 FROM g"
)


def psycopg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def fill_pending(url: str, n: int, *, analyze: bool = True) -> None:
    """Add `n` due pending no-op tasks in one server-side statement (a migrated database)."""
    path = sqlite_path(url)
    if path is None:
        with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
            conn.execute(PG_FILL, {"n": n})
            if analyze:
                conn.execute("VACUUM ANALYZE tasks")
        return
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(SQLITE_FILL, {"n": n})
        if analyze:
            conn.execute("ANALYZE")


async def open_writer(url: str) -> tuple[GroupCommitWriter, Any]:
    """The service's writer on `url` (migrated), and the engines to dispose of after."""
    engines = create_engines(url)
    writer = build_writer(engines, 3)
    await writer.start()
    return writer, engines


async def timed_claims(urls: dict[str, str], claims: int, take: int) -> dict[str, list[float]]:
    """Milliseconds per claim of `take` rows on each database, taking turns."""
    opened = {name: await open_writer(url) for name, url in urls.items()}
    took: dict[str, list[float]] = {name: [] for name in urls}
    request = ClaimRequest(owner="bench", lease_seconds=300, start=take)
    try:
        for _ in range(claims):
            for name, (writer, _engines) in opened.items():
                began = time.perf_counter()
                claim = await writer.run(ClaimTasks(request))
                took[name].append((time.perf_counter() - began) * 1000)
                assert len(claim.started) == take, f"{name}: took {len(claim.started)}"
    finally:
        for writer, engines in opened.values():
            await writer.stop()
            await engines.dispose()
    return took


def pg_claim_sql() -> tuple[str, dict[str, Any]]:
    """The PostgreSQL claim statement (app/worker/postgres/claims.py) and parameters."""
    compiled = take_statement(False, True).compile(dialect=postgresql.dialect())
    values = {"b_now": time.time_ns() // 1000, "b_limit": 10, "b_owner": "x", "b_lease": 0}
    return str(compiled), compiled.construct_params(values)


def pg_explain(url: str, mode: str = "auto") -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a claim of 10 rows under plan_cache_mode `mode`
    (rolled back)."""
    statement, params = pg_claim_sql()
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", number, statement)
    with psycopg.connect(psycopg_url(url)) as conn:
        conn.execute(f"PREPARE claim AS {prepared}")
        conn.execute(f"SET plan_cache_mode = {mode}")
        marks = ", ".join(psycopg.sql.Literal(params[n]).as_string(conn) for n in names)
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE claim({marks})").fetchall()
        conn.rollback()
    return "\n".join(str(row[0]) for row in rows)


def buffers(plan: str, node: str = "Update on tasks") -> int:
    """Shared buffers (hit + read) that the first plan node named `node` touched: the whole
    claim ("Update on tasks", index upkeep of the rows taken included) or the read of the
    rows to take ("Limit")."""
    lines = plan.splitlines()
    start = next((i for i, line in enumerate(lines) if node in line), None)
    found = None if start is None else re.search(r"Buffers: shared (.*)", lines[start + 1])
    counts = dict(re.findall(r"(\w+)=(\d+)", found.group(1))) if found else {}
    return int(counts.get("hit", 0)) + int(counts.get("read", 0))


@contextmanager
def databases(backend: str, directory: Path) -> Iterator[dict[str, str]]:
    """Two empty databases on `backend`: "small" and "backlog"."""
    if backend == "sqlite":
        yield {n: f"sqlite+aiosqlite:///{directory / n}.db" for n in ("small", "backlog")}
        return
    server = start_postgres(free_loopback_port())
    try:
        yield {n: server.create_database() for n in ("small", "backlog")}
    finally:
        server.stop()


def report(backend: str, urls: dict[str, str], took: dict[str, list[float]]) -> None:
    def p90(values: list[float]) -> float:
        return statistics.quantiles(values, n=10)[8]

    for name, values in took.items():
        print(
            f"{backend} {name:8} claim median {statistics.median(values):7.3f} ms, "
            f"p90 {p90(values):7.3f} ms"
        )
    small, loaded = took["small"], took["backlog"]
    median = statistics.median(loaded) / statistics.median(small)
    print(
        f"{backend} ratio backlog/small: median {median:.2f}x, p90 {p90(loaded) / p90(small):.2f}x"
    )
    if backend == "postgresql":
        plans = {name: pg_explain(url) for name, url in urls.items()}
        for node in ("Limit", "Update on tasks"):
            counts = ", ".join(f"{n} {buffers(p, node)}" for n, p in plans.items())
            print(f"buffers of one claim of 10 rows, node {node!r}: {counts}")
        print("EXPLAIN (ANALYZE, BUFFERS), backlog database:\n" + plans["backlog"])
        generic = pg_explain(urls["backlog"], "force_generic_plan")
        print("generic plan (plan_cache_mode=force_generic_plan), backlog database:\n" + generic)


def run(backend: str, options: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, databases(backend, Path(tmp)) as urls:
        sizes = {"small": options.small, "backlog": options.backlog}
        for name, url in urls.items():
            asyncio.run(_migrate(url))
            began = time.perf_counter()
            fill_pending(url, sizes[name])
            seconds = time.perf_counter() - began
            print(f"{backend} {name}: {sizes[name]:,} pending rows in {seconds:.1f} s")
        took = asyncio.run(timed_claims(urls, options.claims, options.take))
        report(backend, urls, took)


async def _migrate(url: str) -> None:
    engines = create_engines(url)
    try:
        await upgrade(engines.writer)
    finally:
        await engines.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument("--take", type=int, default=10)
    options = parser.parse_args()
    backends = ("postgresql", "sqlite") if options.backend == "both" else (options.backend,)
    for backend in backends:
        run(backend, options)


if __name__ == "__main__":
    main()
