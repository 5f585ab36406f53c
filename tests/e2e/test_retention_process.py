"""Retention in a real `litetask serve` configured only by its environment
(LITETASK_TASK_RETENTION_SECONDS=1, LITETASK_PRUNE_INTERVAL=0.2): a finished task is gone
(404) a second or so after it finished, a running one is never touched."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import ServerProcess

Start = Callable[..., ServerProcess]


def wait_for(client: httpx.Client, task_id: str, status_code: int, status: str | None) -> None:
    deadline = time.monotonic() + 30
    while True:
        response = client.get(f"/tasks/{task_id}")
        if response.status_code == status_code and (
            status is None or response.json()["status"] == status
        ):
            return
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)


def test_finished_tasks_go_after_a_one_second_retention(
    start_server: Start, free_port: int
) -> None:
    server = start_server(
        free_port, LITETASK_TASK_RETENTION_SECONDS="1", LITETASK_PRUNE_INTERVAL="0.2"
    )
    with httpx.Client(base_url=server.url, timeout=10) as client:
        running = client.post("/tasks", json={"task_type": "demo.sleep", "kwargs": {"seconds": 60}})
        done = client.post("/tasks", json={"task_type": "demo.add", "args": [1, 2]})
        running_id, done_id = running.json()["id"], done.json()["id"]
        wait_for(client, done_id, 200, "completed")
        finished = datetime.fromisoformat(client.get(f"/tasks/{done_id}").json()["completed_at"])
        wait_for(client, done_id, 404, None)
        assert datetime.now(UTC) - finished >= timedelta(seconds=1)  # kept its retention first
        assert client.get(f"/tasks/{running_id}").json()["status"] == "running"
        queue = client.get("/health").json()["queue"]
        assert queue["completed"] == 0 and queue["running"] == 1
