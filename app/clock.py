"""Time as litetask stores it: integer microseconds since the Unix epoch, always UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_us() -> int:
    """The current time in microseconds since the epoch (the unit of every stored time)."""
    return time.time_ns() // 1000


def seconds_to_us(seconds: float) -> int:
    return int(seconds * 1_000_000)


def us_to_datetime(value: int | None) -> datetime | None:
    """A stored time as an aware UTC datetime (None stays None)."""
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def datetime_to_us(value: datetime) -> int:
    """An aware datetime as stored microseconds; a naive one is taken to be UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)
