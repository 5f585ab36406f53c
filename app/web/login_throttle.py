"""Slowing down token guessing at POST /auth/session, per client address.

The first few failures cost nothing (people mistype); after that each failure locks the
address out for twice as long as the last, from `first_delay` up to `max_delay`. Only the
most recently failing `max_addresses` addresses are remembered, so a flood of addresses
costs bounded memory (an evicted address starts afresh, which favours nobody: it needs as
many failures again to reach its old lockout). A success forgets the address.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Record:
    failures: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed logins per client address, in an LRU of at most `max_addresses` entries."""

    def __init__(
        self,
        *,
        max_addresses: int = 10_000,
        free_failures: int = 4,
        first_delay: float = 1.0,
        max_delay: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._max, self._free = max_addresses, free_failures
        self._first, self._cap, self._clock = first_delay, max_delay, clock

    def __len__(self) -> int:
        return len(self._records)

    def retry_after(self, address: str) -> float | None:
        """Seconds until `address` may try again; None when it may now."""
        record = self._records.get(address)
        if record is None:
            return None
        left = record.locked_until - self._clock()
        return left if left > 0 else None

    def failed(self, address: str) -> None:
        record = self._records.pop(address, None) or _Record()
        record.failures += 1
        beyond = record.failures - self._free
        if beyond > 0:
            delay = min(self._cap, self._first * 2.0 ** min(beyond - 1, 64))
            record.locked_until = self._clock() + delay
        self._records[address] = record
        while len(self._records) > self._max:
            self._records.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._records.pop(address, None)
