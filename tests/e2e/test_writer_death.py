"""A writer that dies takes `litetask serve` down with a non-zero exit, so the supervisor
restarts it; the database is released and the next process finishes the work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import ServerProcess, free_loopback_port
from tests.e2e.test_service import wait_all_completed

Start = Callable[..., ServerProcess]
MODULES = "app.demo,tests.fault_tasks"


def test_a_dead_writer_makes_serve_exit_1_and_a_restart_finishes_the_work(
    start_server: Start, tmp_path: Path
) -> None:
    flag = tmp_path / "writer-broken"
    server = start_server(free_loopback_port(), LITETASK_TASK_MODULES=MODULES)
    body = {"task_type": "faults.break_writer", "kwargs": {"flag": str(flag)}}
    response = httpx.post(server.url + "/tasks", json=body, timeout=10)
    assert response.status_code == 202, response.text
    task_id = response.json()["id"]

    assert server.wait(30) == 1  # the writer died: the process stops itself, non-zero
    assert flag.exists()
    assert "database writer stopped" in server.output()

    # The lock was released: a new process starts on the same file and finishes the task.
    again = start_server(free_loopback_port(), LITETASK_TASK_MODULES=MODULES)
    wait_all_completed(again.url, [task_id])
