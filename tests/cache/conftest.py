"""Fixtures for the cache tests: a real redis-server per session, a fresh migrated SQLite file
per test, and `adapter`, which runs a test once per backend (memory, sqlite, redis)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from app.cache.adapters.base import CacheAdapter
from app.cache.adapters.memory import MemoryCacheAdapter
from app.cache.adapters.redis import RedisCacheAdapter
from app.cache.adapters.sqlite import SQLiteCacheAdapter
from app.cache.setup import CacheSettings
from app.db.engine import Engines, create_engines
from app.db.migrate import upgrade
from app.db.writer import GroupCommitWriter
from app.worker.core import AsyncTaskWorker
from app.worker.registry import TaskRegistry

ADAPTER_KINDS = ["memory", "sqlite", "redis"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_redis(port: int, process: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            time.sleep(0.02)
    return False


@dataclass
class RedisServer:
    """A redis-server child process this test run started."""

    url: str
    process: subprocess.Popen[bytes]

    def pause(self) -> None:
        """Stop the process (SIGSTOP): connections stay open and nothing answers."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server on a free loopback port, without persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed; the Redis cache tests need the binary")
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _wait_for_redis(port, process, time.monotonic() + 10):
            pytest.fail(f"redis-server did not answer on port {port}")
        yield RedisServer(f"redis://127.0.0.1:{port}/0", process)
    finally:
        process.send_signal(signal.SIGCONT)  # a paused server cannot terminate
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The session's redis-server."""
    with redis_server() as server:
        yield server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server for one test, which may pause it without disturbing the others."""
    with redis_server() as server:
        yield server


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """A raw client on an empty database, to look at what the adapter left in Redis."""
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@dataclass
class SQLiteDatabase:
    engines: Engines
    writer: GroupCommitWriter

    def adapter(self) -> SQLiteCacheAdapter:
        return SQLiteCacheAdapter(self.writer, self.engines.reader)


@asynccontextmanager
async def open_database(path: Path) -> AsyncIterator[SQLiteDatabase]:
    """The service's setup in miniature: engines, migrations, a running writer."""
    engines = create_engines(f"sqlite+aiosqlite:///{path}")
    await upgrade(engines.writer)
    writer = GroupCommitWriter(engines.writer)
    await writer.start()
    try:
        yield SQLiteDatabase(engines, writer)
    finally:
        await writer.stop()
        await engines.dispose()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SQLiteDatabase]:
    async with open_database(tmp_path / "litetask.db") as db:
        yield db


@pytest.fixture(params=ADAPTER_KINDS)
def adapter_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "redis":
        request.getfixturevalue("redis_client")  # starts the server, empties the database
    return kind


@asynccontextmanager
async def open_adapter(kind: str, redis_url: str | None, path: Path) -> AsyncIterator[CacheAdapter]:
    """An empty adapter of `kind`, closed on exit (before its database, for SQLite)."""
    if kind == "sqlite":
        async with open_database(path) as db:
            built: CacheAdapter = db.adapter()
            try:
                yield built
            finally:
                await built.close()
        return
    built = MemoryCacheAdapter() if redis_url is None else RedisCacheAdapter.from_url(redis_url)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def adapter(
    adapter_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[CacheAdapter]:
    """Each backend in turn, empty."""
    redis_url = request.getfixturevalue("redis_url") if adapter_kind == "redis" else None
    async with open_adapter(adapter_kind, redis_url, tmp_path / "litetask.db") as built:
        yield built


@asynccontextmanager
async def cached_worker(
    tmp_path: Path, tasks: dict[str, Callable[..., Awaitable[Any]]], cache: CacheSettings
) -> AsyncIterator[AsyncTaskWorker]:
    """A started worker on a fresh database whose task types (`tasks`) all use `cache`."""
    registry = TaskRegistry()
    for name, func in tasks.items():
        registry.register(name, func, use_cache=True)
    worker = AsyncTaskWorker(
        f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}", registry=registry, cache=cache
    )
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()
