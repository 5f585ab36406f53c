"""`litetask serve` as a real process: kill -9 and restart loses nothing, SIGTERM drains and
exits 0, a second process on the same database refuses to start, and the CLI client works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, ServerProcess, free_loopback_port

Start = Callable[..., ServerProcess]
TERMINAL = {"completed", "failed", "cancelled"}
TOKEN = "cli-test-token-" + "x" * 20


def submit_sleeps(url: str, count: int, seconds: float) -> list[str]:
    ids = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(count):
            body = {"task_type": "demo.sleep", "kwargs": {"seconds": seconds, "steps": 2}}
            response = client.post("/tasks", json=body, headers={"Idempotency-Key": f"k{i}"})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
    return ids


def statuses(url: str, ids: list[str]) -> dict[str, str]:
    with httpx.Client(base_url=url, timeout=10) as client:
        return {i: client.get(f"/tasks/{i}").json()["status"] for i in ids}


def wait_all_completed(url: str, ids: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = statuses(url, ids)
        if all(s == "completed" for s in current.values()):
            return
        assert not {s for s in current.values()} & {"failed", "cancelled"}, current
        time.sleep(0.1)
    raise AssertionError(f"not all completed: {statuses(url, ids)}")


def wait_some_running(url: str, ids: list[str]) -> None:
    deadline = time.monotonic() + 10
    while "running" not in statuses(url, ids).values():
        assert time.monotonic() < deadline, "nothing started"
        time.sleep(0.02)


def test_kill_9_sigterm_and_restarts_lose_nothing(start_server: Start) -> None:
    """Start, submit, kill -9 mid-run; restart (a second process on the same file is
    refused meanwhile), SIGTERM mid-run exits 0; restart again and every task completes."""
    first = start_server(free_loopback_port(), LITETASK_MAX_WORKERS="3")
    ids = submit_sleeps(first.url, 12, 0.4)
    wait_some_running(first.url, ids)
    first.signal(signal.SIGKILL)
    first.wait()

    second = start_server(free_loopback_port(), LITETASK_MAX_WORKERS="2")
    wait_some_running(second.url, ids)
    second.signal(signal.SIGTERM)
    assert second.wait() == 0

    third = start_server(free_loopback_port(), LITETASK_MAX_WORKERS="4")
    intruder = start_server(free_loopback_port(), ready=False)
    wait_all_completed(third.url, ids)
    assert intruder.wait() == 1
    assert "another litetask process" in intruder.output()
    again = httpx.post(
        third.url + "/tasks",
        json={"task_type": "demo.sleep", "kwargs": {"seconds": 0.4, "steps": 2}},
        headers={"Idempotency-Key": "k0"},
    )
    assert again.status_code == 200 and again.json()["id"] == ids[0]


def test_oversized_chunked_body_over_real_http(start_server: Start) -> None:
    server = start_server(free_loopback_port(), LITETASK_MAX_BODY_BYTES="4096")

    def chunks() -> Iterator[bytes]:
        yield b'{"task_type": "demo.echo", "args": ["'
        for _ in range(1000):
            yield b"x" * 1024

    response = httpx.post(server.url + "/tasks", content=chunks(), timeout=10)
    assert response.status_code == 413
    assert httpx.get(server.url + "/health").status_code == 200


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    command = [sys.executable, "-m", "app", *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=30)


def test_cli_submit_and_status(start_server: Start) -> None:
    server = start_server(free_loopback_port(), LITETASK_API_TOKEN=TOKEN)
    done = cli(
        "submit",
        "demo.add",
        "--json",
        '{"a": 2, "b": 5}',
        "--url",
        server.url,
        LITETASK_API_TOKEN=TOKEN,
    )
    assert done.returncode == 0, done.stderr
    task: dict[str, Any] = json.loads(done.stdout)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        deadline = time.monotonic() + 10
        while client.get(f"/tasks/{task['id']}").json()["status"] not in TERMINAL:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    status = cli("status", task["id"], "--url", server.url, LITETASK_API_TOKEN=TOKEN)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["result"] == 7


def test_cli_migrate(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    done = cli("migrate", "--database-url", url)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "fresh.db").exists()


def test_bad_task_module_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    port = str(free_loopback_port())
    done = cli("serve", "--port", port, "--database-url", url, "--task-module", "no.such.module")
    assert done.returncode != 0
    assert "no.such.module" in done.stderr
