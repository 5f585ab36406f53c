"""The result cache joined to the worker: hits skip the function, identical tasks share one
run (single-flight), keys and TTLs per type and per call, invalidation, every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app import AsyncTaskWorker, TaskRegistry, TaskStatus
from app.cache import compose_key_functions, extract_key_component
from app.cache.setup import CacheSettings
from app.events.log import EventType, TaskEvent


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def registry(calls: Calls) -> TaskRegistry:
    registry = TaskRegistry()

    async def square(x: int, label: str = "") -> int:
        calls.count += 1
        calls.started.set()
        await calls.gate.wait()
        return x * x

    async def lookup(user: str, request_id: str) -> str:
        calls.count += 1
        return user.upper()

    registry.register("square", square)
    registry.register("cached_square", square, use_cache=True)
    registry.register(
        "lookup",
        lookup,
        use_cache=True,
        cache_key_fn=compose_key_functions(
            extract_key_component("func_name"), extract_key_component("kwargs.user")
        ),
    )
    return registry


@pytest.fixture
def events() -> list[TaskEvent]:
    return []


async def open_worker(
    tmp_path: Path, registry: TaskRegistry, events: list[TaskEvent], cache: CacheSettings
) -> AsyncTaskWorker:
    worker = AsyncTaskWorker(
        f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}",
        registry=registry,
        event_sink=events.extend,
        cache=cache,
    )
    await worker.start()
    return worker


@pytest.fixture
async def worker(
    tmp_path: Path, registry: TaskRegistry, events: list[TaskEvent]
) -> AsyncIterator[AsyncTaskWorker]:
    started = await open_worker(tmp_path, registry, events, CacheSettings())
    yield started
    await started.stop()


async def run(worker: AsyncTaskWorker, *args: Any, **kwargs: Any) -> Any:
    task_id = await worker.add_task(*args, **kwargs)
    [result] = await worker.wait_for_tasks([task_id], timeout=10)
    info = await worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.COMPLETED
    return result, info.from_cache


async def test_a_hit_completes_without_running_and_says_so(
    worker: AsyncTaskWorker, calls: Calls, events: list[TaskEvent]
) -> None:
    assert await run(worker, "square", 4, use_cache=True) == (16, False)
    assert await run(worker, "square", 4, use_cache=True) == (16, True)
    assert calls.count == 1
    completed = [e.payload["from_cache"] for e in events if e.type == EventType.COMPLETED]
    assert completed == [False, True]


async def test_without_use_cache_the_function_runs_every_time(
    worker: AsyncTaskWorker, calls: Calls
) -> None:
    await run(worker, "square", 3)
    await run(worker, "square", 3)
    assert calls.count == 2


async def test_the_task_type_default_and_a_per_call_override(
    worker: AsyncTaskWorker, calls: Calls
) -> None:
    assert await run(worker, "cached_square", 5) == (25, False)
    assert await run(worker, "cached_square", 5) == (25, True)
    assert await run(worker, "cached_square", 5, use_cache=False) == (25, False)
    assert calls.count == 2


async def test_different_arguments_are_different_entries(
    worker: AsyncTaskWorker, calls: Calls
) -> None:
    await run(worker, "cached_square", 2)
    await run(worker, "cached_square", 2, label="other")
    assert calls.count == 2


async def test_a_key_function_decides_what_is_identical(
    worker: AsyncTaskWorker, calls: Calls
) -> None:
    assert await run(worker, "lookup", user="ann", request_id="r1") == ("ANN", False)
    assert await run(worker, "lookup", user="ann", request_id="r2") == ("ANN", True)
    assert await run(worker, "lookup", user="bob", request_id="r1") == ("BOB", False)


async def test_cache_ttl_expires_an_entry(worker: AsyncTaskWorker, calls: Calls) -> None:
    await run(worker, "square", 6, use_cache=True, cache_ttl=0.2)
    await asyncio.sleep(0.3)
    assert await run(worker, "square", 6, use_cache=True, cache_ttl=0.2) == (36, False)
    assert calls.count == 2


async def test_invalidate_and_clear(worker: AsyncTaskWorker, calls: Calls) -> None:
    await run(worker, "cached_square", 7)
    assert await worker.invalidate_cache("cached_square", 7) is True
    assert await worker.invalidate_cache("cached_square", 7) is False
    assert await run(worker, "cached_square", 7) == (49, False)
    await worker.clear_cache()
    assert await run(worker, "cached_square", 7) == (49, False)
    assert calls.count == 3


async def test_identical_tasks_while_the_first_runs_share_its_run(
    worker: AsyncTaskWorker, calls: Calls
) -> None:
    calls.gate.clear()
    first = await worker.add_task("cached_square", 9)
    await asyncio.wait_for(calls.started.wait(), 5)
    later = [await worker.add_task("cached_square", 9) for _ in range(3)]
    await asyncio.sleep(0.2)
    assert calls.count == 1
    calls.gate.set()
    assert await worker.wait_for_tasks([first, *later], timeout=10) == [81] * 4
    assert calls.count == 1
    infos = [await worker.get_task_info(task_id) for task_id in later]
    assert all(info is not None and info.from_cache for info in infos)


async def test_a_failed_leader_lets_a_follower_run(tmp_path: Path, events: list[TaskEvent]) -> None:
    registry = TaskRegistry()
    attempts: list[str] = []
    gate = asyncio.Event()
    started = asyncio.Event()

    async def fragile(x: int, who: str) -> int:
        attempts.append(who)
        started.set()
        await gate.wait()
        if who == "leader":
            raise RuntimeError("leader fails")
        return x

    key_fn = extract_key_component("args.0")
    registry.register("fragile", fragile, use_cache=True, cache_key_fn=key_fn)
    worker = await open_worker(tmp_path, registry, events, CacheSettings())
    try:
        leader = await worker.add_task("fragile", 1, "leader")
        await asyncio.wait_for(started.wait(), 5)
        follower = await worker.add_task("fragile", 1, "follower")
        await asyncio.sleep(0.1)
        gate.set()
        assert await worker.wait_for_tasks([follower], timeout=10) == [1]
        info = await worker.get_task_info(leader)
        assert info is not None and info.status is TaskStatus.FAILED
    finally:
        await worker.stop()
    assert attempts == ["leader", "follower"]


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
async def test_every_backend_serves_hits(
    tmp_path: Path,
    registry: TaskRegistry,
    events: list[TaskEvent],
    calls: Calls,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    settings = CacheSettings(backend=backend, redis_url=redis_url)  # type: ignore[arg-type]
    worker = await open_worker(tmp_path, registry, events, settings)
    try:
        await worker.clear_cache()
        assert await run(worker, "cached_square", 8) == (64, False)
        assert await run(worker, "cached_square", 8) == (64, True)
    finally:
        await worker.stop()
    assert calls.count == 1


async def test_the_sqlite_cache_survives_a_restart(
    tmp_path: Path, registry: TaskRegistry, events: list[TaskEvent], calls: Calls
) -> None:
    worker = await open_worker(tmp_path, registry, events, CacheSettings())
    await run(worker, "cached_square", 10)
    await worker.stop()
    worker = await open_worker(tmp_path, registry, events, CacheSettings())
    try:
        assert await run(worker, "cached_square", 10) == (100, True)
    finally:
        await worker.stop()
    assert calls.count == 1


async def test_backend_none_runs_everything(
    tmp_path: Path, registry: TaskRegistry, events: list[TaskEvent], calls: Calls
) -> None:
    worker = await open_worker(tmp_path, registry, events, CacheSettings(backend="none"))
    try:
        await run(worker, "cached_square", 3)
        assert await run(worker, "cached_square", 3) == (9, False)
        assert worker.cache is None
    finally:
        await worker.stop()
