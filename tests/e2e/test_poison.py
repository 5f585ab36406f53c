"""Poison isolation with real `litetask serve` processes: a task that kills its process runs
beside ordinary ones; restarted again and again, the killer ends failed after
LITETASK_MAX_INTERRUPTIONS and every bystander completes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx

from tests.conftest import ServerProcess, free_loopback_port

Start = Callable[..., ServerProcess]
TERMINAL = ("completed", "failed", "cancelled")
ENV = {
    "LITETASK_TASK_MODULES": "tests.e2e.crash_tasks",
    "LITETASK_MAX_WORKERS": "4",
    "LITETASK_MAX_INTERRUPTIONS": "3",
}


def rows(database: Path) -> dict[str, tuple[str, int, int, str | None]]:
    """task id -> (status, attempts, interruptions, error), read as another program would."""
    with closing(sqlite3.connect(database, timeout=10)) as conn:
        found = conn.execute("select id, status, attempts, interruptions, error from tasks")
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in found}


def submit(url: str, task_type: str, **kwargs: float) -> str:
    response = httpx.post(url + "/tasks", json={"task_type": task_type, "kwargs": kwargs})
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def run_until_exit_or_done(server: ServerProcess, database: Path, timeout: float = 60) -> bool:
    """Wait until the server died (True) or every task is terminal (False, server stopped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return True
        if all(status in TERMINAL for status, *_ in rows(database).values()):
            server.close()
            return False
        time.sleep(0.05)
    raise AssertionError(f"neither died nor finished: {rows(database)}")


def test_a_killer_task_fails_alone_and_its_bystanders_complete(
    start_server: Start, tmp_path: Path
) -> None:
    database = tmp_path / "litetask.db"
    first = start_server(free_loopback_port(), **ENV)
    bystanders = [submit(first.url, "crash.work", seconds=1.0) for _ in range(3)]
    killer = submit(first.url, "crash.kill", after=0.3)
    bystanders += [submit(first.url, "crash.work", seconds=1.0) for _ in range(3)]
    server, restarts = first, 0
    while run_until_exit_or_done(server, database):
        restarts += 1
        assert restarts <= 12, rows(database)
        server = start_server(free_loopback_port(), ready=False, **ENV)
    final = rows(database)
    status, _attempts, interruptions, error = final[killer]
    assert (status, interruptions) == ("failed", 4), final[killer]
    assert error is not None and "interrupted more than 3 times" in error
    for task_id in bystanders:
        assert final[task_id][0] == "completed", final
        assert final[task_id][2] <= 1, final  # charged at most for the crash it shared
