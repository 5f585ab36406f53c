"""A stalled cache never holds a task past its timeout: the attempt's lookup, its wait for an
identical task and its store all run under the task's own deadline, and a cache that does not
answer in time is a miss (or a store that did not happen), never a failure. Tried against a
real redis-server, paused with SIGSTOP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app import AsyncTaskWorker, TaskStatus
from app.cache.setup import CacheSettings
from app.config import ConfigError, Settings
from tests.cache.conftest import RedisServer, cached_worker

SLACK = 1.0  # scheduling on a loaded machine; a stalled lookup alone used to cost 10 s+


async def double(x: int) -> int:
    return x * 2


@pytest.fixture
async def worker(tmp_path: Path, own_redis: RedisServer) -> AsyncIterator[AsyncTaskWorker]:
    cache = CacheSettings(backend="redis", redis_url=own_redis.url, timeout=0.5)
    async with cached_worker(tmp_path, {"double": double}, cache) as started:
        try:
            yield started
        finally:
            own_redis.resume()  # before the stop, which closes the connections


async def timed_run(worker: AsyncTaskWorker, x: int, **options: float) -> tuple[int, float]:
    start = time.monotonic()
    task_id = await worker.add_task("double", x, **options)
    [result] = await worker.wait_for_tasks([task_id], timeout=15)
    elapsed = time.monotonic() - start
    info = await worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.COMPLETED and not info.from_cache
    return result, elapsed


@pytest.mark.parametrize("timeout", [2.0, 0.3])  # above and below the cache's own timeout
async def test_a_stalled_redis_does_not_hold_a_task_past_its_timeout(
    worker: AsyncTaskWorker, own_redis: RedisServer, timeout: float
) -> None:
    await timed_run(worker, 1)  # connections to the server are open
    own_redis.pause()

    result, elapsed = await timed_run(worker, 2, timeout=timeout)

    assert result == 4
    assert elapsed < timeout + SLACK


async def test_a_stalled_redis_costs_a_task_without_a_timeout_at_most_the_cache_timeout_twice(
    worker: AsyncTaskWorker, own_redis: RedisServer
) -> None:
    await timed_run(worker, 1)
    own_redis.pause()

    result, elapsed = await timed_run(worker, 3)

    assert result == 6
    assert elapsed < 2 * 0.5 + SLACK


async def test_the_cache_answers_again_once_redis_does(
    worker: AsyncTaskWorker, own_redis: RedisServer
) -> None:
    own_redis.pause()
    await timed_run(worker, 5, timeout=1.0)
    own_redis.resume()

    await timed_run(worker, 5)  # stored now
    task_id = await worker.add_task("double", 5)
    assert await worker.wait_for_tasks([task_id], timeout=10) == [10]
    info = await worker.get_task_info(task_id)
    assert info is not None and info.from_cache


def test_the_service_reads_the_cache_timeout_and_refuses_a_useless_one() -> None:
    settings = Settings.from_env({"LITETASK_CACHE_TIMEOUT": "0.25"})
    assert settings.cache().timeout == 0.25
    for bad in ("0", "-1", "nan"):
        with pytest.raises(ConfigError, match="LITETASK_CACHE_TIMEOUT"):
            Settings.from_env({"LITETASK_CACHE_TIMEOUT": bad})
