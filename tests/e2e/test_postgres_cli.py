"""The CLI on a PostgreSQL URL: `litetask migrate` migrates it and never prints its
password; `litetask backup` and `restore` (SQLite's) refuse with one clear line naming
pg_dump, exit 2; the operator CLI (tasks, watch, schedules, status), which speaks HTTP, works
against two PostgreSQL-backed services on one database, through either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, free_loopback_port
from tests.e2e.test_cli_tasks import TOKEN, get, submit, wait_status
from tests.e2e.test_cli_tasks import litetask as litetask_at
from tests.pg_server import PostgresServer, postgres_sql

pytestmark = pytest.mark.timeout(180)  # real servers on a loaded machine

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


def test_restore_into_a_postgresql_database_is_a_clear_error(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    done = litetask("restore", str(tmp_path / "any.db"), url=postgres.create_database())
    assert done.returncode == 2
    assert "pg_dump" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def two_services(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    """Two `litetask serve` processes on one PostgreSQL database, with a token, the demo
    tasks and periodic task types."""
    directory = tmp_path_factory.mktemp("pgcli")
    env = {
        "LITETASK_DATABASE_URL": postgres.create_database(),
        "LITETASK_API_TOKEN": TOKEN,
        "LITETASK_RETRY_BACKOFF": "0.01",
        "LITETASK_TASK_MODULES": "tests.e2e.periodic_tasks",
    }
    services = [
        ServerProcess(directory / "unused.db", free_loopback_port(), **env) for _ in range(2)
    ]
    try:
        for service in services:
            service.wait_ready(timeout=60)
        yield services
    finally:
        for service in services:
            service.close()


def test_the_operator_cli_on_one_process_sees_the_whole_queue(
    two_services: list[ServerProcess],
) -> None:
    """Tasks submitted to B, run by either process, listed, shown, cancelled, retried and
    watched through A: every command of the operator CLI works on a PostgreSQL service."""
    a, b = (service.url for service in two_services)
    failed = submit(b, "demo.fail", kwargs={"message": "pg boom"}, max_attempts=1)
    wait_status(a, failed, {"failed"})
    listed = litetask_at(a, "tasks", "list", "--status", "failed", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [t["id"] for t in json.loads(listed.stdout)] == [failed]
    shown = litetask_at(a, "tasks", "show", failed)
    assert shown.returncode == 0, shown.stderr
    assert "DemoFailure: pg boom" in shown.stdout and "Traceback" in shown.stdout

    retried = litetask_at(a, "tasks", "retry", "--all-failed", "--json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["counts"]["retried"] == 1
    wait_status(b, failed, {"failed"})
    again = litetask_at(a, "tasks", "retry", failed, "--json")
    assert json.loads(again.stdout)["status"] == "pending", again.stderr

    later = submit(b, "demo.sleep", delay=600)
    cancelled = litetask_at(a, "tasks", "cancel", later)
    assert (cancelled.returncode, cancelled.stdout) == (0, f"cancelled {later}\n")
    assert get(b, later)["status"] == "cancelled"

    sleeper = submit(b, "demo.sleep", kwargs={"seconds": 1.0, "steps": 4}, delay=1)
    watched = litetask_at(a, "watch", sleeper)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.splitlines()[-1] == 'completed: {"slept": 1.0, "steps": 4}'

    schedules = litetask_at(a, "schedules", "--json")
    assert schedules.returncode == 0, schedules.stderr
    assert "periodic.tick" in {s["name"] for s in json.loads(schedules.stdout)}
    status = litetask_at(a, "status", sleeper)
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "completed"
