"""`litetask move-to-postgres` refusing: a source a service still serves, a target that holds
tasks (unless --replace), a target it cannot reach, a row PostgreSQL cannot hold. Each says
why on one line, exits 1, and leaves the target without a row of the source."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from app import AsyncTaskWorker, TaskRegistry
from tests.conftest import ServerProcess, free_loopback_port
from tests.e2e.test_move_to_postgres import move
from tests.pg_server import PostgresServer, postgres_sql

pytestmark = pytest.mark.timeout(180)


async def filled(database: Path, count: int = 5) -> list[str]:
    """A SQLite file with `count` finished tasks, made by a worker stopped cleanly."""
    registry = TaskRegistry()

    async def double(n: int) -> int:
        return n * 2

    registry.register("double", double)
    async with AsyncTaskWorker(f"sqlite+aiosqlite:///{database}", registry=registry) as worker:
        ids = [await worker.add_task("double", n) for n in range(count)]
        assert await worker.wait_for_tasks(ids, timeout=30) == [n * 2 for n in range(count)]
    return ids


def sql(database: Path, statement: str) -> None:
    with closing(sqlite3.connect(database)) as conn:
        conn.execute(statement)
        conn.commit()


def target_tasks(url: str) -> int:
    return int(str(postgres_sql(url, "SELECT count(*) FROM tasks")[0][0]))


def has_schema(url: str) -> bool:
    found = postgres_sql(url, "SELECT to_regclass('public.tasks') IS NOT NULL")
    return bool(found[0][0])


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The error line that ends stderr (after any progress lines), exit status 1."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("litetask: "), done.stderr
    return last


@pytest.mark.parametrize("lock_file_deleted", [False, True])
async def test_a_source_a_service_still_serves_is_refused(
    postgres: PostgresServer, tmp_path: Path, lock_file_deleted: bool
) -> None:
    """Refused by the lock file, and by the owner row when the lock file was deleted under
    the live service."""
    database = tmp_path / "litetask.db"
    await filled(database)
    url = postgres.create_database()
    server = ServerProcess(database, free_loopback_port())
    try:
        await asyncio.to_thread(server.wait_ready, 60)
        if lock_file_deleted:
            database.with_name("litetask.db.lock").unlink()
        done = await asyncio.to_thread(move, "--from", str(database), "--to", url)
    finally:
        server.close()
    assert "stop it first" in one_line_error(done)
    assert not has_schema(url)  # the target was not even touched


async def test_a_target_that_holds_tasks_is_refused_unless_replace_is_asked(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    await filled(first, 3)
    kept = await filled(second, 4)
    url = postgres.create_database()
    assert move("--from", str(first), "--to", url).returncode == 0
    assert target_tasks(url) == 3
    refused = move("--from", str(second), "--to", url)
    assert "--replace" in one_line_error(refused) and "3 tasks" in refused.stderr
    assert target_tasks(url) == 3
    done = move("--from", str(second), "--to", url, "--replace")
    assert done.returncode == 0, done.stderr
    rows = postgres_sql(url, "SELECT id FROM tasks ORDER BY seq")
    assert [row[0] for row in rows] == kept
    counts = postgres_sql(url, "SELECT status, total FROM task_counts WHERE total <> 0")
    assert counts == [("completed", 4)]


async def test_an_unreachable_target_is_a_clear_error_and_the_source_is_untouched(
    tmp_path: Path,
) -> None:
    database = tmp_path / "litetask.db"
    await filled(database)
    before = database.read_bytes()
    url = f"postgresql+asyncpg://litetask:hunter2secret@127.0.0.1:{free_loopback_port()}/nowhere"
    done = move("--from", str(database), "--to", url)
    error = one_line_error(done)
    assert "cannot reach" in error and "hunter2secret" not in error
    assert database.read_bytes() == before


@pytest.mark.parametrize(
    ("table", "assignment", "column"),
    [
        ("tasks", "priority = 'high'", "priority"),
        ("tasks", "metadata = '{\"unterminated'", "metadata"),
        ("tasks", "task_type = cast(x'ff' as text)", "task_type"),
        ("tasks", "error = 'a' || char(0) || 'b'", "error"),
        ("tasks", "attempts = 4294967296", "attempts"),
        # Copied after every task: the tasks already sent go back with the rest.
        ("events", "payload = '{\"x\": NaN}'", "payload"),
    ],
)
async def test_a_row_postgresql_cannot_hold_refuses_the_whole_move_naming_it(
    postgres: PostgresServer, tmp_path: Path, table: str, assignment: str, column: str
) -> None:
    database = tmp_path / "litetask.db"
    ids = await filled(database, 6)
    key = "id" if table == "tasks" else "task_id"
    sql(database, f"UPDATE {table} SET {assignment} WHERE {key} = '{ids[4]}'")
    url = postgres.create_database()
    error = one_line_error(move("--from", str(database), "--to", url))
    assert f"cannot move {table} row" in error and f"column {column}" in error
    if table == "tasks":
        assert ids[4] in error
    assert target_tasks(url) == 0
    assert postgres_sql(url, "SELECT count(*) FROM events") == [(0,)]


async def test_odd_values_postgresql_can_hold_are_copied_faithfully(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Blobs in text columns, text in blob columns, a status litetask does not know."""
    database = tmp_path / "litetask.db"
    ids = await filled(database, 3)
    sql(database, f"UPDATE tasks SET error = cast('boom' as blob) WHERE id = '{ids[0]}'")
    sql(database, f"UPDATE tasks SET args = x'c1', result = 'text' WHERE id = '{ids[1]}'")
    sql(database, f"UPDATE tasks SET status = 'paused' WHERE id = '{ids[2]}'")
    url = postgres.create_database()
    done = move("--from", str(database), "--to", url)
    assert done.returncode == 0, done.stderr
    rows = postgres_sql(url, "SELECT id, error, args, result, status FROM tasks ORDER BY seq")
    assert rows[0][:2] == (ids[0], "boom")
    assert (bytes(rows[1][2]), bytes(rows[1][3])) == (b"\xc1", b"text")
    assert rows[2][4] == "paused"


async def test_a_target_a_litetask_process_serves_is_refused_even_with_replace(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    database = tmp_path / "litetask.db"
    await filled(database)
    url = postgres.create_database()
    server = ServerProcess(tmp_path / "unused.db", free_loopback_port(), LITETASK_DATABASE_URL=url)
    try:
        await asyncio.to_thread(server.wait_ready, 60)
        args = ("--from", str(database), "--to", url, "--replace")
        done = await asyncio.to_thread(move, *args)
    finally:
        server.close()
    assert "the target" in one_line_error(done) and "stop it first" in done.stderr
    assert target_tasks(url) == 0


def test_a_target_that_is_not_postgresql_is_a_usage_error(tmp_path: Path) -> None:
    done = move("--from", str(tmp_path / "litetask.db"), "--to", f"sqlite:///{tmp_path}/x.db")
    assert done.returncode == 2
    assert "--to must be a PostgreSQL URL" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"not a database at all, just text" * 200, "cannot read the source database"),
        (None, "is not a litetask database"),
    ],
)
def test_a_source_that_is_not_a_litetask_database_is_refused(
    tmp_path: Path, content: bytes | None, said: str
) -> None:
    source = tmp_path / "other.db"
    if content is None:
        sql(source, "CREATE TABLE notes (body TEXT)")
    else:
        source.write_bytes(content)
    url = f"postgresql+asyncpg://litetask@127.0.0.1:{free_loopback_port()}/nowhere"
    assert said in one_line_error(move("--from", str(source), "--to", url))
