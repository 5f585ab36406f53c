"""Three `litetask serve` processes on one PostgreSQL database share one queue; one is killed
with -9 midway: every task completes, no task runs two attempts at once, and only tasks the
killed process had in flight may repeat their effect (issue 14's proof)."""

from __future__ import annotations

import asyncio
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_loopback_port
from tests.e2e.pg_tasks import read_notes
from tests.pg_server import PostgresServer, postgres_sql

pytestmark = pytest.mark.timeout(400)  # three real servers, 5,000 tasks, a loaded machine
TASKS = 5000
WORKERS = 8


def start_servers(url: str, effects: Path, count: int) -> list[ServerProcess]:
    env = {
        "LITETASK_DATABASE_URL": url,
        "LITETASK_TASK_MODULES": "tests.e2e.pg_tasks",
        "LITETASK_TEST_EFFECTS": str(effects),
        "LITETASK_HEARTBEAT_INTERVAL": "0.5",
        "LITETASK_MAX_WORKERS": str(WORKERS),
        "LITETASK_DEMO": "0",
    }
    servers = [
        ServerProcess(effects / "unused.db", free_loopback_port(), **env) for _ in range(count)
    ]
    for server in servers:
        server.wait_ready(timeout=60)
    return servers


async def submit_all(servers: list[ServerProcess]) -> list[str]:
    """TASKS tasks, round robin over the servers, a few dozen requests at once. A server
    that is gone (killed meanwhile) is skipped: the same task id goes to the next one, and
    409 says an earlier try was taken after all."""
    limits = asyncio.Semaphore(24)

    async def one(client: httpx.AsyncClient, n: int) -> str:
        task_id = f"t{n:05d}"
        body = {"task_type": "pg.effect", "args": [task_id, 0.02], "task_id": task_id}
        async with limits:
            for attempt in range(len(servers) * 3):
                url = servers[(n + attempt) % len(servers)].url + "/tasks"
                try:
                    response = await client.post(url, json=body, timeout=60)
                except httpx.TransportError:
                    continue
                assert response.status_code in (202, 409), response.text
                return task_id
        raise AssertionError(f"no server took {task_id}")

    async with httpx.AsyncClient() as client:
        return list(await asyncio.gather(*(one(client, n) for n in range(TASKS))))


def completed(url: str) -> int:
    rows = postgres_sql(url, "SELECT count(*) FROM tasks WHERE status = 'completed'")
    return int(str(rows[0][0]))


def running_on(url: str, server: ServerProcess) -> int:
    """How many tasks the server's process is running now."""
    rows = postgres_sql(
        url,
        "SELECT count(*) FROM tasks JOIN owners ON tasks.owner = owners.boot_id "
        f"WHERE tasks.status = 'running' AND owners.pid = {server.proc.pid}",
    )
    return int(str(rows[0][0]))


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_three_processes_one_killed_midway_lose_nothing(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    servers = start_servers(url, tmp_path, 3)
    try:
        submitting = ThreadPoolExecutor(1).submit(asyncio.run, submit_all(servers))
        victim = servers[1]
        wait_until(lambda: completed(url) >= TASKS // 3, 120, "a third of the tasks")
        wait_until(lambda: running_on(url, victim) > 0, 60, "the victim to run tasks")
        signalled_at = time.time()
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        ids = submitting.result(timeout=240)
        wait_until(lambda: completed(url) == TASKS, 240, "every task to complete")
    finally:
        for server in servers:
            server.close()
    assert len(set(ids)) == TASKS
    notes = read_notes(tmp_path)
    assert set(notes) == set(ids)
    victim_pid = victim.proc.pid
    repeated = {t for t, n in notes.items() if sum(k == "effect" for k, _, _ in n) > 1}
    for task_id in repeated:  # only the killed process's in-flight work repeats
        pids = [pid for kind, pid, _ in notes[task_id] if kind == "effect"]
        assert pids.count(victim_pid) == 1 and len(pids) == 2, notes[task_id]
    assert len(repeated) <= WORKERS
    for task_notes in notes.values():  # never two attempts at once
        starts = [(pid, at) for kind, pid, at in task_notes if kind == "start"]
        if len(starts) > 1:
            assert [pid for pid, _ in starts[:-1]] == [victim_pid], task_notes
            assert starts[-1][1] > signalled_at, task_notes  # after the victim died
    interrupted = postgres_sql(url, "SELECT count(*) FROM tasks WHERE interruptions > 0")
    assert int(str(interrupted[0][0])) <= WORKERS
    # The victim held work when it died, and another process put it back.
    rescued = postgres_sql(url, "SELECT count(*) FROM events WHERE type = 'task.recovered'")
    assert int(str(rescued[0][0])) >= 1
