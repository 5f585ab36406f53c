"""A writer's stop is bounded whatever the database does: writes it does not take by the
stop's deadline are given up, and a transaction that never returns is abandoned."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from app.db.engine import Engines, create_engines
from app.db.migrate import upgrade
from app.db.writer import GroupCommitWriter, WriteOp
from app.errors import DatabaseUnavailableError
from tests.db.test_writer_faults import InsertBlob, stored, until_tried
from tests.faults import write_lock_held


class Hang(WriteOp[None]):
    """A transaction that does not return until `release` is set (a disk that hangs)."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def apply(self, conn: Connection) -> None:
        self.release.wait(30)


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[Engines]:
    engines = create_engines(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", busy_timeout=0.05)
    await upgrade(engines.writer)
    with engines.writer.begin() as conn:
        conn.execute(text("create table blobs (value integer unique, data blob)"))
    yield engines
    await engines.dispose()


async def test_writes_not_taken_by_the_stop_deadline_are_given_up(
    engines: Engines, tmp_path: Path
) -> None:
    writer = GroupCommitWriter(engines.writer, retry_seconds=60)
    await writer.start()
    loop = asyncio.get_running_loop()
    with write_lock_held(tmp_path / "w.db"):
        early = writer.submit(InsertBlob(1))
        await until_tried(writer, 1)
        writer.finish_by(loop.time() + 0.3)
        late = writer.submit(InsertBlob(2))
        started = loop.time()
        await writer.stop()
        assert loop.time() - started < 5  # not the 60 s of its retry budget
        for write in (early, late):
            with pytest.raises(DatabaseUnavailableError):
                await write
    assert await stored(engines) == []


async def test_a_transaction_that_never_returns_is_abandoned_at_stop(engines: Engines) -> None:
    writer = GroupCommitWriter(engines.writer, retry_seconds=60)
    await writer.start()
    release = threading.Event()
    try:
        hung = writer.submit(Hang(release))
        waiting = writer.submit(InsertBlob(1))
        await until_tried(writer, 1)
        started = asyncio.get_running_loop().time()
        await writer.stop(timeout=0.5)
        assert asyncio.get_running_loop().time() - started < 5
        for write in (hung, waiting):
            with pytest.raises(DatabaseUnavailableError, match="before the stop"):
                await write
    finally:
        release.set()
