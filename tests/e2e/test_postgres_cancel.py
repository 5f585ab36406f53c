"""Cancelling, on one `litetask serve` process, a task that runs on another (PostgreSQL,
issue 14): the process running it cancels its function as a local cancel does, through a
NOTIFY, or, when that notification was lost, once its LISTEN connection is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import ServerProcess, free_loopback_port
from tests.e2e.pg_tasks import read_notes
from tests.pg_server import PostgresServer
from tests.waiting import until

pytestmark = pytest.mark.timeout(180)  # real servers on a loaded machine
LONG = 600  # seconds the cancelled task would run


def start_server(url: str, effects: Path) -> ServerProcess:
    env = {
        "LITETASK_DATABASE_URL": url,
        "LITETASK_TASK_MODULES": "tests.e2e.pg_tasks",
        "LITETASK_TEST_EFFECTS": str(effects),
        "LITETASK_DEMO": "0",
    }
    server = ServerProcess(effects / "unused.db", free_loopback_port(), **env)
    server.wait_ready(timeout=60)
    return server


def noted(effects: Path, task_id: str, kind: str) -> Callable[[], bool]:
    return lambda: any(k == kind for k, _, _ in read_notes(effects).get(task_id, []))


async def submit(
    client: httpx.AsyncClient, server: ServerProcess, task_id: str, **body: object
) -> None:
    body = {"task_id": task_id, **body}
    response = await client.post(server.url + "/tasks", json=body)
    assert response.status_code == 202, response.text


@asynccontextmanager
async def running_on_b(
    url: str, effects: Path
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    """(a, b): task `long` runs on b (started alone), then a starts."""
    servers: list[ServerProcess] = []
    try:
        servers.append(await asyncio.to_thread(start_server, url, effects))
        async with httpx.AsyncClient(timeout=30) as client:
            await submit(client, servers[0], "long", task_type="pg.long", args=["long", LONG])
        await until(noted(effects, "long", "start"), timeout=30, what="the task to start on B")
        servers.append(await asyncio.to_thread(start_server, url, effects))
        yield servers[1], servers[0]
    finally:
        for server in servers:
            server.close()


async def cancel(client: httpx.AsyncClient, server: ServerProcess) -> None:
    response = await client.delete(server.url + "/tasks/long")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"


async def ended_cancelled_on(client: httpx.AsyncClient, b: ServerProcess, effects: Path) -> None:
    """B's function saw its CancelledError, and the task is cancelled after one attempt."""
    notes = [(kind, pid) for kind, pid, _ in read_notes(effects)["long"]]
    assert notes == [("start", b.proc.pid), ("cancelled", b.proc.pid)]
    info = (await client.get(b.url + "/tasks/long")).json()
    assert (info["status"], info["attempts"]) == ("cancelled", 1)


async def test_a_cancel_on_one_process_stops_the_function_running_on_another(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    async with running_on_b(url, tmp_path) as (a, b), httpx.AsyncClient(timeout=30) as client:
        await cancel(client, a)
        cancelled = noted(tmp_path, "long", "cancelled")
        await until(cancelled, timeout=15, what="B's function to see CancelledError")
        await ended_cancelled_on(client, b, tmp_path)
        a.close()  # B alone now: it keeps serving
        for n in range(3):
            await submit(client, b, f"quick{n}", task_type="pg.effect", args=[f"quick{n}", 0.01])
        for n in range(3):
            await until(noted(tmp_path, f"quick{n}", "effect"), timeout=30, what="B to serve")
        assert {pid for _, pid, _ in read_notes(tmp_path)["quick0"]} == {b.proc.pid}


async def test_a_cancel_notification_lost_still_stops_the_function(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """The cancel is committed while B's LISTEN connection is down (and cannot come back):
    its notification never reaches B, which checks its running tasks once it listens
    again."""
    url = postgres.create_database()
    database = url.rsplit("/", 1)[1]
    async with running_on_b(url, tmp_path) as (a, b), httpx.AsyncClient(timeout=30) as client:
        with psycopg.connect(postgres.admin_url(), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            try:
                cut = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name = 'litetask-listen'",
                    (database,),
                ).fetchall()
                assert len(cut) == 2  # A's and B's
                await cancel(client, a)
            finally:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        cancelled = noted(tmp_path, "long", "cancelled")
        await until(cancelled, timeout=60, what="B's function to see CancelledError")
        await ended_cancelled_on(client, b, tmp_path)
