"""Shutdown is bounded, whatever a task does: real `litetask serve` processes and real
signals. A task that swallows cancellation cannot hold the stop; a second signal cuts running
tasks at once; a third exits at once, even while a task blocks the event loop; a task raising
SystemExit or KeyboardInterrupt fails alone; nothing starts once SIGTERM is handled."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

from app.clock import now_us
from app.config import Settings
from app.main import hypercorn_config
from tests.conftest import ServerProcess, free_loopback_port

Start = Callable[..., ServerProcess]
MODULES = {"LITETASK_TASK_MODULES": "tests.e2e.shutdown_tasks"}
TERMINAL = {"completed", "failed", "cancelled"}
# A stop is bounded by the stop timeout plus about a second for cut tasks to unwind and a
# few writes; the rest of this margin is for a loaded test machine.
MARGIN = 8.0


def submit(url: str, task_type: str, **kwargs: Any) -> str:
    body = {"task_type": task_type, "kwargs": kwargs}
    response = httpx.post(url + "/tasks", json=body, timeout=10)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def task(url: str, task_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{url}/tasks/{task_id}", timeout=10).json()
    return found


def wait_status(url: str, task_id: str, wanted: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = task(url, task_id)
        if found["status"] in wanted:
            return found
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} never reached {wanted}: {task(url, task_id)}")


def wait_draining(server: ServerProcess) -> None:
    """Until the server says it drains: the signal is handled."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready = httpx.get(server.url + "/health/ready", timeout=5)
        if "the service is draining" in ready.json().get("problems", []):
            return
        time.sleep(0.02)
    raise AssertionError("the server never started draining")


