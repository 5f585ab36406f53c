"""The database file stays bounded: it is in auto_vacuum=INCREMENTAL mode (new files from the
start, older ones converted once at start), pruning gives the freed pages back to the
filesystem, and the WAL is truncated when the writer is idle."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from app import AsyncTaskWorker
from app.config import Settings
from app.worker.pruner import PrunePolicy, Pruner
from tests.conftest import ClientFactory
from tests.db.migration_rows import TASK_ID, database_at
from tests.history import add_finished, count_rows
from tests.waiting import until
from tests.web.test_retention import QUICK

INCREMENTAL = 2


def pragma(database: Path, name: str) -> int:
    with closing(sqlite3.connect(database)) as conn:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def test_a_new_database_uses_incremental_vacuum(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    async with make_client():
        pass
    assert pragma(tmp_path / "litetask.db", "auto_vacuum") == INCREMENTAL


async def test_an_older_database_is_converted_once_at_start(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    database_at(database, "0009")
    with closing(sqlite3.connect(database, isolation_level=None)) as conn:
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")  # as every database made before 0012 was
    assert pragma(database, "auto_vacuum") == 0
    async with AsyncTaskWorker(f"sqlite+aiosqlite:///{database}") as worker:
        info = await worker.get_task_info(TASK_ID)
    assert info is not None and info.result == 5
    assert pragma(database, "auto_vacuum") == INCREMENTAL


async def test_pruning_gives_space_back_and_the_wal_is_truncated_when_idle(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    database, wal = tmp_path / "litetask.db", tmp_path / "litetask.db-wal"
    async with make_client(prune_interval=3600.0):
        pass
    add_finished(database, 20_000)
    full = size(database)
    async with make_client(**QUICK):
        await until(lambda: count_rows(database, "tasks") == 0, timeout=60, what="the prune")
        await until(lambda: size(database) < full / 4, timeout=30, what="the file to shrink")
        await until(lambda: size(wal) == 0, timeout=30, what="the WAL to be truncated")
        assert pragma(database, "freelist_count") < 1000


async def test_checkpoints_can_be_left_to_litestream(tmp_path: Path) -> None:
    """LITETASK_WAL_CHECKPOINT=0: the pruner never truncates the WAL (Litestream, which
    checkpoints itself, would take a truncation by another program for a lost position)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'litetask.db'}"
    policy = Settings(database_url=url, wal_checkpoint=False).prune_policy()
    async with AsyncTaskWorker(url) as worker:
        assert (await Pruner(worker.writer, policy).prune_once()).checkpointed is None
        assert size(tmp_path / "litetask.db-wal") > 0
        assert (await Pruner(worker.writer, PrunePolicy()).prune_once()).checkpointed is True
        assert size(tmp_path / "litetask.db-wal") == 0
