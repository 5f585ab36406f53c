"""`litetask move-to-postgres`: a SQLite service's queue and history moved to PostgreSQL.

A real `litetask serve` fills the SQLite file (finished, failed, scheduled, pending tasks, a
task running when the process is killed -9, a schedule, events), the real CLI moves it, and
a real `litetask serve` on the PostgreSQL database carries on: the same tasks and results,
the pending ones run, an SSE client resumes with the Last-Event-ID it had before the move.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.events.epoch import parse_last_event_id
from tests.conftest import ServerProcess, free_loopback_port
from tests.events.sse_reader import Got, open_stream, read_until
from tests.pg_server import PostgresServer, postgres_sql

pytestmark = pytest.mark.timeout(240)  # real servers on a loaded machine
ROOT = Path(__file__).resolve().parents[2]
MODULES = "tests.e2e.move_tasks"
GATES = 3
# Both services: the same task modules and one unsigned webhook endpoint.
SERVICE = {
    "LITETASK_TASK_MODULES": MODULES,
    "LITETASK_WEBHOOKS": '{"demo.echo": {"scheme": "none"}}',
}
CACHED = {"task_type": "demo.add", "args": [7, 8], "use_cache": True}


def move(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, as a user runs it (no LITETASK_DATABASE_URL: the flags say it all)."""
    env = {k: v for k, v in os.environ.items() if k != "LITETASK_DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "app", "move-to-postgres", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def sqlite_rows(database: Path, statement: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(database)) as conn:
        return conn.execute(statement).fetchall()


async def submit(client: httpx.AsyncClient, url: str, key: str = "", **body: Any) -> str:
    headers = {"Idempotency-Key": key} if key else {}
    response = await client.post(url + "/tasks", json=body, headers=headers)
    assert response.status_code in (200, 202), response.text
    return str(response.json()["id"])


async def task_of(client: httpx.AsyncClient, url: str, task_id: str) -> dict[str, Any]:
    response = await client.get(f"{url}/tasks/{task_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def wait_status(
    client: httpx.AsyncClient, url: str, task_ids: list[str], statuses: set[str]
) -> None:
    for task_id in task_ids:
        for _ in range(1200):
            if (await task_of(client, url, task_id))["status"] in statuses:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"task {task_id} never reached {statuses}")


async def listing(client: httpx.AsyncClient, url: str) -> dict[str, tuple[Any, ...]]:
    response = await client.get(url + "/tasks", params={"limit": 500})
    assert response.status_code == 200, response.text
    fields = ("task_type", "status", "result", "error", "attempts", "run_at", "idempotency_key")
    return {t["id"]: tuple(t[f] for f in fields) for t in response.json()["tasks"]}


async def deliver(client: httpx.AsyncClient, url: str, status: int) -> str:
    """The same webhook delivery (id d-1) each time: 202 the first time, then 200."""
    response = await client.post(
        url + "/webhooks/demo.echo", json={"order": 1}, headers={"webhook-id": "d-1"}
    )
    assert response.status_code == status, response.text
    return str(response.json()["task_id"])


async def first_message(url: str, last_event_id: str) -> Got:
    async with (
        httpx.AsyncClient(timeout=30) as client,
        open_stream(client, url + "/events", {"Last-Event-ID": last_event_id}) as source,
    ):
        got = await read_until(source, lambda got: bool(got), timeout=30, cursors=True)
    return got[0]


async def opening_cursor(client: httpx.AsyncClient, url: str) -> str:
    """The SSE id a client holds after reading everything so far: the opening cursor's."""
    async with open_stream(client, url + "/events") as source:
        got = await read_until(source, lambda got: bool(got), timeout=30, cursors=True)
    assert got[0].event == "cursor"
    return got[0].sse_id


class Source:
    """What the SQLite service held when it was killed."""

    def __init__(self) -> None:
        self.finished: list[str] = []
        self.gates: list[str] = []
        self.later = ""
        self.keyed = ""
        self.resume_from = ""
        self.delivered = ""
        self.tasks: dict[str, tuple[Any, ...]] = {}


