"""Events across processes on PostgreSQL: an SSE client on process A sees every event of the
tasks run by the other processes, in the log's order, and resumes with Last-Event-ID after A
is restarted (issue 14's proof)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from app.events.epoch import parse_last_event_id
from tests.conftest import ServerProcess, free_loopback_port
from tests.events.sse_reader import Got, open_stream, read_until
from tests.pg_server import PostgresServer, postgres_sql

pytestmark = pytest.mark.timeout(180)  # real servers, restarted, on a loaded machine
TASKS = 20


def serve(url: str, directory: Path, port: int) -> ServerProcess:
    server = ServerProcess(directory / "unused.db", port, LITETASK_DATABASE_URL=url)
    server.wait_ready(timeout=60)
    return server


async def submit(client: httpx.AsyncClient, server: ServerProcess, count: int) -> list[str]:
    ids = []
    for n in range(count):
        body = {"task_type": "demo.add", "args": [n, 1]}
        response = await client.post(server.url + "/tasks", json=body)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def logged(url: str, task_ids: list[str]) -> list[tuple[int, str, str]]:
    """(id, type, task id) of these tasks' events, as the log holds them, in id order."""
    listed = ", ".join(f"'{t}'" for t in task_ids)
    rows = postgres_sql(
        url, f"SELECT id, type, task_id FROM events WHERE task_id IN ({listed}) ORDER BY id"
    )
    return [(int(str(i)), str(kind), str(task)) for i, kind, task in rows]


def seen(got: list[Got], task_ids: list[str]) -> list[tuple[int, str, str]]:
    wanted = set(task_ids)
    return [
        (parse_last_event_id(g.sse_id).id, g.event, g.data["task_id"])
        for g in got
        if g.data.get("task_id") in wanted
    ]


def all_completed(task_ids: list[str], got: list[Got]) -> bool:
    """Every one of `task_ids` (none yet: not done) has its task.completed in `got`."""
    done = {g.data.get("task_id") for g in got if g.event == "task.completed"}
    return bool(task_ids) and set(task_ids) <= done


async def test_a_stream_on_one_process_sees_the_others_tasks_and_resumes_after_a_restart(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    port_a = free_loopback_port()
    a, b, c = [
        await asyncio.to_thread(serve, url, tmp_path, port)
        for port in (port_a, free_loopback_port(), free_loopback_port())
    ]
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            async with open_stream(client, a.url + "/events") as source:
                first: list[str] = []
                reader = asyncio.create_task(
                    read_until(source, lambda got: all_completed(first, got), timeout=60)
                )
                await asyncio.sleep(0.5)  # the stream is open
                first += await submit(client, b, TASKS // 2) + await submit(client, c, TASKS // 2)
                got = await reader
            assert seen(got, first) == logged(url, first)
            last_seen = got[-1].sse_id
            a.signal(signal.SIGTERM)
            await asyncio.to_thread(a.wait, 30)
            second = await submit(client, b, TASKS)
            stopped, a = a, await asyncio.to_thread(serve, url, tmp_path, port_a)
            stopped.close()
            headers = {"Last-Event-ID": last_seen}
            async with open_stream(client, a.url + "/events", headers) as source:
                resumed = await read_until(
                    source, lambda got: all_completed(second, got), timeout=60
                )
        after = parse_last_event_id(last_seen).id
        assert seen(resumed, second) == logged(url, second)
        assert all(parse_last_event_id(g.sse_id).id > after for g in resumed)
    finally:
        for server in (a, b, c):
            server.close()
