"""The group-commit writer: many writes, few transactions; one bad write fails alone."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from app.db.engine import Engines, create_engines
from app.db.migrate import upgrade
from app.db.writer import GroupCommitWriter, QuietOp, WriteOp
from app.errors import WorkerNotRunningError


class InsertRow(WriteOp[int]):
    def __init__(self, value: int) -> None:
        super().__init__()
        self.value = value

    def apply(self, conn: Connection) -> int:
        conn.execute(text("insert into numbers (value) values (:v)"), {"v": self.value})
        return self.value


class BrokenWrite(WriteOp[None]):
    def apply(self, conn: Connection) -> None:
        conn.execute(text("insert into no_such_table values (1)"))


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[Engines]:
    engines = create_engines(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    await upgrade(engines.writer)
    with engines.writer.begin() as conn:
        conn.execute(text("create table numbers (value integer unique)"))
    yield engines
    await engines.dispose()


async def count(engines: Engines) -> int:
    async with engines.reader.connect() as conn:
        return int((await conn.execute(text("select count(*) from numbers"))).scalar_one())


async def test_concurrent_writes_share_transactions(engines: Engines) -> None:
    writer = GroupCommitWriter(engines.writer)
    await writer.start()
    results = await asyncio.gather(*[writer.run(InsertRow(i)) for i in range(500)])
    await writer.stop()
    assert results == list(range(500))
    assert await count(engines) == 500
    assert writer.commits < 50  # ~1 transaction per batch, not per write


async def test_a_failing_write_fails_alone(engines: Engines) -> None:
    writer = GroupCommitWriter(engines.writer)
    await writer.start()
    ops: list[WriteOp[object]] = [InsertRow(1), BrokenWrite(), InsertRow(2), InsertRow(1)]
    outcomes = await asyncio.gather(*[writer.run(op) for op in ops], return_exceptions=True)
    await writer.stop()
    assert outcomes[0] == 1 and outcomes[2] == 2
    assert "no such table" in str(outcomes[1])
    assert "UNIQUE" in str(outcomes[3])
    assert await count(engines) == 2


async def test_stop_finishes_what_was_submitted(engines: Engines) -> None:
    writer = GroupCommitWriter(engines.writer)
    await writer.start()
    pending = [writer.submit(InsertRow(i)) for i in range(100)]
    await writer.stop()
    assert [await p for p in pending] == list(range(100))
    with pytest.raises(WorkerNotRunningError, match="not running"):
        writer.submit(InsertRow(1000))


class InTransaction(QuietOp[bool]):
    """Says whether its connection was in a transaction (it must never be)."""

    def apply_alone(self, raw: sqlite3.Connection) -> bool:
        return raw.in_transaction


class BrokenQuiet(QuietOp[None]):
    def apply_alone(self, raw: sqlite3.Connection) -> None:
        raw.execute("PRAGMA no_such_pragma_call(")


async def test_a_quiet_op_runs_between_transactions_only_when_nothing_waits(
    engines: Engines,
) -> None:
    writer = GroupCommitWriter(engines.writer, max_batch=1)
    await writer.start()
    first, busy, last = (
        writer.submit(InsertRow(1)),
        writer.submit(InTransaction()),
        writer.submit(InsertRow(2)),
    )
    assert (await first, await busy, await last) == (1, None, 2)  # a write waited: skipped
    assert await writer.run(InTransaction()) is False  # idle: run, outside any transaction
    await writer.stop()


async def test_a_failing_quiet_op_fails_alone(engines: Engines) -> None:
    writer = GroupCommitWriter(engines.writer)
    await writer.start()
    with pytest.raises(sqlite3.OperationalError):
        await writer.run(BrokenQuiet())
    assert await writer.run(InsertRow(3)) == 3
    assert writer.failure is None
    await writer.stop()
