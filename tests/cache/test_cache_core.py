"""AsyncCache's own behaviour, above any backend: validation, the on/off switch, counters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.cache import AsyncCache, CacheError, CacheStats, InvalidCacheKeyError
from app.cache.adapters.memory import MemoryCacheAdapter
from app.errors import TaskError


@pytest.fixture
def cache() -> AsyncCache:
    return AsyncCache(MemoryCacheAdapter())


@pytest.mark.parametrize(
    "options",
    [{"max_size": 0}, {"default_ttl": -1.0}, {"max_serialized_size": 0}],
    ids=["max_size", "default_ttl", "max_serialized_size"],
)
def test_limits_must_be_positive(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        AsyncCache(MemoryCacheAdapter(), **options)


async def test_a_ttl_must_be_positive(cache: AsyncCache) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        await cache.set("k", 1, ttl=0)


@pytest.mark.parametrize("key", ["", None, 7])
async def test_a_key_must_be_a_non_empty_string(cache: AsyncCache, key: Any) -> None:
    with pytest.raises(InvalidCacheKeyError):
        await cache.set(key, 1)


def test_cache_errors_are_task_errors_of_category_cache() -> None:
    error = InvalidCacheKeyError(key=3)

    assert isinstance(error, CacheError)
    assert isinstance(error, TaskError)
    assert error.category == "cache"
    assert (
        str(error)
        == "A cache key is not a non-empty string (or a key function did not return one)."
    )


async def test_a_cache_built_disabled_stores_nothing_until_enabled() -> None:
    cache = AsyncCache(MemoryCacheAdapter(), enabled=False)
    await cache.set("k", 1)
    assert await cache.get("k") == (False, None)

    cache.enabled = True
    await cache.set("k", 2)

    assert await cache.get("k") == (True, 2)


async def test_lookups_while_disabled_are_not_counted(cache: AsyncCache) -> None:
    with cache.temporarily_disabled():
        await cache.get("k")

    assert await cache.stats() == CacheStats(hits=0, misses=0, evictions=0, size=0)


async def test_delete_and_clear_still_apply_while_disabled(cache: AsyncCache) -> None:
    await cache.set("a", 1)
    await cache.set("b", 2)

    with cache.temporarily_disabled():
        assert await cache.delete("a") is True
        await cache.clear()

    assert (await cache.stats()).size == 0


async def test_the_cache_is_back_on_only_when_the_last_overlapping_block_ends(
    cache: AsyncCache,
) -> None:
    first_inside, second_inside, first_may_leave = (asyncio.Event() for _ in range(3))

    async def first() -> None:
        with cache.temporarily_disabled():
            first_inside.set()
            await first_may_leave.wait()

    async def second() -> bool:
        with cache.temporarily_disabled():
            second_inside.set()
            await first_task
            return cache.enabled

    first_task = asyncio.create_task(first())
    await first_inside.wait()
    second_task = asyncio.create_task(second())
    await second_inside.wait()
    first_may_leave.set()

    assert await second_task is False  # the first block ended, the second still holds it off
    assert cache.enabled is True


async def test_nested_blocks_restore_the_previous_state(cache: AsyncCache) -> None:
    with cache.temporarily_disabled():
        with cache.temporarily_disabled():
            assert not cache.enabled
        assert not cache.enabled
    assert cache.enabled


async def test_stats_count_hits_and_misses(cache: AsyncCache) -> None:
    await cache.set("k", 1)
    for key in ("k", "k", "k", "absent"):
        await cache.get(key)

    stats = await cache.stats()

    assert (stats.hits, stats.misses, stats.size) == (3, 1, 1)
    assert stats.hit_rate == 0.75


def test_hit_rate_of_no_lookups_is_zero() -> None:
    assert CacheStats(hits=0, misses=0, evictions=0, size=0).hit_rate == 0.0
