"""Single-flight in one process: while one attempt computes a key, identical attempts wait
for it and take its value directly (Go's singleflight, Guava's LoadingCache), whether or not
the cache can keep that value (too large, backend down, cache switched off).

Each flight also holds a lease on the cache, as memcache leases do: an invalidation revokes
the leases of the flights running at that moment and forgets them, so the value they compute
is never stored over the invalidation, and attempts that start after it begin a flight of
their own instead of joining one whose value is already stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Flight(Generic[T]):
    """One computation of `key` in this process; its leader shares the value it computed."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.leased = True  # False once an invalidation revoked it: store nothing
        self.followers = 0
        self._outcome: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._storing: asyncio.Future[None] | None = None

    def share(self, value: T) -> None:
        """Hand `value` to every follower, present and future, of this flight."""
        if not self._outcome.done():
            self._outcome.set_result(value)

    async def wait(self) -> T | None:
        """The leader's value, or None when it ended without one (it failed or was
        cancelled): the caller may then lead a flight itself. Cancelling the caller leaves the
        flight alone."""
        self.followers += 1
        try:
            return await asyncio.shield(self._outcome)
        finally:
            self.followers -= 1

    @contextmanager
    def storing(self) -> Iterator[None]:
        """Mark the span of the leader's store, so an invalidation can wait for it to end."""
        self._storing = asyncio.get_running_loop().create_future()
        try:
            yield
        finally:
            self._storing.set_result(None)

    async def store_finished(self) -> None:
        """Return once no store of this flight is under way."""
        if self._storing is not None:
            await asyncio.shield(self._storing)

    def end(self) -> None:
        """Let followers still waiting go (with None, unless a value was shared)."""
        if not self._outcome.done():
            self._outcome.set_result(None)


class Flights(Generic[T]):
    """The flights running in this process, by key."""

    def __init__(self) -> None:
        self._flights: dict[str, Flight[T]] = {}

    def joinable(self, key: str) -> Flight[T] | None:
        """The flight an attempt for `key` starting now should wait for, if any."""
        return self._flights.get(key)

    @contextmanager
    def lead(self, key: str) -> Iterator[Flight[T]]:
        """Start the flight of `key`; when the block ends, however it ends, followers still
        waiting get None unless the leader shared a value."""
        flight: Flight[T] = Flight(key)
        self._flights[key] = flight
        try:
            yield flight
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.end()

    def revoke(self, key: str | None = None) -> list[Flight[T]]:
        """Revoke the lease of the flight of `key` (of every flight when None) and forget
        it, so that no attempt joins it any more; returns the flights revoked."""
        if key is None:
            revoked, self._flights = list(self._flights.values()), {}
        else:
            flight = self._flights.pop(key, None)
            revoked = [] if flight is None else [flight]
        for flight in revoked:
            flight.leased = False
        return revoked
