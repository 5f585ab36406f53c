"""What only the Redis backend promises: Redis holds the TTL, entries are shared by every
client of the same prefix, and a prefix is a boundary nothing crosses."""

from __future__ import annotations

import asyncio
import socket

import pytest
from redis.asyncio import Redis

from app.cache import AsyncCache, CacheUnavailableError
from app.cache.adapters.redis import DEFAULT_PREFIX, RedisCacheAdapter


async def test_redis_itself_expires_an_entry_with_a_ttl(redis_client: Redis) -> None:
    cache = AsyncCache(RedisCacheAdapter(redis_client))
    await cache.set("k", 1, ttl=30)
    await cache.set("forever", 2)

    ttl_ms = await redis_client.pttl(f"{DEFAULT_PREFIX}v:k")

    assert 0 < ttl_ms <= 30_000
    assert await redis_client.pttl(f"{DEFAULT_PREFIX}v:forever") == -1


async def test_processes_sharing_a_prefix_share_entries(
    redis_url: str, redis_client: Redis
) -> None:
    writer = AsyncCache(RedisCacheAdapter.from_url(redis_url))
    reader = AsyncCache(RedisCacheAdapter.from_url(redis_url))

    await writer.set("shared", [1, 2])

    assert await reader.get("shared") == (True, [1, 2])
    await writer.close()
    await reader.close()


async def test_a_prefix_keeps_caches_apart(redis_client: Redis) -> None:
    tenant_a = AsyncCache(RedisCacheAdapter(redis_client, prefix="a:"))
    tenant_b = AsyncCache(RedisCacheAdapter(redis_client, prefix="a*:"))
    await redis_client.set("unrelated", b"keep me")
    await tenant_a.set("k", "from a")
    await tenant_b.set("k", "from b")

    await tenant_b.clear()

    assert await tenant_a.get("k") == (True, "from a")
    assert await tenant_b.get("k") == (False, None)
    assert await redis_client.get("unrelated") == b"keep me"
    assert ((await tenant_a.stats()).size, (await tenant_b.stats()).size) == (1, 0)


async def test_an_entry_removed_behind_the_cache_is_a_miss(redis_client: Redis) -> None:
    cache = AsyncCache(RedisCacheAdapter(redis_client), max_size=2)
    await cache.set("a", 1)
    await cache.set("b", 2)
    await redis_client.delete(f"{DEFAULT_PREFIX}v:a")  # as maxmemory eviction would

    assert await cache.get("a") == (False, None)
    assert (await cache.stats()).size == 1
    await cache.set("c", 3)
    assert (await cache.stats()).evictions == 0


async def test_a_client_you_pass_stays_open(redis_client: Redis) -> None:
    adapter = RedisCacheAdapter(redis_client)

    await adapter.close()

    assert await redis_client.ping() is True


async def test_a_client_decoding_responses_is_refused(redis_url: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            RedisCacheAdapter(client)
    finally:
        await client.aclose()


async def test_an_unreachable_server_reports_the_cache_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        cache = AsyncCache(RedisCacheAdapter.from_url(f"redis://127.0.0.1:{port}/0"))
        try:
            with pytest.raises(CacheUnavailableError) as raised:
                await cache.get("k")
        finally:
            await cache.close()

    assert raised.value.backend == "redis"


async def test_clear_leaves_a_cache_whose_prefix_extends_this_one_alone(
    redis_client: Redis,
) -> None:
    short = AsyncCache(RedisCacheAdapter(redis_client, prefix="a"))
    longer = AsyncCache(RedisCacheAdapter(redis_client, prefix="ab:"))
    await short.set("k", 1)
    await longer.set("k", 2)
    await redis_client.set("ab:not-a-cache", b"keep me")

    await short.clear()

    assert await short.get("k") == (False, None)
    assert await longer.get("k") == (True, 2)
    assert (await longer.stats()).size == 1
    assert await redis_client.get("ab:not-a-cache") == b"keep me"


async def _entries_and_index(client: Redis, prefix: str) -> tuple[set[bytes], set[bytes]]:
    entry_prefix = f"{prefix}v:".encode()
    entries = {key[len(entry_prefix) :] async for key in client.scan_iter(match=prefix + "v:*")}
    return entries, set(await client.zrange(prefix + "lru", 0, -1))


async def test_clear_racing_writes_leaves_no_entry_outside_the_lru_index(
    redis_client: Redis,
) -> None:
    """An entry the LRU index does not know is never evicted: the cache would outgrow its
    max_size for good."""
    cache = AsyncCache(RedisCacheAdapter(redis_client, prefix="race:"), max_size=None)
    for start in range(0, 3000, 50):
        await asyncio.gather(*(cache.set(f"old{n}", n) for n in range(start, start + 50)))

    async def write_during_the_clear() -> None:
        for n in range(300):
            await cache.set(f"new{n}", n)

    await asyncio.gather(cache.clear(), write_during_the_clear())

    entries, indexed = await _entries_and_index(redis_client, "race:")
    assert entries == indexed
    assert not any(key.startswith(b"old") for key in entries)
    assert (await cache.stats()).size == len(entries)
