"""AsyncCache: values in, values out, over any `CacheAdapter`.

The cache turns values into msgpack bytes (refusing, never truncating, an oversize one),
applies the default TTL and the entry limit, counts hits, misses and evictions, and can be
switched off. A get answers `(found, value)`, so a cached None is told apart from a miss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from app.cache.adapters.base import CacheAdapter
from app.cache.keys import normalize_key
from app.cache.serialization import SerializationError, packb, unpackb

logger = logging.getLogger(__name__)

DEFAULT_MAX_SIZE = 1000
DEFAULT_MAX_SERIALIZED_SIZE = 1024 * 1024
MISS: tuple[bool, Any] = (False, None)


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since this AsyncCache was built (they are not durable), and the live size."""

    hits: int
    misses: int
    evictions: int
    size: int

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class AsyncCache:
    """A TTL + LRU result cache. `max_size` bounds the number of entries (None: unbounded),
    `max_serialized_size` the bytes of one value (None: unbounded), `default_ttl` the
    seconds an entry lives when `set` is given no ttl (None: until evicted)."""

    def __init__(
        self,
        adapter: CacheAdapter,
        *,
        default_ttl: float | None = None,
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_serialized_size: int | None = DEFAULT_MAX_SERIALIZED_SIZE,
        enabled: bool = True,
    ) -> None:
        _check_positive("default_ttl", default_ttl)
        _check_positive("max_size", max_size)
        _check_positive("max_serialized_size", max_serialized_size)
        self.adapter = adapter
        self.default_ttl = default_ttl
        self.max_size = max_size
        self.max_serialized_size = max_serialized_size
        self._enabled = enabled
        self._disabled_depth = 0
        self._hits = self._misses = self._evictions = 0

    @property
    def enabled(self) -> bool:
        """False while switched off, or inside any `temporarily_disabled()` block."""
        return self._enabled and self._disabled_depth == 0

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = value

    @contextmanager
    def temporarily_disabled(self) -> Iterator[None]:
        """`with cache.temporarily_disabled():` gets miss and sets do nothing, for every user
        of this cache, until the block ends. Blocks may nest and overlap across tasks; the
        cache is on again once the last one exits. Deletes and clears still apply."""
        self._disabled_depth += 1
        try:
            yield
        finally:
            self._disabled_depth -= 1

    async def get(self, key: str) -> tuple[bool, Any]:
        """`(True, value)` on a hit, `(False, None)` on a miss (absent, expired, disabled, or
        an entry that no longer deserializes)."""
        if not self.enabled:
            return MISS
        data = await self.adapter.get(normalize_key(key))
        if data is None:
            self._misses += 1
            return MISS
        try:
            value = unpackb(data)
        except SerializationError:
            logger.warning("cache entry %s does not deserialize; treating it as a miss", key)
            self._misses += 1
            return MISS
        self._hits += 1
        return True, value

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Store `value` for `ttl` seconds (None: the default TTL). Raises SerializationError
        for a value msgpack cannot carry or one over `max_serialized_size` bytes."""
        if not self.enabled:
            return
        _check_positive("ttl", ttl)
        data = packb(value, max_size=self.max_serialized_size)
        ttl = self.default_ttl if ttl is None else ttl
        evicted = await self.adapter.set(
            normalize_key(key), data, ttl=ttl, max_entries=self.max_size
        )
        self._evictions += evicted

    async def delete(self, key: str) -> bool:
        """Remove one entry; True when it was there."""
        return await self.adapter.delete(normalize_key(key))

    async def clear(self) -> None:
        """Remove every entry (the counters are kept)."""
        await self.adapter.clear()

    async def stats(self) -> CacheStats:
        return CacheStats(self._hits, self._misses, self._evictions, await self.adapter.size())

    async def close(self) -> None:
        """Close the adapter (and flush what it batches)."""
        await self.adapter.close()


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{name} must be positive (or None), not {value!r}")
