"""AsyncCacheAdapter: the result cache as the worker uses it.

Lookups and stores never fail a task (a cache that is down is logged and skipped), and
single-flight is kept here: while one attempt with a cache key runs in this process, later
attempts with the same key wait for it and then read its result from the cache instead of
running the function again. Because the key is stored on each task row, the same holds after
a restart: recovered tasks find each other again by key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.cache.core import MISS, AsyncCache
from app.cache.errors import CacheError
from app.cache.serialization import SerializationError

logger = logging.getLogger(__name__)


class AsyncCacheAdapter:
    def __init__(self, cache: AsyncCache) -> None:
        self.cache = cache
        self._leaders: dict[str, asyncio.Future[None]] = {}

    @property
    def enabled(self) -> bool:
        return self.cache.enabled

    async def lookup(self, key: str) -> tuple[bool, Any]:
        """`(True, value)` on a hit; a miss, or a cache that cannot answer, is `(False, None)`."""
        try:
            return await self.cache.get(key)
        except CacheError:
            logger.warning("result cache lookup failed; running the task", exc_info=True)
            return MISS

    async def store(self, key: str, value: Any, ttl: float | None) -> None:
        """Cache a result; a value too large to cache, or a cache that is down, is logged."""
        try:
            await self.cache.set(key, value, ttl=ttl)
        except (CacheError, SerializationError) as exc:
            logger.warning("result not cached: %s", exc)

    async def wait_for_leader(self, key: str) -> bool:
        """If an attempt with `key` is running here, wait until it ends and return True."""
        leader = self._leaders.get(key)
        if leader is None:
            return False
        await asyncio.shield(leader)
        return True

    @contextmanager
    def lead(self, key: str) -> Iterator[None]:
        """Mark this attempt as the one computing `key`; followers wake when it ends, however
        it ends (a failure or cancellation lets the next follower run the function)."""
        leader: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._leaders[key] = leader
        try:
            yield
        finally:
            del self._leaders[key]
            leader.set_result(None)

    async def clear(self) -> None:
        await self.cache.clear()

    async def delete(self, key: str) -> bool:
        return await self.cache.delete(key)

    async def close(self) -> None:
        await self.cache.close()
