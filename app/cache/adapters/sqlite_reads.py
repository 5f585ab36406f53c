"""Batched reads for the SQLite cache adapter: concurrent lookups share one SELECT.

A read through SQLAlchemy async costs about half a millisecond of event-loop time (checkout,
BEGIN, SELECT, ROLLBACK), so N tasks asking the cache at once would queue behind N of them.
Like the group-commit writer, lookups that arrive while a query runs wait for the next one,
which fetches all their keys with `WHERE key IN (...)`: one caller pays one query, many
callers share it. A lookup never joins a query already sent, so it always sees every write
committed before it was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import cache_entries

MAX_KEYS_PER_QUERY = 500  # well under SQLite's bound-parameter limit
entries = cache_entries.c


class StoredEntry(NamedTuple):
    value: bytes
    expires_at: int | None


Waiters = dict[str, list[asyncio.Future[StoredEntry | None]]]


class BatchedReader:
    """Looks rows of `cache_entries` up by key through the read-only engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: Waiters = {}
        self._runner: asyncio.Task[None] | None = None

    async def get(self, key: str) -> StoredEntry | None:
        """The row of `key` (expired or not), or None."""
        future: asyncio.Future[StoredEntry | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="litetask-cache-reads")
        return await future

    async def close(self) -> None:
        """Wait for the lookups already asked for."""
        if self._runner is not None:
            await self._runner

    async def _run(self) -> None:
        while self._waiting:
            batch = self._take_batch()
            try:
                found = await self._fetch(list(batch))
            except Exception as exc:  # delivered to every caller, who sees it as its own
                _fail(batch, exc)
            else:
                _resolve(batch, found)

    def _take_batch(self) -> Waiters:
        if len(self._waiting) <= MAX_KEYS_PER_QUERY:
            batch, self._waiting = self._waiting, {}
            return batch
        keys = list(self._waiting)[:MAX_KEYS_PER_QUERY]
        return {key: self._waiting.pop(key) for key in keys}

    async def _fetch(self, keys: Sequence[str]) -> dict[str, StoredEntry]:
        statement = select(entries.key, entries.value, entries.expires_at).where(
            entries.key.in_(keys)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return {row.key: StoredEntry(bytes(row.value), row.expires_at) for row in rows}


def _resolve(batch: Waiters, found: dict[str, StoredEntry]) -> None:
    for key, futures in batch.items():
        for future in futures:
            if not future.done():
                future.set_result(found.get(key))


def _fail(batch: Waiters, error: Exception) -> None:
    for futures in batch.values():
        for future in futures:
            if not future.done():
                future.set_exception(error)
