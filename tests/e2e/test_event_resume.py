"""Resuming event streams across real `litetask serve` processes: a quiet filtered stream
survives a kill -9 (its cursor brings it the startup `task.recovered` events), and a client
of a database restored from an older backup (`litetask backup`, `litetask restore`) gets
`reset`, not a silent resume."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.events.client import SSEClient, SSEEvent
from tests.conftest import ServerProcess
from tests.e2e.test_backup_restore import litetask
from tests.waiting import until

Start = Callable[..., ServerProcess]
pytestmark = pytest.mark.timeout(180)  # restarts of real servers, under a loaded machine


def submit(url: str, task_type: str, **fields: Any) -> str:
    response = httpx.post(url + "/tasks", json={"task_type": task_type, **fields}, timeout=10)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def wait_status(url: str, task_id: str, wanted: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/tasks/{task_id}", timeout=10).json()["status"] == wanted:
            return
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} never became {wanted}")


async def follow(client: SSEClient, into: list[SSEEvent]) -> None:
    async for event in client:
        into.append(event)


async def test_a_quiet_filtered_stream_gets_the_recovered_events_after_a_kill_9(
    start_server: Start, free_port: int
) -> None:
    first = await asyncio.to_thread(start_server, free_port, LITETASK_SSE_CURSOR_INTERVAL="0.2")
    task_id = submit(
        first.url, "demo.sleep", kwargs={"seconds": 600, "steps": 1}, metadata={"group": "night"}
    )
    await asyncio.to_thread(wait_status, first.url, task_id, "running")
    got: list[SSEEvent] = []
    # It connects after the task started: nothing of its group happens while it listens.
    client = SSEClient(
        first.url + "/events", params={"group": "night"}, reconnect_delay=0.1, max_retries=200
    )
    reader = asyncio.create_task(follow(client, got))
    try:
        await until(lambda: client.connects >= 1)
        await asyncio.sleep(0.5)
        first.signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
        await asyncio.to_thread(start_server, free_port)
        await until(lambda: any(e.type == "task.recovered" for e in got), 30)
    finally:
        reader.cancel()
        await client.aclose()
    # recovered at the restart (then it may start again): the first thing the client gets
    assert (got[0].type, got[0].data["task_id"]) == ("task.recovered", task_id)


async def test_a_restored_older_database_resets_clients_that_saw_later_ids(
    start_server: Start, free_port: int, tmp_path: Path
) -> None:
    """`litetask backup` while serving, later `litetask restore` of that copy: a client that
    saw ids the copy never had resumes with `reset: epoch`, not past other events."""
    database = tmp_path / "litetask.db"
    backup = tmp_path / "backup.db"
    server = await asyncio.to_thread(start_server, free_port)
    first = submit(server.url, "demo.add", args=[1, 1])
    await asyncio.to_thread(wait_status, server.url, first, "completed")
    taken = await asyncio.to_thread(litetask, database, "backup", str(backup))
    assert taken.returncode == 0, taken.stderr

    # The client follows the service for a while after the copy was taken...
    got: list[SSEEvent] = []
    async with SSEClient(server.url + "/events", max_retries=0) as client:
        reader = asyncio.create_task(follow(client, got))
        await until(lambda: client.connects >= 1)
        later = [submit(server.url, "demo.add", args=[i, i]) for i in range(3)]
        await until(lambda: sum(e.type == "task.completed" for e in got) == 3)
        reader.cancel()
    seen = client.last_event_id
    assert seen is not None
    server.signal(signal.SIGTERM)
    assert await asyncio.to_thread(server.wait) == 0

    # ... then the older copy comes back.
    restored = await asyncio.to_thread(litetask, database, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    server = await asyncio.to_thread(start_server, free_port)
    after = [submit(server.url, "demo.add", args=[i, 0]) for i in range(4)]
    for task_id in after:
        await asyncio.to_thread(wait_status, server.url, task_id, "completed")
    resumed: list[SSEEvent] = []
    async with SSEClient(server.url + "/events", last_event_id=seen, max_retries=0) as client:
        reader = asyncio.create_task(follow(client, resumed))
        await until(lambda: len(resumed) >= 1)
        newest = submit(server.url, "demo.add", args=[9, 9])
        await until(lambda: any(e.data.get("task_id") == newest for e in resumed))
        reader.cancel()
    assert (resumed[0].type, resumed[0].data["reason"]) == ("reset", "epoch")
    assert resumed[1].data["task_id"] == newest
    assert not {e.data.get("task_id") for e in resumed} & set(later)
