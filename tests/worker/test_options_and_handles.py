"""Options apart from arguments (`options=TaskOptions(...)`, the clash error without it) and
the handle `@task` returns (`await fn(...)`, `fn.defer(...)`, `fn.configure(...).defer(...)`),
through the public API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import app.worker.registry as registry_module
from app import (
    AmbiguousWorkerError,
    AsyncTaskWorker,
    TaskArgumentsError,
    TaskOptions,
    TaskRegistry,
    TaskStatus,
    WorkerNotRunningError,
)

from .conftest import sql


async def fetch(url: str, timeout: float = 1.0, priority: str = "low") -> dict[str, Any]:
    """A task whose own parameters share names with options (timeout, priority)."""
    return {"url": url, "timeout": timeout, "priority": priority}


@pytest.fixture
def api_registry() -> TaskRegistry:
    registry = TaskRegistry()
    registry.register("fetch", fetch)
    return registry


@pytest.fixture
async def api_worker(
    database_url: str, api_registry: TaskRegistry
) -> AsyncIterator[AsyncTaskWorker]:
    async with AsyncTaskWorker(database_url, registry=api_registry) as started:
        yield started


async def test_a_keyword_both_parameter_and_option_raises_naming_it(
    api_worker: AsyncTaskWorker, database_url: str
) -> None:
    with pytest.raises(TaskArgumentsError) as caught:
        await api_worker.add_task("fetch", "https://example.org", timeout=30)
    message = str(caught.value)
    assert "'timeout'" in message and "options=" in message
    assert sql(database_url, "select count(*) from tasks") == [(0,)]


async def test_with_options_every_keyword_goes_to_the_function(
    api_worker: AsyncTaskWorker,
) -> None:
    task_id = await api_worker.add_task(
        "fetch",
        "https://example.org",
        timeout=30,
        priority="high",
        options=TaskOptions(timeout=5, priority=2, metadata={"group": "g"}),
    )
    assert await api_worker.wait_for_tasks([task_id], timeout=10) == [
        {"url": "https://example.org", "timeout": 30, "priority": "high"}
    ]
    info = await api_worker.get_task_info(task_id)
    assert info is not None
    assert (info.timeout, info.priority, info.metadata) == (5.0, 2, {"group": "g"})
    assert info.kwargs == {"timeout": 30, "priority": "high"}


async def test_options_that_name_no_parameter_still_work_without_options(
    api_worker: AsyncTaskWorker,
) -> None:
    task_id = await api_worker.add_task("fetch", "u", max_attempts=3, delay=0)
    await api_worker.wait_for_tasks([task_id], timeout=10)
    info = await api_worker.get_task_info(task_id)
    assert info is not None and info.max_attempts == 3 and info.kwargs == {}


async def test_options_must_be_task_options(api_worker: AsyncTaskWorker) -> None:
    with pytest.raises(TaskArgumentsError, match="TaskOptions"):
        await api_worker.add_task("fetch", "u", options={"priority": 1})  # type: ignore[arg-type]


async def test_a_handle_runs_as_the_function_and_defers_a_task(
    database_url: str,
) -> None:
    registry = TaskRegistry()

    @registry.task("double", max_attempts=2)
    async def double(x: int, timeout: int = 0) -> int:
        return 2 * x + timeout

    assert await double(4) == 8  # still the plain function: no worker, no task
    async with AsyncTaskWorker(database_url, registry=registry) as worker:
        plain = await double.defer(5, timeout=1)  # every keyword is an argument
        chosen = await double.configure(priority=7, timeout=9).defer(6)
        assert await worker.wait_for_tasks([plain, chosen], timeout=10) == [11, 12]
        info = await worker.get_task_info(chosen)
        assert info is not None
        assert (info.priority, info.timeout, info.max_attempts) == (7, 9.0, 2)
        by_handle = await worker.add_task(double, 1)  # the handle names its type
        assert await worker.wait_for_tasks([by_handle], timeout=10) == [2]
    with pytest.raises(WorkerNotRunningError, match="configure"):
        await double.defer(1)


async def test_configure_takes_a_worker_and_refuses_unknown_options(
    tmp_path: Path,
) -> None:
    registry = TaskRegistry()

    @registry.task("echo")
    async def echo(value: str) -> str:
        return value

    with pytest.raises(TaskArgumentsError, match="colour"):
        echo.configure(colour="red")
    first = AsyncTaskWorker(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", registry=registry)
    second = AsyncTaskWorker(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", registry=registry)
    async with first, second:
        with pytest.raises(AmbiguousWorkerError):
            await echo.defer("which?")
        task_id = await echo.configure(worker=second).defer("b")
        assert await second.wait_for_tasks([task_id], timeout=10) == ["b"]
        assert await first.get_task_info(task_id) is None


async def test_the_task_decorator_returns_a_handle_of_the_default_registry(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = TaskRegistry()
    monkeypatch.setattr(registry_module, "default_registry", fresh)

    @registry_module.task("tests.greet")
    async def greet(name: str) -> str:
        return f"hello {name}"

    assert await greet("you") == "hello you"
    async with AsyncTaskWorker(database_url, registry=registry_module.default_registry) as worker:
        task_id = await greet.defer("there")
        assert await worker.wait_for_tasks([task_id], timeout=10) == ["hello there"]
        info = await worker.get_task_info(task_id)
        assert info is not None and info.status is TaskStatus.COMPLETED
