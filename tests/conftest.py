"""Shared fixtures: a free loopback port, the app with its lifespan running, a real
`litetask serve` process, and the database backend the tests run on (`--backend`: SQLite
files by default, or databases on a real PostgreSQL server, see tests/pg_server.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.main import create_app
from tests.backends import backend_marks
from tests.pg_server import PostgresServer, find_binaries, missing_reason, start_postgres

ROOT = Path(__file__).resolve().parents[1]
# In-process clients speak to the app as a browser on this machine would: a localhost name
# passes the default Host allowlist of a service bound to loopback.
LOCAL_URL = "http://localhost"


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def free_port() -> int:
    return free_loopback_port()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("LITETASK_TEST_BACKEND", "sqlite"),
        help="the database the worker/web/events suites run on (default: sqlite, or "
        "$LITETASK_TEST_BACKEND)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, mark the tests that do not pass there yet (tests/backends.py)."""
    if config.getoption("--backend") == "postgresql":
        for item in items:
            for mark in backend_marks(item.nodeid):
                item.add_marker(mark)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, removed at the end; skips (saying where
    it looked) only when no binaries exist."""
    if find_binaries() is None:
        pytest.skip(missing_reason())
    server = start_postgres(free_loopback_port())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" or "postgresql": what `fresh_database_url` makes."""
    return str(request.config.getoption("--backend"))


def new_database(request: pytest.FixtureRequest, sqlite_file: Path) -> str:
    """A new empty database on the backend under test: `sqlite_file`, or a new database on
    the session's PostgreSQL server, dropped when the test ends."""
    if request.config.getoption("--backend") == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database()
        request.addfinalizer(lambda: server.drop_database(url))
        return url
    return f"sqlite+aiosqlite:///{sqlite_file}"


@pytest.fixture
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return new_database(request, tmp_path / "litetask.db")


class Running:
    """An app whose lifespan is running: `app` gives every request a copy of `state`."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.inner, self.state = app, state

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.inner({**scope, "state": dict(self.state)}, receive, send)

    def client(
        self, base_url: str = LOCAL_URL, peer: tuple[str, int] = ("127.0.0.1", 123)
    ) -> httpx.AsyncClient:
        """A client of the app; `peer` is the address the app sees the connection come from."""
        transport = httpx.ASGITransport(app=self.app, client=peer)
        return httpx.AsyncClient(transport=transport, base_url=base_url)


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[Running]:
    """Run `app`'s ASGI lifespan as a server does (httpx's ASGITransport runs none)."""
    state: dict[str, Any] = {}
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    runner = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        await runner
        raise RuntimeError(started.get("message", "startup failed"))

    try:
        yield Running(app, state)
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await runner


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings on a fresh database file in `tmp_path`, quick to stop, with the demo tasks."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'litetask.db'}",
        "stop_timeout": 2.0,
        "health_interval": 0.0,
        "demo": True,
        **overrides,
    }
    return Settings(**values).validated()


ClientFactory = Callable[..., Any]


@pytest.fixture
def make_client(tmp_path: Path, fresh_database_url: str) -> ClientFactory:
    """`async with make_client(**settings) as client`: the app, started, behind httpx
    (`base_url` chooses the scheme and Host the app sees), on the backend under test (the
    same database each time it is called in one test)."""

    @asynccontextmanager
    async def make(base_url: str = LOCAL_URL, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        overrides.setdefault("database_url", fresh_database_url)
        app = create_app(settings_for(tmp_path, **overrides))
        async with lifespan(app) as running, running.client(base_url) as client:
            yield client

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as client:
        yield client


class ServerProcess:
    """A real `litetask serve` child process on a loopback port."""

    def __init__(self, database: Path, port: int, *args: str, **env: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        environ = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "LITETASK_STOP_TIMEOUT": "3",
            "LITETASK_LOG_LEVEL": "warning",
            "LITETASK_DEMO": "1",
            **env,
        }
        command = [sys.executable, "-m", "app", "serve", "--port", str(port), *args]
        # A file, not a pipe: a chatty server must never block on a pipe nobody reads.
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            command, env=environ, stdout=subprocess.DEVNULL, stderr=self._log, text=True
        )

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail("server did not become healthy")

    def output(self) -> str:
        """What the server wrote to stderr, once it has exited."""
        if self.proc.poll() is None:
            return "(running)"
        self._log.seek(0)
        return self._log.read()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()


@contextmanager
def running_server(directory: Path, **env: str) -> Iterator[ServerProcess]:
    """A healthy `litetask serve` on a database in `directory` (for module-scoped fixtures:
    one server for many tests), killed on exit."""
    process = ServerProcess(directory / "litetask.db", free_loopback_port(), **env)
    try:
        process.wait_ready()
        yield process
    finally:
        process.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """`start_server(port, **env)` runs `litetask serve` on tmp_path's database, healthy."""
    started: list[ServerProcess] = []

    def start(port: int, *, ready: bool = True, **env: str) -> ServerProcess:
        server = ServerProcess(tmp_path / "litetask.db", port, **env)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in started:
        server.close()
