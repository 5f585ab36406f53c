"""The contract every cache backend keeps, run against memory, SQLite and Redis alike,
through the public AsyncCache API (and the adapter interface where the cache adds nothing)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.cache import AsyncCache, SerializationError
from app.cache.adapters.base import CacheAdapter

SHORT_TTL = 0.1
PAST_SHORT_TTL = 0.25


async def test_get_of_a_key_never_set_is_a_miss(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)

    assert await cache.get("absent") == (False, None)
    assert (await cache.stats()).misses == 1


async def test_set_then_get_returns_the_value(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)

    await cache.set("report:1", {"rows": [1, 2, 3], "title": "Q3"})

    assert await cache.get("report:1") == (True, {"rows": [1, 2, 3], "title": "Q3"})


async def test_a_cached_none_is_a_hit_not_a_miss(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)

    await cache.set("nothing", None)

    assert await cache.get("nothing") == (True, None)
    stats = await cache.stats()
    assert (stats.hits, stats.misses) == (1, 0)


async def test_rich_values_come_back_equal_and_of_the_same_types(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)
    value = {
        "when": datetime(2024, 3, 31, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),
        "utc": datetime(2024, 1, 1, tzinfo=UTC),
        "at": time(9, 15, tzinfo=ZoneInfo("America/New_York")),
        "id": uuid.UUID(int=42),
        "price": Decimal("19.99"),
        "tags": {"a", "b"},
        "frozen": frozenset({1, 2}),
        "pair": (1, "x"),
        "blob": b"\x00\xff",
    }

    await cache.set("rich", value)
    found, got = await cache.get("rich")

    assert found
    assert got == value
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in value.items()}
    assert got["at"].tzinfo == ZoneInfo("America/New_York")


async def test_set_replaces_the_value_of_an_existing_key(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)

    await cache.set("k", 1)
    await cache.set("k", 2)

    assert await cache.get("k") == (True, 2)
    assert (await cache.stats()).size == 1


async def test_delete_removes_the_entry_and_says_whether_it_was_there(
    adapter: CacheAdapter,
) -> None:
    cache = AsyncCache(adapter)
    await cache.set("k", "v")

    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert await cache.get("k") == (False, None)


async def test_clear_removes_every_entry(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)
    for n in range(5):
        await cache.set(f"k{n}", n)

    await cache.clear()

    assert (await cache.stats()).size == 0
    assert await cache.get("k0") == (False, None)
    await cache.set("after", 1)
    assert await cache.get("after") == (True, 1)


async def test_an_entry_expires_after_its_ttl(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)
    await cache.set("short", "lived", ttl=SHORT_TTL)
    await cache.set("forever", "kept")

    assert await cache.get("short") == (True, "lived")
    await asyncio.sleep(PAST_SHORT_TTL)

    assert await cache.get("short") == (False, None)
    assert await cache.get("forever") == (True, "kept")
    assert (await cache.stats()).size == 1


async def test_default_ttl_applies_unless_a_call_gives_its_own(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter, default_ttl=SHORT_TTL)
    await cache.set("default", 1)
    await cache.set("longer", 2, ttl=60)

    await asyncio.sleep(PAST_SHORT_TTL)

    assert await cache.get("default") == (False, None)
    assert await cache.get("longer") == (True, 2)


async def test_setting_again_without_ttl_drops_the_old_expiry(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)
    await cache.set("k", "first", ttl=SHORT_TTL)
    await cache.set("k", "second")

    await asyncio.sleep(PAST_SHORT_TTL)

    assert await cache.get("k") == (True, "second")


async def test_the_least_recently_used_entry_is_evicted_at_max_size(
    adapter: CacheAdapter,
) -> None:
    cache = AsyncCache(adapter, max_size=2)
    await cache.set("a", 1)
    await cache.set("b", 2)
    assert await cache.get("a") == (True, 1)  # "b" is now the least recently used

    await cache.set("c", 3)

    assert await cache.get("b") == (False, None)
    assert await cache.get("a") == (True, 1)
    assert await cache.get("c") == (True, 3)
    stats = await cache.stats()
    assert (stats.size, stats.evictions) == (2, 1)


async def test_writing_a_key_counts_as_using_it(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter, max_size=2)
    await cache.set("a", 1)
    await cache.set("b", 2)
    await cache.set("a", 10)

    await cache.set("c", 3)

    assert await cache.get("a") == (True, 10)
    assert await cache.get("b") == (False, None)


async def test_expired_entries_make_room_without_counting_as_evictions(
    adapter: CacheAdapter,
) -> None:
    cache = AsyncCache(adapter, max_size=2)
    await cache.set("old", 1, ttl=SHORT_TTL)
    await cache.set("b", 2)
    await asyncio.sleep(PAST_SHORT_TTL)

    await cache.set("c", 3)

    stats = await cache.stats()
    assert (stats.size, stats.evictions) == (2, 0)
    assert await cache.get("b") == (True, 2)


async def test_size_never_exceeds_max_size_under_concurrent_sets(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter, max_size=10)

    await asyncio.gather(*(cache.set(f"k{n}", n) for n in range(50)))

    stats = await cache.stats()
    assert stats.size == 10
    assert stats.evictions == 40


async def test_concurrent_sets_are_all_readable(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter, max_size=None)

    await asyncio.gather(*(cache.set(f"k{n}", n) for n in range(100)))
    results = await asyncio.gather(*(cache.get(f"k{n}") for n in range(100)))

    assert results == [(True, n) for n in range(100)]


async def test_an_oversize_value_is_refused_and_the_old_one_kept(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter, max_serialized_size=100)
    await cache.set("k", "small")

    with pytest.raises(SerializationError, match="over the limit of 100"):
        await cache.set("k", "x" * 200)

    assert await cache.get("k") == (True, "small")


async def test_an_unserializable_value_is_refused(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)

    with pytest.raises(SerializationError, match="object"):
        await cache.set("k", object())

    assert await cache.get("k") == (False, None)


async def test_an_entry_that_does_not_deserialize_is_a_miss(adapter: CacheAdapter) -> None:
    await adapter.set("broken", b"\xc1", ttl=None, max_entries=None)  # 0xc1: never valid
    cache = AsyncCache(adapter)

    assert await cache.get("broken") == (False, None)


async def test_keys_longer_than_the_limit_work_and_stay_distinct(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)
    first, second = "k" * 300 + "1", "k" * 300 + "2"

    await cache.set(first, 1)
    await cache.set(second, 2)

    assert await cache.get(first) == (True, 1)
    assert await cache.get(second) == (True, 2)
    assert await cache.delete(first) is True


async def test_keys_with_pattern_characters_are_plain_keys(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)
    await cache.set("a*", 1)
    await cache.set("a[b]?", 2)

    assert await cache.delete("a*") is True
    assert await cache.get("a[b]?") == (True, 2)


async def test_nothing_is_stored_or_found_while_disabled(adapter: CacheAdapter) -> None:
    cache = AsyncCache(adapter)
    await cache.set("before", 1)

    with cache.temporarily_disabled():
        assert await cache.get("before") == (False, None)
        await cache.set("during", 2)

    assert await cache.get("before") == (True, 1)
    assert await cache.get("during") == (False, None)
