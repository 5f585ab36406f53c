"""The interface every cache backend implements, and nothing more.

An adapter stores opaque bytes under string keys. It owns expiry (an entry past its TTL is
never returned) and LRU eviction (after a `set`, at most `max_entries` live entries remain,
the least recently read or written going first), because only the backend can do both
cheaply and durably: in SQL for SQLite, in a Lua script for Redis. Serialization, the default
TTL, statistics and the on/off switch live above, in `AsyncCache`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class CacheAdapter(ABC):
    """A bounded key -> bytes store with per-entry TTL and LRU eviction."""

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when absent or expired; a hit counts as a use for LRU."""

    @abstractmethod
    async def set(
        self, key: str, value: bytes, *, ttl: float | None, max_entries: int | None
    ) -> int:
        """Store `value` (replacing any entry, TTL included; `ttl` None means no expiry), then
        evict least recently used entries until at most `max_entries` remain. Returns how many
        live entries were evicted (expired ones dropped on the way do not count)."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove `key`; True when a live entry was there."""

    @abstractmethod
    async def clear(self) -> None:
        """Remove every entry this adapter owns (and nothing else)."""

    @abstractmethod
    async def size(self) -> int:
        """How many live (unexpired) entries there are."""

    async def close(self) -> None:
        """Release what the adapter owns (connections, background flushes); idempotent."""
        return None
