"""The CLI on a PostgreSQL URL: `litetask migrate` migrates it and never prints its
password; `litetask backup` (SQLite's) refuses with a clear error instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.pg_server import PostgresServer, postgres_sql

ROOT = Path(__file__).resolve().parents[2]


def litetask(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITETASK_DATABASE_URL": url}
    command = [sys.executable, "-m", "app", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_migrate_brings_a_postgresql_database_to_head_and_hides_its_password(
    postgres: PostgresServer,
) -> None:
    url = postgres.create_database().replace("litetask@", "litetask:hunter2secret@")
    done = litetask("migrate", url=url)
    assert done.returncode == 0, done.stderr
    assert "hunter2secret" not in done.stdout + done.stderr and "***" in done.stdout
    assert postgres_sql(url, "SELECT count(*) FROM alembic_version") == [(1,)]


def test_backup_of_a_postgresql_database_is_a_clear_error(postgres: PostgresServer) -> None:
    done = litetask("backup", "/tmp/never-written.bak", url=postgres.create_database())
    assert done.returncode == 2
    assert "pg_dump" in done.stderr and "Traceback" not in done.stderr