def rows(database: Path) -> dict[str, dict[str, Any]]:
    """Every task row, read from the file as another program would."""
    with closing(sqlite3.connect(database, timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute(
            "select id, status, attempts, max_attempts, interruptions, started_at from tasks"
        )
        return {row["id"]: dict(row) for row in found}


def wait_file(path: Path) -> None:
    deadline = time.monotonic() + 20
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_hypercorn_waits_out_the_longest_drain() -> None:
    """Hypercorn bounds the lifespan shutdown by its shutdown_timeout (60 s by default): set
    below the worker's longest stop, a long stop timeout would raise LifespanTimeoutError,
    exit 1 and leave rows running."""
    settings = Settings(stop_timeout=300.0, write_retry_seconds=20.0).validated()
    config = hypercorn_config(settings)
    longest_drain = settings.stop_timeout + settings.write_retry_seconds + config.graceful_timeout
    assert config.shutdown_timeout > longest_drain


def test_a_task_that_swallows_cancellation_cannot_hold_the_stop(
    start_server: Start, tmp_path: Path
) -> None:
    server = start_server(free_loopback_port(), LITETASK_STOP_TIMEOUT="1", **MODULES)
    task_id = submit(server.url, "shutdown.stubborn", seconds=600)
    wait_status(server.url, task_id, {"running"})
    sent = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=40) == 0, server.output()
    assert time.monotonic() - sent < 1 + MARGIN
    # Put back although its coroutine was still alive: pending, its attempt given back, and
    # not counted as an interruption (nothing crashed).
    row = rows(tmp_path / "litetask.db")[task_id]
    assert (row["status"], row["attempts"], row["max_attempts"]) == ("pending", 1, 2)
    assert row["interruptions"] == 0


def test_a_second_signal_cuts_running_tasks_at_once(start_server: Start, tmp_path: Path) -> None:
    server = start_server(free_loopback_port(), LITETASK_STOP_TIMEOUT="300")
    task_id = submit(server.url, "demo.sleep", seconds=600)
    wait_status(server.url, task_id, {"running"})
    server.signal(signal.SIGINT)
    wait_draining(server)
    sent = time.monotonic()
    server.signal(signal.SIGTERM)  # SIGINT and SIGTERM count alike
    assert server.wait(timeout=40) == 0, server.output()
    assert time.monotonic() - sent < MARGIN
    row = rows(tmp_path / "litetask.db")[task_id]
    assert (row["status"], row["attempts"], row["max_attempts"]) == ("pending", 1, 2)
    assert row["interruptions"] == 0


def test_a_third_signal_exits_at_once_even_while_a_task_blocks_the_loop(
    start_server: Start, tmp_path: Path
) -> None:
    flag = tmp_path / "blocking"
    port = free_loopback_port()
    server = start_server(port, LITETASK_STOP_TIMEOUT="300", **MODULES)
    task_id = submit(server.url, "shutdown.block_loop", flag=str(flag), seconds=300)
    wait_file(flag)  # the event loop is blocked from now on
    sent = 0
    deadline = time.monotonic() + 20
    while server.proc.poll() is None and time.monotonic() < deadline:
        server.signal(signal.SIGTERM)
        sent += 1
        time.sleep(0.3)  # paced, so that no two signals merge while one is pending
        if sent < 3:
            assert server.proc.poll() is None, "exited before the third signal"
    assert server.wait(timeout=5) == 128 + signal.SIGTERM
    assert sent >= 3
    # The row was left running, as after a crash: the next start recovers it.
    again = start_server(free_loopback_port(), **MODULES)
    done = wait_status(again.url, task_id, TERMINAL)
    assert (done["status"], done["result"]) == ("completed", "unblocked")
    assert rows(tmp_path / "litetask.db")[task_id]["interruptions"] == 1


def test_system_exit_and_keyboard_interrupt_fail_their_task_and_the_service_goes_on(
    start_server: Start,
) -> None:
    server = start_server(free_loopback_port(), **MODULES)
    for kind in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
        task_id = submit(server.url, "shutdown.raise", kind=kind)
        failed = wait_status(server.url, task_id, TERMINAL)
        assert failed["status"] == "failed", failed
        assert [e["error_type"] for e in failed["errors"]] == [kind]
        assert server.proc.poll() is None
    for kind in ("SystemExit", "KeyboardInterrupt"):  # out of a helper task the task started
        task_id = submit(server.url, "shutdown.raise_aside", kind=kind)
        assert wait_status(server.url, task_id, TERMINAL)["result"] == "started"
    after = submit(server.url, "demo.add", a=2, b=3)
    assert wait_status(server.url, after, TERMINAL)["result"] == 5
    assert httpx.get(server.url + "/health/ready", timeout=5).status_code == 200


def test_no_task_starts_once_sigterm_is_handled(start_server: Start, tmp_path: Path) -> None:
    """A claim in flight when the drain begins (held up here by a write lock another program
    holds) starts nothing: the backlog stays pending and uncharged."""
    database, gate = tmp_path / "litetask.db", tmp_path / "gate"
    server = start_server(
        free_loopback_port(),
        LITETASK_MAX_WORKERS="2",
        LITETASK_STOP_TIMEOUT="30",
        LITETASK_WRITE_RETRY_SECONDS="120",
        **MODULES,
    )
    finished = [tmp_path / f"finished-{i}" for i in range(2)]
    slow = [submit(server.url, "shutdown.gated", gate=str(gate), finished=str(f)) for f in finished]
    for task_id in slow:
        wait_status(server.url, task_id, {"running"})
    backlog = [submit(server.url, "demo.sleep", seconds=0.2, steps=1) for _ in range(8)]
    with closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # every write of the server waits from now on
        gate.touch()
        for path in finished:
            wait_file(path)
        time.sleep(0.5)  # the freed slots ask for a claim, which waits for the lock too
        sigterm_at = now_us()
        server.signal(signal.SIGTERM)
        wait_draining(server)
        other.execute("ROLLBACK")
    assert server.wait(timeout=40) == 0, server.output()
    found = rows(database)
    assert {found[i]["status"] for i in slow} == {"completed"}
    assert [(found[i]["status"], found[i]["attempts"]) for i in backlog] == [("pending", 0)] * 8
    late = [r for r in found.values() if (r["started_at"] or 0) > sigterm_at]
    assert late == []
