"""Fixtures for the worker tests: a fresh SQLite file and a registry of test task types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from app import AsyncTaskWorker, TaskRegistry
from tests.conftest import new_database
from tests.direct_sql import run_sql


class Recorder:
    """What the test tasks did, in order, so tests can assert on real executions."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled: list[str] = []
        self.failures_left: dict[str, int] = {}


class RecordingTasks:
    """The task types of the worker tests, recording what they do in a Recorder."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def add(self, a: int, b: int) -> int:
        self.recorder.calls.append(("add", (a, b)))
        return a + b

    async def record(self, label: Any) -> Any:
        self.recorder.calls.append(("record", label))
        return label

    async def gated(self, label: str = "gate") -> str:
        """Blocks until the test opens the gate; records a cancellation if cancelled."""
        self.recorder.started.set()
        try:
            await self.recorder.gate.wait()
        except asyncio.CancelledError:
            self.recorder.cancelled.append(label)
            raise
        self.recorder.calls.append(("gated", label))
        return label

    async def gated_blob(self, size: int) -> bytes:
        """`gated`, then a result of `size` bytes (one that needs new pages to be stored)."""
        await self.gated("blob")
        return b"x" * size

    async def flaky(self, key: str, failures: int) -> str:
        left = self.recorder.failures_left.setdefault(key, failures)
        if left > 0:
            self.recorder.failures_left[key] = left - 1
            raise RuntimeError(f"flaky failure, {left} left")
        return "ok"

    async def boom(self) -> None:
        raise ValueError("boom")

    async def sleepy(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    async def with_progress(self, steps: int, progress_callback: Any = None) -> int:
        for step in range(1, steps + 1):
            await asyncio.sleep(0.01)
            progress_callback(step / steps)
        return steps

    async def unpackable(self) -> object:
        return object()


def make_registry(recorder: Recorder) -> TaskRegistry:
    tasks = RecordingTasks(recorder)
    registry = TaskRegistry()
    for name in (
        "add",
        "record",
        "gated",
        "gated_blob",
        "boom",
        "sleepy",
        "with_progress",
        "unpackable",
    ):
        registry.register(name, getattr(tasks, name))
    registry.register("flaky", tasks.flaky, max_attempts=3)
    return registry


T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 5.0) -> T:
    """Poll `check` until it returns something truthy (a state no event announces, e.g. one
    another program wrote); returns it. TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            if found := await check():
                return found
            await asyncio.sleep(0.01)


# Run one statement on the database directly, as another program would (either backend).
sql = run_sql


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def registry(recorder: Recorder) -> TaskRegistry:
    return make_registry(recorder)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return new_database(request, tmp_path / "tasks.db")


@pytest.fixture
async def worker(database_url: str, registry: TaskRegistry) -> AsyncIterator[AsyncTaskWorker]:
    async with AsyncTaskWorker(
        database_url, max_workers=4, registry=registry, retry_backoff=0.01
    ) as started:
        yield started


async def noop(n: int = 0) -> int:
    return n


@pytest.fixture
def noop_registry() -> TaskRegistry:
    """A registry holding one task type, "noop", which returns its argument (0 without)."""
    registry = TaskRegistry()
    registry.register("noop", noop)
    return registry
