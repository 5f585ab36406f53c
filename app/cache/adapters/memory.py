"""MemoryCacheAdapter: an OrderedDict in LRU order, for tests and single-process caches that
need not survive a restart. Every operation is O(1) except `size`, which drops expired
entries first (O(n), for statistics only).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from app.cache.adapters.base import CacheAdapter


class MemoryCacheAdapter(CacheAdapter):
    """Entries live in this process only. Expiry uses the monotonic clock, so a wall-clock
    jump neither expires nor revives anything."""

    def __init__(self) -> None:
        # key -> (value, monotonic expiry or None); least recently used first.
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if _expired(entry, time.monotonic()):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    async def set(
        self, key: str, value: bytes, *, ttl: float | None, max_entries: int | None
    ) -> int:
        expires = time.monotonic() + ttl if ttl is not None else None
        self._entries[key] = (value, expires)
        self._entries.move_to_end(key)
        return self._evict(max_entries) if max_entries is not None else 0

    def _evict(self, max_entries: int) -> int:
        """Pop from the LRU end until within bounds; an expired entry popped on the way is a
        clean-up, not an eviction."""
        evicted, now = 0, time.monotonic()
        while len(self._entries) > max_entries:
            _key, entry = self._entries.popitem(last=False)
            evicted += not _expired(entry, now)
        return evicted

    async def delete(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        return entry is not None and not _expired(entry, time.monotonic())

    async def clear(self) -> None:
        self._entries.clear()

    async def size(self) -> int:
        now = time.monotonic()
        for key in [k for k, entry in self._entries.items() if _expired(entry, now)]:
            del self._entries[key]
        return len(self._entries)


def _expired(entry: tuple[bytes, float | None], now: float) -> bool:
    expires = entry[1]
    return expires is not None and expires <= now
