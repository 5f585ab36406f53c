"""Building the service's result cache from settings: which adapter, which limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from app.cache.adapters.base import CacheAdapter
from app.cache.core import DEFAULT_MAX_SERIALIZED_SIZE, AsyncCache
from app.cache.task_adapter import DEFAULT_CACHE_TIMEOUT, AsyncCacheAdapter
from app.db.writer import GroupCommitWriter

CacheBackend = Literal["sqlite", "memory", "redis", "none"]
BACKENDS: tuple[CacheBackend, ...] = ("sqlite", "memory", "redis", "none")


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """`sqlite` (the default) keeps entries in the task database; `redis` needs `redis_url`;
    `none` turns the result cache off. `timeout`: the most seconds a task's cache lookup or
    store may take before it is given up (a miss, or a result not cached)."""

    backend: CacheBackend = "sqlite"
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    default_ttl: float | None = None
    max_size: int | None = 10_000
    max_serialized_size: int | None = DEFAULT_MAX_SERIALIZED_SIZE
    timeout: float = DEFAULT_CACHE_TIMEOUT

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"cache backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("the redis cache backend needs a redis_url")
        if not self.timeout > 0:
            raise ValueError(f"the cache timeout must be positive, not {self.timeout!r}")


def open_cache(
    settings: CacheSettings, writer: GroupCommitWriter, reader: AsyncEngine
) -> AsyncCacheAdapter | None:
    """The cache for a started worker (None when the backend is `none`)."""
    if settings.backend == "none":
        return None
    cache = AsyncCache(
        _adapter(settings, writer, reader),
        default_ttl=settings.default_ttl,
        max_size=settings.max_size,
        max_serialized_size=settings.max_serialized_size,
    )
    return AsyncCacheAdapter(cache, timeout=settings.timeout)


def _adapter(
    settings: CacheSettings, writer: GroupCommitWriter, reader: AsyncEngine
) -> CacheAdapter:
    if settings.backend == "memory":
        from app.cache.adapters.memory import MemoryCacheAdapter

        return MemoryCacheAdapter()
    if settings.backend == "redis":
        from app.cache.adapters.redis import RedisCacheAdapter

        assert settings.redis_url is not None
        return RedisCacheAdapter.from_url(settings.redis_url)
    from app.cache.adapters.sqlite import SQLiteCacheAdapter

    return SQLiteCacheAdapter(writer, reader)
