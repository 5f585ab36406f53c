"""Before the worker migrates a database that holds rows, it copies it (checked, 0600) to
`<db>.pre-migrate-<from>-<to>` and logs where; a new or empty database is migrated without
a copy, and a database already at head is not copied again."""

from __future__ import annotations

import logging
import sqlite3
import stat
from pathlib import Path

import pytest

from app import AsyncTaskWorker
from tests.db.migration_rows import TASK_ID, database_at
from tests.db.test_migrations import HEAD


def url(database: Path) -> str:
    return f"sqlite+aiosqlite:///{database}"


def copies(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".pre-migrate-" in p.name)


async def test_a_database_with_rows_is_backed_up_before_it_is_migrated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "litetask.db"
    database_at(database, "0003")
    caplog.set_level(logging.INFO)
    async with AsyncTaskWorker(url(database)) as worker:
        assert await worker.get_task_info(TASK_ID) is not None
    copy = tmp_path / f"litetask.db.pre-migrate-0003-{HEAD}"
    assert copies(tmp_path) == [copy.name]
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0003",)]
        assert conn.execute("SELECT id FROM tasks").fetchall() == [(TASK_ID,)]
    logged = [r.getMessage() for r in caplog.records if r.name == "app.db.migrate"]
    assert any(str(copy) in line and "0003" in line for line in logged), logged

    copy.unlink()
    async with AsyncTaskWorker(url(database)):
        pass
    assert copies(tmp_path) == []  # already at head: nothing to migrate, nothing to copy


@pytest.mark.parametrize("revision", [None, "0003"])
async def test_a_new_or_empty_database_is_migrated_without_a_copy(
    tmp_path: Path, revision: str | None
) -> None:
    database = tmp_path / "litetask.db"
    if revision is not None:
        database_at(database, revision, rows=False)
    async with AsyncTaskWorker(url(database)):
        pass
    assert copies(tmp_path) == []