async def fill_and_crash(database: Path, gate: Path) -> Source:
    """A SQLite service with history and a queue, killed -9 with a task running."""
    held = Source()
    server = ServerProcess(database, free_loopback_port(), LITETASK_MAX_WORKERS="1", **SERVICE)
    try:
        await asyncio.to_thread(server.wait_ready, 60)
        async with httpx.AsyncClient(timeout=30) as client:
            url = server.url
            held.finished = [
                await submit(client, url, task_type="demo.add", args=[n, 1]) for n in range(3)
            ]
            held.keyed = await submit(
                client, url, task_type="demo.add", args=[40, 2], key="the-key"
            )
            held.delivered = await deliver(client, url, 202)
            held.finished += [
                held.keyed,
                held.delivered,
                await submit(client, url, task_type="demo.fail", max_attempts=1),
                await submit(client, url, **CACHED),
            ]
            await wait_status(client, url, held.finished, {"completed", "failed"})
            held.resume_from = await opening_cursor(client, url)
            held.later = await submit(client, url, task_type="demo.add", args=[1, 1], delay=3600)
            held.gates = [
                await submit(client, url, task_type="move.gate", args=[str(gate)])
                for _ in range(GATES)
            ]
            await wait_status(client, url, held.gates[:1], {"running"})
            held.tasks = await listing(client, url)
    finally:
        server.close()  # kill -9: the first gate was running
    return held


async def test_a_moved_service_keeps_its_queue_history_and_event_stream(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    database, gate = tmp_path / "litetask.db", tmp_path / "gate"
    held = await fill_and_crash(database, gate)
    assert sqlite_rows(database, f"SELECT status FROM tasks WHERE id = '{held.gates[0]}'") == [
        ("running",)
    ]
    after = parse_last_event_id(held.resume_from).id
    source_events = sqlite_rows(
        database, f"SELECT id, type, task_id FROM events WHERE id > {after} ORDER BY id"
    )
    newest_source_event = sqlite_rows(database, "SELECT max(id) FROM events")[0][0]
    url = postgres.create_database()

    done = move("--from", str(database), "--to", url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"tasks: {len(held.tasks)}" in done.stdout, done.stdout
    assert "running when the SQLite service stopped: 1 put back" in done.stdout, done.stdout

    server = ServerProcess(
        tmp_path / "unused.db", free_loopback_port(), LITETASK_DATABASE_URL=url, **SERVICE
    )
    try:
        await asyncio.to_thread(server.wait_ready, 60)
        async with httpx.AsyncClient(timeout=30) as client:
            moved = await listing(client, server.url)
            for task_id in [*held.finished, held.later]:
                assert moved[task_id] == held.tasks[task_id]
            assert {moved[g][1] for g in held.gates} <= {"pending", "claimed", "running"}
            # The same idempotency key still names the same task.
            again = await submit(
                client, server.url, task_type="demo.add", args=[40, 2], key="the-key"
            )
            assert again == held.keyed
            assert await deliver(client, server.url, 200) == held.delivered  # seen before
            cached = await submit(client, server.url, **CACHED)
            await wait_status(client, server.url, [cached], {"completed"})
            assert (await task_of(client, server.url, cached))["from_cache"] is True
            headers = {"Last-Event-ID": held.resume_from}
            async with open_stream(client, server.url + "/events", headers) as stream:
                reader = asyncio.create_task(
                    read_until(stream, lambda got: completed(got, held.gates), timeout=120)
                )
                await asyncio.sleep(0.5)
                gate.touch()
                got = await reader
            new = await submit(client, server.url, task_type="demo.add", args=[2, 2])
            await wait_status(client, server.url, [new], {"completed"})
            assert (await task_of(client, server.url, new))["result"] == 4
            assert new not in held.tasks
    finally:
        server.close()
    assert [g.event for g in got if g.event == "reset"] == []
    ids = [parse_last_event_id(g.sse_id).id for g in got if g.sse_id]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    replayed = [(parse_last_event_id(g.sse_id).id, g.event, g.data["task_id"]) for g in got]
    assert replayed[: len(source_events)] == source_events  # the same ids, the same events
    recovered = replayed[len(source_events)]
    assert recovered[1:] == ("task.recovered", held.gates[0]), replayed
    assert recovered[0] > newest_source_event
    events_of_new = postgres_sql(url, f"SELECT min(id) FROM events WHERE task_id = '{new}'")
    assert int(str(events_of_new[0][0])) > newest_source_event
    assert postgres_sql(
        url, f"SELECT status, result IS NOT NULL FROM tasks WHERE id = '{held.later}'"
    ) == [("scheduled", False)]
    assert postgres_sql(url, "SELECT name FROM schedules") == [("move.hourly",)]
    # Back on the SQLite file, the same id would name other events than the PostgreSQL
    # log's: its log got a new epoch, so the client is told to reload instead.
    back = ServerProcess(database, free_loopback_port(), **SERVICE)
    try:
        await asyncio.to_thread(back.wait_ready, 60)
        reset = await first_message(back.url, held.resume_from)
    finally:
        back.close()
    assert (reset.event, reset.data.get("reason")) == ("reset", "epoch"), reset


def completed(got: list[Got], task_ids: list[str]) -> bool:
    done = {g.data.get("task_id") for g in got if g.event == "task.completed"}
    return set(task_ids) <= done
