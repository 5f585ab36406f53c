"""RedisCacheAdapter: entries in Redis under a key prefix, shared by every process using it.

TTL is Redis's own (SET ... PX), and LRU is exact and per cache: the adapter keeps a sorted
set of its keys by last use and evicts from it in the same Lua script as the write, so it
needs no `maxmemory` policy and never touches keys outside its prefix (layout in
redis_scripts.py).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from app.cache.adapters import redis_scripts
from app.cache.adapters.base import CacheAdapter
from app.cache.errors import CacheUnavailableError

DEFAULT_PREFIX = "litetask:cache:"
_CLEAR_BATCH = 500


class RedisCacheAdapter(CacheAdapter):
    """Use `from_url` to let the adapter own (and close) its client, or pass a client built
    with `decode_responses=False`; a client you pass stays yours to close."""

    def __init__(
        self, client: Redis, *, prefix: str = DEFAULT_PREFIX, owns_client: bool = False
    ) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisCacheAdapter needs a client with decode_responses=False")
        if not prefix:
            raise ValueError("RedisCacheAdapter needs a non-empty key prefix")
        self._client = client
        self._owns_client = owns_client
        self.prefix = prefix
        self._lru, self._exp, self._clock = prefix + "lru", prefix + "exp", prefix + "clock"
        self._get = client.register_script(redis_scripts.GET)
        self._set = client.register_script(redis_scripts.SET)
        self._delete = client.register_script(redis_scripts.DELETE)
        self._size = client.register_script(redis_scripts.SIZE)
        self._clear_batch = client.register_script(redis_scripts.CLEAR_BATCH)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = DEFAULT_PREFIX, max_connections: int = 50
    ) -> RedisCacheAdapter:
        """An adapter with its own client for `url` (e.g. "redis://localhost:6379/0"). Its
        pool blocks (up to 10 s) when all `max_connections` are busy instead of failing, so
        a burst of concurrent lookups queues rather than erroring."""
        pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10)
        return cls(Redis.from_pool(pool), prefix=prefix, owns_client=True)

    async def get(self, key: str) -> bytes | None:
        async with _backend_errors():
            value = await self._get(keys=self._keys(key), args=[key])
        return bytes(value) if value is not None else None

    async def set(
        self, key: str, value: bytes, *, ttl: float | None, max_entries: int | None
    ) -> int:
        ttl_ms = "" if ttl is None else max(1, math.ceil(ttl * 1000))
        limit = "" if max_entries is None else max_entries
        args = [key, value, ttl_ms, limit, self._entry_prefix]
        async with _backend_errors():
            return int(await self._set(keys=self._keys(key), args=args))

    async def delete(self, key: str) -> bool:
        async with _backend_errors():
            return bool(await self._delete(keys=self._keys(key)[:3], args=[key]))

    async def clear(self) -> None:
        """Delete every entry the LRU index holds, oldest first, `_CLEAR_BATCH` per atomic
        script call, until the index is empty (an entry set by another client meanwhile may
        go too, or stay with its index member: never one without the other)."""
        keys, args = [self._lru, self._exp], [self._entry_prefix, str(_CLEAR_BATCH)]
        async with _backend_errors():
            while await self._clear_batch(keys=keys, args=args):
                pass

    async def size(self) -> int:
        async with _backend_errors():
            keys, args = [self._lru, self._exp], [self._entry_prefix]
            return int(await self._size(keys=keys, args=args))

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    @property
    def _entry_prefix(self) -> str:
        return self.prefix + "v:"

    def _keys(self, key: str) -> list[str]:
        return [self._entry_prefix + key, self._lru, self._exp, self._clock]


@asynccontextmanager
async def _backend_errors() -> AsyncIterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise CacheUnavailableError(f"Redis cache failed: {exc}", backend="redis") from exc
