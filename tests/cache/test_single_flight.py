"""Single-flight in one process: identical tasks that run at the same time share the
leader's value even when the cache cannot keep it, and an invalidation during a run wins
over that run (its value is not stored; later tasks do not join it), through the Python API
and over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from app import AsyncTaskWorker, TaskExecutionError, TaskStatus
from app.cache import build_cache_key, key_context
from app.cache.setup import CacheSettings
from tests.cache.conftest import cached_worker
from tests.cache.service_tasks import runs_started
from tests.conftest import ClientFactory, free_loopback_port
from tests.web.helpers import submit, wait_done


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for `condition`, polling; a TimeoutError names a condition that never held."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


class Build:
    """A task type that counts its runs, holds each at a gate, and returns a value no other
    run returns, `size` characters long."""

    def __init__(self) -> None:
        self.runs = 0
        self.gate = asyncio.Event()

    async def run(self, size: int) -> str:
        self.runs += 1
        await self.gate.wait()
        return uuid.uuid4().hex.ljust(size, "x")


def open_worker(
    tmp_path: Path, build: Build, cache: CacheSettings
) -> AbstractAsyncContextManager[AsyncTaskWorker]:
    return cached_worker(tmp_path, {"build": build.run}, cache)


def key_of(size: int) -> str:
    return build_cache_key(key_context("build", [size], {}))


async def result_of(worker: AsyncTaskWorker, task_id: str) -> tuple[Any, bool]:
    [result] = await worker.wait_for_tasks([task_id], timeout=10)
    info = await worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.COMPLETED
    return result, info.from_cache


def unreachable_redis() -> CacheSettings:
    return CacheSettings(backend="redis", redis_url=f"redis://127.0.0.1:{free_loopback_port()}/0")


UNSTORABLE = {
    "over the size cap": lambda: CacheSettings(max_serialized_size=64),
    "redis down": unreachable_redis,
    "switched off": CacheSettings,
    "temporarily disabled": CacheSettings,
}


@pytest.mark.parametrize("why", list(UNSTORABLE))
async def test_followers_get_the_leaders_value_when_the_cache_cannot_keep_it(
    tmp_path: Path, why: str
) -> None:
    build = Build()
    async with open_worker(tmp_path, build, UNSTORABLE[why]()) as worker:
        assert worker.cache is not None
        if why == "switched off":
            worker.cache.cache.enabled = False
        disabled = worker.cache.cache.temporarily_disabled()
        with disabled if why == "temporarily disabled" else contextlib.nullcontext():
            leader = await worker.add_task("build", 200)
            await until(lambda: build.runs == 1)
            followers = [await worker.add_task("build", 200) for _ in range(3)]
            await until(
                lambda: worker.cache is not None and worker.cache.followers(key_of(200)) == 3
            )
            build.gate.set()
            value, from_cache = await result_of(worker, leader)
            shared = [await result_of(worker, task_id) for task_id in followers]

    assert build.runs == 1
    assert from_cache is False and shared == [(value, True)] * 3


async def test_waiting_for_an_identical_task_counts_against_the_timeout(tmp_path: Path) -> None:
    build = Build()
    async with open_worker(tmp_path, build, CacheSettings()) as worker:
        leader = await worker.add_task("build", 10)
        await until(lambda: build.runs == 1)
        follower = await worker.add_task("build", 10, timeout=0.3)
        with pytest.raises(TaskExecutionError, match=r"within 0\.3 seconds"):
            await worker.wait_for_tasks([follower], timeout=10)
        timed_out = await worker.get_task_info(follower)
        assert timed_out is not None and timed_out.errors[-1].error_type == "TaskTimeoutError"
        info = await worker.get_task_info(leader)
        assert info is not None and info.status is TaskStatus.RUNNING
        build.gate.set()
        await result_of(worker, leader)

    assert build.runs == 1


INVALIDATIONS = {
    "clear_cache": lambda worker: worker.clear_cache(),
    "invalidate_cache": lambda worker: worker.invalidate_cache("build", 40),
}


async def run_then_invalidate(worker: AsyncTaskWorker, build: Build, invalidate: str) -> str:
    """Start a task and, while it runs, invalidate its result; returns its id."""
    old = await worker.add_task("build", 40)
    await until(lambda: build.runs == 1)
    await INVALIDATIONS[invalidate](worker)
    return old


@pytest.mark.parametrize("invalidate", list(INVALIDATIONS))
async def test_an_invalidation_during_a_run_is_not_undone_by_its_store(
    tmp_path: Path, invalidate: str
) -> None:
    build = Build()
    async with open_worker(tmp_path, build, CacheSettings()) as worker:
        old = await run_then_invalidate(worker, build, invalidate)
        build.gate.set()
        old_value, _ = await result_of(worker, old)
        fresh_value, from_cache = await result_of(worker, await worker.add_task("build", 40))

    assert (from_cache, build.runs) == (False, 2)
    assert fresh_value != old_value


@pytest.mark.parametrize("invalidate", list(INVALIDATIONS))
async def test_a_task_submitted_after_an_invalidation_does_not_join_the_old_run(
    tmp_path: Path, invalidate: str
) -> None:
    build = Build()
    async with open_worker(tmp_path, build, CacheSettings()) as worker:
        old = await run_then_invalidate(worker, build, invalidate)
        later = await worker.add_task("build", 40)
        await until(lambda: build.runs == 2)  # it runs while the old run still runs
        build.gate.set()
        old_value, _ = await result_of(worker, old)
        later_value, later_from_cache = await result_of(worker, later)
        next_value, next_from_cache = await result_of(worker, await worker.add_task("build", 40))

    assert later_value != old_value and later_from_cache is False
    assert (next_value, next_from_cache) == (later_value, True)


async def test_delete_cache_over_http_wins_over_a_running_task(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    body = {"args": [str(gate)], "use_cache": True}
    async with make_client(task_modules=("tests.cache.service_tasks",)) as client:
        old = await submit(client, "cachetest.gated", **body)
        await until(lambda: runs_started(gate) == 1)
        assert (await client.delete("/cache")).status_code == 200
        later = await submit(client, "cachetest.gated", **body)
        await until(lambda: runs_started(gate) == 2)  # not waiting for the old run
        (gate / "open").touch()
        old_done = await wait_done(client, str(old["id"]))
        later_done = await wait_done(client, str(later["id"]))
        again = await wait_done(
            client, str((await submit(client, "cachetest.gated", **body))["id"])
        )

    assert later_done["result"] != old_done["result"] and later_done["from_cache"] is False
    assert (again["result"], again["from_cache"]) == (later_done["result"], True)
