"""Retention with two `litetask serve` processes on one PostgreSQL database, both pruning
every 0.05 s with a one-second retention: a backlog of old finished tasks and the tasks
finishing meanwhile go, exactly once, without a deadlock or a failed round; active tasks
stay; and a stream on a process that was paused while the other pruned still gets every
event of the tasks that finished meanwhile (what its log follower had not read yet is kept)."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from httpx_sse import EventSource

from tests.conftest import ServerProcess, free_loopback_port
from tests.events.sse_reader import Got, open_stream, to_got
from tests.history import add_finished, count_rows
from tests.pg_server import PostgresServer, postgres_sql
from tests.waiting import until

pytestmark = pytest.mark.timeout(240)  # two real servers on a loaded machine
BACKLOG = 20_000
QUICK = {
    "LITETASK_TASK_RETENTION_SECONDS": "1",
    "LITETASK_PRUNE_INTERVAL": "0.05",
    "LITETASK_PRUNE_BATCH": "200",
    "LITETASK_HEARTBEAT_INTERVAL": "0.5",
    "LITETASK_LOG_LEVEL": "info",
}
PRUNED = re.compile(r"pruned (\d+) tasks, (\d+) events")


def serve(url: str, directory: Path) -> ServerProcess:
    env = {"LITETASK_DATABASE_URL": url, **QUICK}
    server = ServerProcess(directory / "unused.db", free_loopback_port(), **env)
    server.wait_ready(timeout=60)
    return server


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def deadlocks(url: str) -> int:
    rows = postgres_sql(
        url, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(str(rows[0][0]))


def stop(server: ServerProcess) -> str:
    """SIGTERM, wait, and what the server logged."""
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0, server.output()
    return server.output()


def test_two_processes_pruning_at_once_delete_each_row_once(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    first = serve(url, tmp_path)
    stop(first)  # the schema, migrated
    first.close()
    add_finished(url, BACKLOG)
    servers = [serve(url, tmp_path) for _ in range(2)]
    try:
        with httpx.Client(timeout=30) as client:
            running = client.post(
                servers[0].url + "/tasks",
                json={"task_type": "demo.sleep", "kwargs": {"seconds": 120}},
            ).json()["id"]
            live = [
                client.post(
                    servers[n % 2].url + "/tasks", json={"task_type": "demo.add", "args": [n, 1]}
                ).json()["id"]
                for n in range(40)
            ]
            wait_until(lambda: count_rows(url, "tasks") == 1, 120, "every finished task to go")
            assert client.get(f"{servers[1].url}/tasks/{running}").json()["status"] == "running"
            assert all(client.get(f"{servers[0].url}/tasks/{t}").status_code == 404 for t in live)
        logs = [stop(server) for server in servers]
    finally:
        for server in servers:
            server.close()
    pruned = [int(m.group(1)) for log in logs for m in PRUNED.finditer(log)]
    assert sum(pruned) == BACKLOG + len(live)  # each row deleted once, by one process
    assert "pruning failed" not in "".join(logs), logs
    assert count_rows(url, "task_attempts") == 0
    wait_until(lambda: deadlocks(url) == 0, 1, "no deadlock")  # the statistics may lag
    time.sleep(1.0)
    assert deadlocks(url) == 0


def completed_all(task_ids: list[str], got: list[Got]) -> bool:
    done = {g.data.get("task_id") for g in got if g.event == "task.completed"}
    return set(task_ids) <= done


async def test_a_paused_process_streams_what_the_other_pruned_meanwhile(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Process B is paused (SIGSTOP: a stalled VM, a long GC) while A runs tasks and prunes
    them a second after they finish. B's log follower has not read their events yet, so
    they are kept until it has: once B runs again, its stream gets every one of them."""
    url = postgres.create_database()
    a, b = [await asyncio.to_thread(serve, url, tmp_path) for _ in range(2)]
    got: list[Got] = []

    async def collect(source: EventSource) -> None:
        async for sse in source.aiter_sse():
            item = to_got(sse)
            if item is not None:
                got.append(item)

    try:
        async with (
            httpx.AsyncClient(timeout=30) as client,
            open_stream(client, b.url + "/events") as source,
        ):
            reader = asyncio.create_task(collect(source))
            warm = [await submit(client, a)]
            await until(lambda: completed_all(warm, got), 60, "B to stream a first task")
            await asyncio.sleep(1.5)  # B reports how far it has read at its heartbeats
            b.signal(signal.SIGSTOP)
            try:
                meanwhile = [await submit(client, a) for _ in range(10)]
                listed = ", ".join(f"'{t}'" for t in meanwhile)
                await until(
                    lambda: count_rows(url, "tasks", f"id IN ({listed})") == 0,
                    60,
                    "A to prune the tasks it ran",
                )
            finally:
                b.signal(signal.SIGCONT)
            await until(lambda: completed_all(meanwhile, got), 60, "B to stream them")
            reader.cancel()
        kinds = {(g.data["task_id"], g.event) for g in got}
        for task_id in meanwhile:
            assert {(task_id, "task.queued"), (task_id, "task.completed")} <= kinds
    finally:
        for server in (a, b):
            server.close()


async def submit(client: httpx.AsyncClient, server: ServerProcess) -> str:
    response = await client.post(
        server.url + "/tasks", json={"task_type": "demo.add", "args": [1, 2]}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])
