"""The PostgreSQL fixture and the migrations on PostgreSQL (tests/pg_server.py): a real
server, the same Alembic scripts, task counts kept by triggers."""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from app import AsyncTaskWorker, TaskRegistry
from app.db.engine import sync_url
from app.db.migrate import alembic_config, upgrade_sync
from tests.pg_server import PostgresServer, postgres_sql

TABLES = {"tasks", "task_attempts", "events", "owners", "cache_entries", "service_state"}


def test_the_server_is_real_and_runs_unprivileged(postgres: PostgresServer) -> None:
    (version,) = postgres_sql(postgres.admin_url(), "SHOW server_version_num")[0]
    assert int(str(version)) >= 150000
    owner = pwd.getpwuid(Path(postgres.data).stat().st_uid).pw_name
    assert owner != "root" or os.geteuid() != 0


def test_migrations_reach_head_and_go_back_down(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    engine = create_engine(sync_url(url))
    try:
        upgrade_sync(engine)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert postgres_sql(url, "SELECT version_num FROM alembic_version") == [(head,)]
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert "task_counts" in inspect(engine).get_view_names()
        with engine.connect() as conn:
            command.downgrade(alembic_config(conn), "base")
            conn.commit()
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade_sync(engine)  # and up again
    finally:
        engine.dispose()


async def test_counts_follow_every_status_change_and_survive_folding(
    postgres: PostgresServer,
) -> None:
    url = postgres.create_database()
    registry = TaskRegistry()

    async def double(x: int) -> int:
        return 2 * x

    registry.register("double", double)
    async with AsyncTaskWorker(url, registry=registry, heartbeat_interval=0.2) as worker:
        ids = [await worker.add_task("double", i) for i in range(30)]
        await worker.add_task("double", 1, delay=3600)
        assert await worker.wait_for_tasks(ids, timeout=10) == [2 * i for i in range(30)]
        counts = await worker.queue_depth()
        assert (counts["completed"], counts["scheduled"], counts["pending"]) == (30, 1, 0)
        deltas = "SELECT count(*) FROM task_count_deltas"
        before = postgres_sql(url, deltas)[0][0]
        # Heartbeats fold the deltas into one row per status, counts unchanged.
        for _ in range(100):
            if postgres_sql(url, deltas)[0][0] < before:
                break
            await worker.get_task_info(ids[0])
            await asyncio.sleep(0.05)
        assert int(str(postgres_sql(url, deltas)[0][0])) <= len(counts)
        assert await worker.queue_depth() == counts
