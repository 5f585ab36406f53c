"""One owner per database, for real: with the lock file deleted under a live `litetask
serve`, a second one still refuses to start (exit 1, one line), and the first one's tasks run
exactly once."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx

from tests.conftest import ServerProcess, free_loopback_port

Start = Callable[..., ServerProcess]


def tasks_of(url: str, ids: list[str]) -> list[dict[str, object]]:
    with httpx.Client(base_url=url, timeout=10) as client:
        return [client.get(f"/tasks/{task_id}").json() for task_id in ids]


def wait_for(url: str, ids: list[str], statuses: set[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not all(t["status"] in statuses for t in tasks_of(url, ids)):
        assert time.monotonic() < deadline, tasks_of(url, ids)
        time.sleep(0.05)


def test_a_second_server_refuses_even_when_the_lock_file_is_deleted(
    start_server: Start, tmp_path: Path
) -> None:
    first = start_server(free_loopback_port(), LITETASK_MAX_WORKERS="4")
    body = {"task_type": "demo.sleep", "kwargs": {"seconds": 1.5, "steps": 3}}
    ids = [httpx.post(first.url + "/tasks", json=body).json()["id"] for _ in range(4)]
    wait_for(first.url, ids, {"running"})
    (tmp_path / "litetask.db.lock").unlink()

    second = start_server(free_loopback_port(), ready=False)
    assert second.wait() == 1
    lines = second.output().strip().splitlines()
    assert len(lines) == 1, lines
    assert "another litetask process" in lines[0]

    wait_for(first.url, ids, {"completed"})
    with closing(sqlite3.connect(tmp_path / "litetask.db")) as conn:
        runs = conn.execute("select attempts, interruptions from tasks").fetchall()
    assert runs == [(1, 0)] * 4  # each ran once, in the first process
