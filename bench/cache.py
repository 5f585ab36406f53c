"""Cache get/set throughput per adapter, as ratios against baselines measured in the same run:
a plain dict for every adapter, and raw redis-py GET/SET for the Redis adapter.

    uv run python bench/cache.py [--seconds 0.3]

Each figure is ops/s over `--seconds` of one caller awaiting one op at a time (latency bound),
plus 64 callers at once for the backends that batch (SQLite group commit) or pipeline.
Starts its own redis-server on a free loopback port when the binary is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from app.cache import AsyncCache
from app.cache.adapters.memory import MemoryCacheAdapter
from app.cache.adapters.redis import RedisCacheAdapter
from app.cache.adapters.sqlite import SQLiteCacheAdapter
from app.cache.serialization import packb
from app.db.engine import create_engines
from app.db.migrate import upgrade
from app.db.writer import GroupCommitWriter

KEYS = [f"bench:{n}" for n in range(1000)]
VALUE = {"id": 12345, "name": "x" * 32, "tags": ["a", "b", "c"], "score": 0.5}
CONCURRENCY = 64
AsyncOp = Callable[[int], Awaitable[Any]]


def dict_rates(seconds: float) -> tuple[float, float]:
    """Baseline: the same key pattern against a dict holding the same values."""
    store: dict[str, Any] = {}

    def set_chunk(start: int) -> None:
        for n in range(start, start + 1000):
            store[KEYS[n % 1000]] = VALUE

    def get_chunk(start: int) -> None:
        for n in range(start, start + 1000):
            store.get(KEYS[n % 1000])

    return sync_rate(set_chunk, seconds), sync_rate(get_chunk, seconds)


def sync_rate(chunk: Callable[[int], None], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        chunk(done)
        done += 1000
    return done / elapsed


async def async_rate(op: AsyncOp, seconds: float, concurrency: int = 1) -> float:
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        if concurrency == 1:
            await op(done)
        else:
            await asyncio.gather(*(op(done + i) for i in range(concurrency)))
        done += concurrency
    return done / elapsed


async def cache_rates(cache: AsyncCache, seconds: float, *, concurrent: bool) -> dict[str, float]:
    async def set_op(n: int) -> None:
        await cache.set(KEYS[n % 1000], VALUE)

    async def get_op(n: int) -> None:
        found, _ = await cache.get(KEYS[n % 1000])
        assert found

    await asyncio.gather(*(cache.set(key, VALUE) for key in KEYS))  # every get is a hit
    rates = {"set": await async_rate(set_op, seconds), "get": await async_rate(get_op, seconds)}
    if concurrent:
        rates[f"set x{CONCURRENCY}"] = await async_rate(set_op, seconds, CONCURRENCY)
        rates[f"get x{CONCURRENCY}"] = await async_rate(get_op, seconds, CONCURRENCY)
    return rates


async def raw_redis_rates(client: Redis, seconds: float) -> dict[str, float]:
    """Baseline: redis-py GET/SET of the same msgpack bytes, no scripts, no LRU."""
    data = packb(VALUE)

    async def set_op(n: int) -> None:
        await client.set("raw:" + KEYS[n % 1000], data)

    async def get_op(n: int) -> None:
        await client.get("raw:" + KEYS[n % 1000])

    return {
        "set": await async_rate(set_op, seconds),
        "get": await async_rate(get_op, seconds),
        f"set x{CONCURRENCY}": await async_rate(set_op, seconds, CONCURRENCY),
        f"get x{CONCURRENCY}": await async_rate(get_op, seconds, CONCURRENCY),
    }


@asynccontextmanager
async def sqlite_cache(directory: Path) -> AsyncIterator[AsyncCache]:
    engines = create_engines(f"sqlite+aiosqlite:///{directory / 'bench.db'}")
    await upgrade(engines.writer)
    writer = GroupCommitWriter(engines.writer)
    await writer.start()
    cache = AsyncCache(SQLiteCacheAdapter(writer, engines.reader), max_size=2000)
    try:
        yield cache
    finally:
        await cache.close()
        await writer.stop()
        await engines.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway redis-server without persistence; None when the binary is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(
        [*command, "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"redis-server did not start on port {port}")


Baselines = dict[str, dict[str, float]]  # label -> op -> ops/s


def report(name: str, rates: dict[str, float], baselines: Baselines) -> None:
    """One line per op: its rate, then its ratio to each baseline's rate for the same op
    (the dict has no concurrent variant, so "get x64" is compared with its plain "get")."""
    for op, rate in rates.items():
        ratios = [
            f"{rate / base.get(op, base[op.split()[0]]):.3g}x {label}"
            for label, base in baselines.items()
        ]
        print(f"{name} {op}: {rate:,.0f} ops/s = " + " = ".join(ratios))


async def run(seconds: float, redis_url: str | None) -> None:
    dict_set, dict_get = dict_rates(seconds)
    dict_baseline = {"set": dict_set, "get": dict_get}
    print(f"baseline dict set: {dict_set:,.0f} ops/s, get: {dict_get:,.0f} ops/s")
    memory = AsyncCache(MemoryCacheAdapter(), max_size=2000)
    report("memory", await cache_rates(memory, seconds, concurrent=False), {"dict": dict_baseline})
    with tempfile.TemporaryDirectory() as directory:
        async with sqlite_cache(Path(directory)) as cache:
            rates = await cache_rates(cache, seconds, concurrent=True)
        report("sqlite", rates, {"dict": dict_baseline})
    if redis_url is None:
        print("redis: skipped (redis-server is not installed)")
        return
    await run_redis(redis_url, seconds, dict_baseline)


async def run_redis(url: str, seconds: float, dict_baseline: dict[str, float]) -> None:
    client = Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=50))
    try:
        raw = await raw_redis_rates(client, seconds)
        for op, rate in raw.items():
            print(f"baseline redis-py {op}: {rate:,.0f} ops/s")
        cache = AsyncCache(RedisCacheAdapter(client), max_size=2000)
        rates = await cache_rates(cache, seconds, concurrent=True)
        report("redis", rates, {"raw redis-py": raw, "dict": dict_baseline})
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=0.3, help="per measurement")
    seconds = parser.parse_args().seconds
    with redis_server() as url:
        asyncio.run(run(seconds, url))


if __name__ == "__main__":
    main()
