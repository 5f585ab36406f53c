"""AsyncCacheAdapter: the result cache as the worker uses it.

Lookups and stores never fail a task and never hold it up for long: a cache that is down is
logged and skipped, and one that does not answer within `timeout` seconds (nor within the
attempt's own deadline) counts as a miss, or as a store that did not happen. Single-flight
is kept here too (app/cache/flights.py): identical attempts in this process share one run
and its value, and an invalidation revokes the running flights' right to store. Because the
key is stored on each task row, recovered tasks find each other again by key after a
restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.cache.core import MISS, AsyncCache
from app.cache.errors import CacheError
from app.cache.flights import Flight, Flights
from app.cache.serialization import SerializationError

logger = logging.getLogger(__name__)
DEFAULT_CACHE_TIMEOUT = 1.0
# A lookup may use at most this share of the time an attempt has left, so the function
# keeps time to run when the cache stalls.
LOOKUP_SHARE = 0.5


class AsyncCacheAdapter:
    """`timeout`: the most seconds one lookup or store may take before it is given up."""

    def __init__(self, cache: AsyncCache, *, timeout: float = DEFAULT_CACHE_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.cache = cache
        self.timeout = timeout
        self._flights: Flights[Any] = Flights()

    async def lookup(self, key: str, deadline: float | None = None) -> tuple[bool, Any]:
        """`(True, value)` on a hit; a miss, or a cache that cannot answer in time (by
        `deadline`, in event-loop time), is `(False, None)`."""
        budget = self._budget(deadline, LOOKUP_SHARE)
        try:
            async with asyncio.timeout(budget):
                return await self.cache.get(key)
        except TimeoutError:
            logger.warning("result cache lookup took over %.3g s; running the task", budget)
        except CacheError:
            logger.warning("result cache lookup failed; running the task", exc_info=True)
        return MISS

    async def store(
        self, flight: Flight[Any], value: Any, ttl: float | None, deadline: float | None = None
    ) -> None:
        """Cache the value `flight` computed, unless an invalidation revoked its lease; a
        value too large to cache, a cache that is down or one too slow (by `deadline`) is
        logged."""
        budget = self._budget(deadline, 1.0)
        if not flight.leased or budget <= 0:
            return
        try:
            with flight.storing():
                async with asyncio.timeout(budget):
                    await self.cache.set(flight.key, value, ttl=ttl)
        except TimeoutError:
            logger.warning("result not cached: the cache did not answer within %.3g s", budget)
        except (CacheError, SerializationError) as exc:
            logger.warning("result not cached: %s", exc)

    def joinable(self, key: str) -> Flight[Any] | None:
        """The flight computing `key` here that an attempt starting now should wait for."""
        return self._flights.joinable(key)

    @contextmanager
    def lead(self, key: str) -> Iterator[Flight[Any]]:
        """Mark this attempt as the one computing `key`; followers wake when it ends, with
        the value it shares, or with None (it failed or was cancelled) so one of them runs."""
        with self._flights.lead(key) as flight:
            yield flight

    def followers(self, key: str) -> int:
        """How many attempts wait for the flight computing `key` (0 without one)."""
        flight = self._flights.joinable(key)
        return 0 if flight is None else flight.followers

    async def clear(self) -> None:
        """Forget every entry; no result computed before this call is stored after it."""
        await self._await_stores(self._flights.revoke())
        await self.cache.clear()

    async def delete(self, key: str) -> bool:
        """Forget `key`; a result computed for it before this call is not stored after it."""
        await self._await_stores(self._flights.revoke(key))
        return await self.cache.delete(key)

    async def close(self) -> None:
        await self.cache.close()

    def _budget(self, deadline: float | None, share: float) -> float:
        if deadline is None:
            return self.timeout
        left = deadline - asyncio.get_running_loop().time()
        return max(0.0, min(self.timeout, left * share))

    @staticmethod
    async def _await_stores(flights: list[Flight[Any]]) -> None:
        for flight in flights:
            await flight.store_finished()
