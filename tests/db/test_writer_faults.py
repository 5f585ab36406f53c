"""The writer when the database misbehaves: transient errors retry the whole batch, a write
that cannot succeed is isolated by bisection, only committed events are published, and a
writer that dies says so to every caller instead of hanging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from app.clock import now_us
from app.db.engine import Engines, create_engines
from app.db.migrate import upgrade
from app.db.writer import GroupCommitWriter, WriteOp
from app.errors import DatabaseUnavailableError, WriterFailedError
from app.events.log import EventType, TaskEvent
from tests.faults import close_writer_connection, disk_full, kill_writer_thread, write_lock_held

BLOB = b"x" * 8192  # each row needs new pages: a full disk refuses it


class InsertBlob(WriteOp[int]):
    """Insert one row (value unique) with a blob, recording an event for it."""

    def __init__(self, value: int) -> None:
        super().__init__()
        self.value = value

    def apply(self, conn: Connection) -> int:
        event = TaskEvent(EventType.QUEUED, f"t{self.value}", "blob", now_us(), {})
        self.events.append(event)
        conn.execute(text("insert into blobs values (:v, :b)"), {"v": self.value, "b": BLOB})
        return self.value


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "w.db"


@pytest.fixture
async def engines(database: Path) -> AsyncIterator[Engines]:
    engines = create_engines(f"sqlite+aiosqlite:///{database}", busy_timeout=0.05)
    await upgrade(engines.writer)
    with engines.writer.begin() as conn:
        conn.execute(text("create table blobs (value integer unique, data blob)"))
    yield engines
    await engines.dispose()


@pytest.fixture
async def published() -> list[TaskEvent]:
    return []


@pytest.fixture
async def writer(engines: Engines, published: list[TaskEvent]) -> AsyncIterator[GroupCommitWriter]:
    writer = GroupCommitWriter(engines.writer, on_commit=published.extend, retry_seconds=30)
    await writer.start()
    yield writer
    await writer.stop()


async def stored(engines: Engines) -> list[int]:
    async with engines.reader.connect() as conn:
        rows = await conn.execute(text("select value from blobs order by value"))
        return [row.value for row in rows]


async def until_tried(writer: GroupCommitWriter, transactions: int) -> None:
    """Wait until the writer has attempted `transactions` transactions (they fail here)."""
    async with asyncio.timeout(10):
        while True:
            if writer.commits >= transactions:
                return
            await asyncio.sleep(0.005)


async def test_a_full_disk_retries_the_whole_batch_until_there_is_room(
    writer: GroupCommitWriter, engines: Engines, database: Path, published: list[TaskEvent]
) -> None:
    with disk_full(database) as disk:
        pending = [writer.submit(InsertBlob(i)) for i in range(50)]
        await until_tried(writer, 2)
        disk.free()
        assert await asyncio.gather(*pending) == list(range(50))
    assert await stored(engines) == list(range(50))
    assert writer.commits < 20  # retried as one batch, not one transaction per write
    assert sorted(e.task_id for e in published) == sorted(f"t{i}" for i in range(50))


async def test_a_busy_database_is_retried_past_the_busy_timeout(
    writer: GroupCommitWriter, engines: Engines, database: Path
) -> None:
    with write_lock_held(database) as lock:
        pending = [writer.submit(InsertBlob(i)) for i in range(10)]
        await until_tried(writer, 3)  # three busy timeouts (50 ms each) went by
        lock.release()
        assert await asyncio.gather(*pending) == list(range(10))
    assert await stored(engines) == list(range(10))


async def test_a_write_gives_up_after_its_retry_budget_and_publishes_nothing(
    engines: Engines, database: Path, published: list[TaskEvent]
) -> None:
    writer = GroupCommitWriter(engines.writer, on_commit=published.extend, retry_seconds=0.3)
    await writer.start()
    try:
        with disk_full(database) as disk:
            with pytest.raises(DatabaseUnavailableError) as refused:
                await writer.run(InsertBlob(1))
            assert refused.value.category == "unavailable"
            assert refused.value.reason == "SQLITE_FULL"
            disk.free()
            assert await writer.run(InsertBlob(2)) == 2  # the writer goes on
    finally:
        await writer.stop()
    assert await stored(engines) == [2]
    assert [e.task_id for e in published] == ["t2"]


async def test_one_bad_write_is_isolated_by_bisection_not_one_by_one(
    writer: GroupCommitWriter, engines: Engines, published: list[TaskEvent]
) -> None:
    await writer.run(InsertBlob(1000))
    before = writer.commits
    values = [*range(100), 1000, *range(100, 199)]  # 1000 is taken: that write fails
    pending = [writer.submit(InsertBlob(v)) for v in values]
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    failed = [v for v, o in zip(values, outcomes, strict=True) if isinstance(o, Exception)]
    assert failed == [1000]
    assert "UNIQUE" in str(outcomes[100])
    assert await stored(engines) == sorted([*range(199), 1000])
    assert writer.commits - before <= 2 * 8 + 1  # log2(200) levels, two halves each
    # Only committed events are published: none from the rolled-back attempts.
    assert sorted(e.task_id for e in published) == sorted({f"t{v}" for v in values})
    assert len(published) == len(values)  # t1000 once: from its first, committed write


async def test_a_raising_commit_hook_does_not_stop_the_writer(
    engines: Engines, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(events: list[TaskEvent]) -> None:
        raise RuntimeError("subscriber broke")

    writer = GroupCommitWriter(engines.writer, on_commit=hook)
    await writer.start()
    try:
        assert await writer.run(InsertBlob(1)) == 1
        assert await writer.run(InsertBlob(2)) == 2
    finally:
        await writer.stop()
    assert await stored(engines) == [1, 2]
    assert "subscriber broke" in caplog.text


async def test_a_dead_writer_fails_every_waiting_write(engines: Engines) -> None:
    writer = GroupCommitWriter(engines.writer)
    await writer.start()
    try:
        kill_writer_thread(writer)
        pending = [writer.submit(InsertBlob(i)) for i in range(5)]
        async with asyncio.timeout(10):
            outcomes = await asyncio.gather(*pending, return_exceptions=True)
        assert all(isinstance(o, WriterFailedError) for o in outcomes), outcomes
        assert writer.failure is not None
        with pytest.raises(WriterFailedError, match="writer stopped"):
            writer.submit(InsertBlob(9))
    finally:
        await writer.stop()  # does not raise: the failure was already reported


async def test_a_closed_connection_is_replaced(writer: GroupCommitWriter, engines: Engines) -> None:
    """A writer connection closed under it is replaced by a new one on the retry: SQLAlchemy
    invalidates it, and the write goes through."""
    assert await writer.run(InsertBlob(1)) == 1
    await close_writer_connection(writer)
    assert await writer.run(InsertBlob(2)) == 2
    assert await stored(engines) == [1, 2]
