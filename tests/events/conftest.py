"""Fixtures for the events tests: a worker on a fresh SQLite file whose event sink is an
EventManager, the SSE routes in a small Starlette app, and that app served by a real
Hypercorn on a free loopback port (httpx's ASGITransport buffers whole responses, so live
streams need a real server)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette

from app.events.manager import EventManager
from app.web.events import routes
from app.web.streams import StreamLimits
from app.worker.core import AsyncTaskWorker
from app.worker.registry import TaskRegistry
from tests.conftest import new_database


@dataclass
class Gates:
    """Lets a test hold a task mid-run: `release[label]` opens the gate of that label."""

    release: dict[str, asyncio.Event] = field(default_factory=dict)

    def gate(self, label: str) -> asyncio.Event:
        return self.release.setdefault(label, asyncio.Event())


async def spin(progress_callback: Callable[[float], None]) -> None:
    """Reports progress on every turn of the event loop until it is cancelled."""
    step = 0
    while True:
        step += 1
        progress_callback((step % 1000) / 1000)
        await asyncio.sleep(0)


async def ramp(n: int, progress_callback: Callable[[float], None]) -> int:
    """Reports 1/n, 2/n ... 1.0 as fast as it can, then returns."""
    for i in range(1, n + 1):
        progress_callback(i / n)
        if i % 100 == 0:
            await asyncio.sleep(0)
    return n


def make_registry(gates: Gates) -> TaskRegistry:
    registry = TaskRegistry()

    async def echo(value: Any) -> Any:
        return value

    async def steps(label: str, n: int, progress_callback: Callable[[float], None]) -> str:
        for i in range(1, n + 1):
            await gates.gate(f"{label}:{i}").wait()
            progress_callback(i / n)
        return label

    async def held(label: str) -> str:
        await gates.gate(label).wait()
        return label

    async def burst(
        label: str, values: list[float], progress_callback: Callable[[float], None]
    ) -> str:
        """Reports every value at once (one turn of the loop), then waits at its gate."""
        for value in values:
            progress_callback(value)
        await gates.gate(label).wait()
        return label

    async def boom(message: str) -> None:
        raise ValueError(message)

    async def big(size: int) -> str:
        return "x" * size

    registry.register("echo", echo)
    registry.register("steps", steps)
    registry.register("held", held)
    registry.register("burst", burst)
    registry.register("boom", boom)
    registry.register("big", big)
    registry.register("spin", spin)
    registry.register("ramp", ramp)
    return registry


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return new_database(request, tmp_path / "events.db")


@pytest.fixture
def manager() -> EventManager:
    return EventManager(max_queue=1000)


@pytest.fixture
async def worker(
    database_url: str, manager: EventManager, gates: Gates
) -> AsyncIterator[AsyncTaskWorker]:
    async with AsyncTaskWorker(
        database_url, max_workers=8, registry=make_registry(gates), event_sink=manager.publish
    ) as started:
        yield started


def build_app(
    worker: AsyncTaskWorker, manager: EventManager, limits: StreamLimits | None = None
) -> Starlette:
    """The SSE routes with lifespan state, the way the service mounts them."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {"worker": worker, "events": manager, "streams": limits or StreamLimits()}
        finally:
            manager.close()

    return Starlette(routes=routes, lifespan=lifespan)


@pytest.fixture
def app(worker: AsyncTaskWorker, manager: EventManager) -> Starlette:
    return build_app(worker, manager)


@dataclass
class Server:
    url: str
    port: int
    stop: asyncio.Event
    task: asyncio.Task[None]


@asynccontextmanager
async def running_server(
    app: Starlette, manager: EventManager, port: int = 0
) -> AsyncIterator[Server]:
    """Hypercorn serving `app` on 127.0.0.1 (`port` 0: a free one); the shutdown trigger
    closes the EventManager first so open streams end at once (as the service does)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns (and closes) the socket now
    config.graceful_timeout = 2.0
    config.accesslog = None
    stop = asyncio.Event()

    async def trigger() -> None:
        await stop.wait()
        manager.close()

    task = asyncio.create_task(serve(app, config, shutdown_trigger=trigger))  # type: ignore[arg-type]
    try:
        await _wait_listening(port)
        yield Server(f"http://127.0.0.1:{port}", port, stop, task)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def _wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError("server did not start")


@pytest.fixture
async def server(app: Starlette, manager: EventManager) -> AsyncIterator[Server]:
    async with running_server(app, manager) as running:
        yield running


@asynccontextmanager
async def in_process(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling `app` in process, its lifespan run the way a server runs it
    (ASGITransport does not run lifespans). Responses are buffered: streams must end."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client
