"""SQLiteCacheAdapter: msgpack blobs in the `cache_entries` table, surviving restarts.

Reads go through the read-only engine, concurrent ones sharing a query (sqlite_reads.py);
every write goes through the service's single `GroupCommitWriter`. A hit must refresh the
entry's recency for LRU, but a write per read would cost a commit per get, so reads are only
noted in memory (repeated reads of a key coalesce) and written in the background as one
batched UPDATE at most every `read_flush_interval` seconds. A `set` carries the reads noted
so far with it, so eviction always sees them; `close` writes the rest. A crash loses at most
one interval of recency, which only makes LRU slightly less exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cache.adapters.base import CacheAdapter
from app.cache.adapters.sqlite_ops import (
    ClearEntries,
    DeleteEntry,
    Entry,
    SetEntry,
    TouchEntries,
    is_expired,
    live_at,
)
from app.cache.adapters.sqlite_reads import BatchedReader
from app.cache.errors import CacheUnavailableError
from app.clock import now_us, seconds_to_us
from app.db.tables import cache_entries
from app.db.writer import GroupCommitWriter
from app.errors import DatabaseUnavailableError, WorkerNotRunningError

logger = logging.getLogger(__name__)
DEFAULT_READ_FLUSH_INTERVAL = 1.0


class SQLiteCacheAdapter(CacheAdapter):
    """Give it the running writer and the reader engine of the service's database (migrated:
    the table comes from migration 0002). Closing it flushes pending reads; it closes
    neither the writer nor the engine, which belong to the caller."""

    def __init__(
        self,
        writer: GroupCommitWriter,
        reader: AsyncEngine,
        *,
        read_flush_interval: float = DEFAULT_READ_FLUSH_INTERVAL,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._reads = BatchedReader(reader)
        self.read_flush_interval = read_flush_interval
        self._touches: dict[str, int] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._flush_now = asyncio.Event()
        self._last_tick = 0

    async def get(self, key: str) -> bytes | None:
        async with _backend_errors():
            stored = await self._reads.get(key)
        if stored is None or is_expired(stored.expires_at, now_us()):
            return None
        self._note_read(key)
        return stored.value

    async def set(
        self, key: str, value: bytes, *, ttl: float | None, max_entries: int | None
    ) -> int:
        now = now_us()
        expires_at = now + seconds_to_us(ttl) if ttl is not None else None
        entry = Entry(key, value, now, expires_at, self._tick())
        touches, self._touches = self._touches, {}
        async with _backend_errors():
            return await self._writer.run(SetEntry(entry, touches, max_entries))

    async def delete(self, key: str) -> bool:
        self._touches.pop(key, None)
        async with _backend_errors():
            return await self._writer.run(DeleteEntry(key))

    async def clear(self) -> None:
        self._touches.clear()
        async with _backend_errors():
            await self._writer.run(ClearEntries())

    async def size(self) -> int:
        statement = select(func.count()).select_from(cache_entries).where(live_at(now_us()))
        async with _backend_errors(), self._reader.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def close(self) -> None:
        """Write the reads noted so far (the writer must still be running)."""
        await self._reads.close()
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            self._flush_now.set()
            await flusher
            self._flush_now.clear()

    def _tick(self) -> int:
        """Now in µs, strictly increasing, so LRU order never depends on a tie."""
        self._last_tick = max(now_us(), self._last_tick + 1)
        return self._last_tick

    def _note_read(self, key: str) -> None:
        self._touches[key] = self._tick()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_reads(), name="litetask-cache-lru")

    async def _flush_reads(self) -> None:
        """Write noted reads, one batch per interval, until none are left. Losing a batch only
        makes LRU slightly less exact, so a failure is logged, not raised."""
        while self._touches:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.read_flush_interval):
                    await self._flush_now.wait()
            touches, self._touches = self._touches, {}
            if not touches:  # a set took them with it
                continue
            try:
                await self._writer.run(TouchEntries(touches))
            except (SQLAlchemyError, DatabaseUnavailableError, WorkerNotRunningError):
                logger.warning("could not record %s cache reads", len(touches), exc_info=True)


@asynccontextmanager
async def _backend_errors() -> AsyncIterator[None]:
    try:
        yield
    except (SQLAlchemyError, DatabaseUnavailableError, WorkerNotRunningError) as exc:
        raise CacheUnavailableError(f"SQLite cache failed: {exc}", backend="sqlite") from exc
