"""What only the SQLite backend promises: entries and their recency survive a restart, writes
share commits through the group-commit writer, and reads never need the writer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.cache import AsyncCache, CacheUnavailableError
from app.cache.adapters.sqlite import SQLiteCacheAdapter
from app.db.engine import create_engines
from app.db.writer import GroupCommitWriter
from tests.cache.conftest import SQLiteDatabase, open_database


async def test_entries_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "litetask.db"
    async with open_database(path) as db:
        cache = AsyncCache(db.adapter())
        await cache.set("kept", {"answer": 42})
        await cache.set("gone", 1, ttl=0.05)
        await cache.close()
    await asyncio.sleep(0.1)

    async with open_database(path) as db:
        cache = AsyncCache(db.adapter())
        assert await cache.get("kept") == (True, {"answer": 42})
        assert await cache.get("gone") == (False, None)
        await cache.close()


async def test_recent_reads_survive_a_restart_for_lru(tmp_path: Path) -> None:
    path = tmp_path / "litetask.db"
    async with open_database(path) as db:
        cache = AsyncCache(db.adapter(), max_size=2)
        await cache.set("a", 1)
        await cache.set("b", 2)
        await cache.get("a")
        await cache.close()  # flushes the noted read of "a"

    async with open_database(path) as db:
        cache = AsyncCache(db.adapter(), max_size=2)
        await cache.set("c", 3)
        assert await cache.get("b") == (False, None)
        assert await cache.get("a") == (True, 1)
        await cache.close()


async def test_concurrent_sets_share_commits(database: SQLiteDatabase) -> None:
    cache = AsyncCache(database.adapter(), max_size=None)
    commits_before = database.writer.commits

    await asyncio.gather(*(cache.set(f"k{n}", n) for n in range(200)))

    assert database.writer.commits - commits_before < 20
    assert (await cache.stats()).size == 200
    await cache.close()


async def test_a_burst_of_lookups_is_answered_in_full(database: SQLiteDatabase) -> None:
    cache = AsyncCache(database.adapter(), max_size=None)
    await asyncio.gather(*(cache.set(f"k{n}", n) for n in range(0, 1200, 2)))

    results = await asyncio.gather(*(cache.get(f"k{n}") for n in range(1200)))

    assert results == [(True, n) if n % 2 == 0 else (False, None) for n in range(1200)]
    await cache.close()


async def test_many_reads_cost_few_commits(database: SQLiteDatabase) -> None:
    cache = AsyncCache(database.adapter())
    await cache.set("hot", "value")
    commits_before = database.writer.commits

    for _ in range(200):
        assert await cache.get("hot") == (True, "value")
    await cache.close()

    assert database.writer.commits - commits_before <= 2


async def test_reads_work_while_the_writer_is_stopped(database: SQLiteDatabase) -> None:
    cache = AsyncCache(database.adapter())
    await cache.set("k", "v")
    await database.writer.stop()

    assert await cache.get("k") == (True, "v")
    await cache.close()  # recording the read fails quietly: LRU is a hint, not data


async def test_a_database_without_the_table_reports_the_cache_unavailable(
    tmp_path: Path,
) -> None:
    engines = create_engines(f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}")
    writer = GroupCommitWriter(engines.writer)
    await writer.start()
    cache = AsyncCache(SQLiteCacheAdapter(writer, engines.reader))
    try:
        with pytest.raises(CacheUnavailableError, match="no such table") as raised:
            await cache.get("k")
        assert raised.value.backend == "sqlite"
        together = await asyncio.gather(cache.get("a"), cache.get("b"), return_exceptions=True)
        assert [type(error) for error in together] == [CacheUnavailableError] * 2
        with pytest.raises(CacheUnavailableError):
            await cache.set("k", 1)
    finally:
        await cache.close()
        await writer.stop()
        await engines.dispose()
