"""Nothing lost: real worker processes, killed with real signals, restarted on the same file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("worker_process.py")


class WorkerProcess:
    """One `worker_process.py` child; `wait_for` reads its stdout line by line."""

    def __init__(self, database: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(database), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def wait_for(self, line: str, timeout: float = 30) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.proc.stdout.readline()
            if got.strip() == line:
                return
            if not got and self.proc.poll() is not None:
                break
        pytest.fail(f"worker never printed {line}: {self.stderr()}")

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def finish(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill9()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "tasks.db"


@pytest.fixture(autouse=True)
def reap() -> Iterator[None]:
    """Every worker process a test started is killed (if alive) and its pipes closed."""
    started: list[WorkerProcess] = []
    original = WorkerProcess.__init__

    def tracking(self: WorkerProcess, *args: Any) -> None:
        original(self, *args)
        started.append(self)

    WorkerProcess.__init__ = tracking  # type: ignore[method-assign]
    try:
        yield
    finally:
        WorkerProcess.__init__ = original  # type: ignore[method-assign]
        for proc in started:
            proc.close()


def counts(database: Path) -> dict[str, int]:
    with closing(sqlite3.connect(database)) as conn:
        return dict(conn.execute("select status, count(*) from tasks group by status").fetchall())


def test_kill_9_at_several_moments_loses_nothing(database: Path) -> None:
    first = WorkerProcess(database, "--enqueue", "1000", "--arg", "30")
    first.wait_for("READY")
    first.wait_for("ENQUEUED")
    seen_running = []
    for moment, proc in enumerate([first, None, None]):
        if proc is None:
            proc = WorkerProcess(database)
            proc.wait_for("READY")
        time.sleep(0.2 + 0.3 * moment)
        proc.kill9()
        state = counts(database)
        assert sum(state.values()) == 1000, state
        seen_running.append(state.get("running", 0))
    assert all(running > 0 for running in seen_running), seen_running

    last = WorkerProcess(database, "--until-done")
    assert last.finish() == 0, last.stderr()
    assert counts(database) == {"completed": 1000}
    with closing(sqlite3.connect(database)) as conn:
        interrupted = conn.execute("select count(*) from tasks where interruptions > 0").fetchone()
        results = {row[0] for row in conn.execute("select result from tasks")}
    assert interrupted[0] > 0
    assert len(results) == 1000  # every task ran to its own result


def test_sigterm_lets_short_tasks_finish_and_exits_0(database: Path) -> None:
    proc = WorkerProcess(database, "--enqueue", "20", "--arg", "300", "--stop-timeout", "5")
    proc.wait_for("ENQUEUED")
    time.sleep(0.1)
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.finish(30) == 0, proc.stderr()
    state = counts(database)
    assert state.get("running", 0) == 0
    assert state.get("completed", 0) >= 10  # the ten that were running finished


def test_sigterm_puts_long_tasks_back_and_they_complete_after_restart(database: Path) -> None:
    proc = WorkerProcess(
        database,
        "--enqueue",
        "5",
        "--task",
        "slow",
        "--arg",
        "30",
        "--stop-timeout",
        "0.3",
        "--max-workers",
        "2",
    )
    proc.wait_for("ENQUEUED")
    time.sleep(0.2)
    started = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.finish(30) == 0, proc.stderr()
    assert time.monotonic() - started < 5
    assert counts(database) == {"pending": 5}
    with closing(sqlite3.connect(database)) as conn:
        # Cut attempts still count as started, and are given back: one attempt left each.
        left = conn.execute("select attempts, max_attempts - attempts from tasks").fetchall()
    assert {budget for _, budget in left} == {1} and {n for n, _ in left} == {0, 1}
    again = WorkerProcess(database, "--until-done", "--fast")
    assert again.finish() == 0, again.stderr()
    assert counts(database) == {"completed": 5}


def test_a_second_process_on_the_same_file_refuses_to_start(database: Path) -> None:
    first = WorkerProcess(database)
    first.wait_for("READY")
    second = WorkerProcess(database)
    assert second.finish(30) != 0
    assert "already using" in second.stderr()
    first.proc.send_signal(signal.SIGTERM)
    assert first.finish(30) == 0


def test_a_task_that_kills_its_process_ends_failed_after_three_interruptions(
    database: Path,
) -> None:
    proc = WorkerProcess(database, "--enqueue", "1", "--task", "suicide")
    proc.finish(30)
    for _ in range(3):
        WorkerProcess(database).finish(30)  # recovered, claimed again, dies again
    survivor = WorkerProcess(database, "--until-done")
    assert survivor.finish(30) == 0, survivor.stderr()
    with closing(sqlite3.connect(database)) as conn:
        status, error, interruptions = conn.execute(
            "select status, error, interruptions from tasks"
        ).fetchone()
    assert (status, interruptions) == ("failed", 4)
    assert "interrupted more than 3 times" in error


def test_identical_cached_tasks_share_one_run_across_a_crash(
    database: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.txt"
    proc = WorkerProcess(
        database, "--enqueue", "5", "--task", "counted", "--arg", "30", "--file", str(runs)
    )
    proc.wait_for("ENQUEUED")
    time.sleep(0.3)
    proc.kill9()
    assert runs.read_text().splitlines() == ["run"]  # the leader ran; the rest waited
    again = WorkerProcess(database, "--until-done", "--fast")
    assert again.finish() == 0, again.stderr()
    assert runs.read_text().splitlines() == ["run", "run"]  # one run after the restart
    assert counts(database) == {"completed": 5}
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("select sum(from_cache) from tasks").fetchone() == (4,)


def test_kill_9_charges_only_the_tasks_really_running(database: Path) -> None:
    """Quick tasks make the pool claim ahead of its slots; a crash then must charge no more
    tasks than there are workers, and put the claimed-ahead ones back uncharged."""
    proc = WorkerProcess(database, "--enqueue", "6000", "--arg", "0.5", "--max-workers", "4")
    proc.wait_for("ENQUEUED")
    time.sleep(0.2)
    proc.kill9()
    with closing(sqlite3.connect(database)) as conn:
        running = conn.execute("select count(*) from tasks where status = 'running'").fetchone()
        taken = conn.execute("select count(*) from tasks where owner is not null").fetchone()
    assert running[0] <= 4
    assert taken[0] > running[0]  # rows claimed ahead were there to be put back
    last = WorkerProcess(database, "--until-done", "--max-workers", "4")
    assert last.finish() == 0, last.stderr()
    assert counts(database) == {"completed": 6000}
    with closing(sqlite3.connect(database)) as conn:
        charged = conn.execute("select count(*) from tasks where interruptions > 0").fetchone()
        extra = conn.execute("select count(*) from tasks where attempts > 1").fetchone()
    assert charged[0] <= 4 and extra[0] == charged[0]


def test_kill_9_leaves_scheduled_tasks_for_their_time(database: Path) -> None:
    """Tasks for later survive a crash as they were (scheduled, never charged) and, after
    the restart, run no earlier than their time, in (run_at, submission) order."""
    proc = WorkerProcess(
        database, "--enqueue", "20", "--arg", "500", "--later", "30", "--delay", "2"
    )
    proc.wait_for("ENQUEUED")
    time.sleep(0.2)
    proc.kill9()
    state = counts(database)
    assert state.get("scheduled") == 30 and state.get("running", 0) > 0, state
    last = WorkerProcess(database, "--until-done")
    assert last.finish() == 0, last.stderr()
    assert counts(database) == {"completed": 50}
    with closing(sqlite3.connect(database)) as conn:
        later = conn.execute(
            "select run_at, started_at, attempts, interruptions from tasks"
            " where priority = -1 order by run_at, seq"
        ).fetchall()
    assert len(later) == 30
    assert all(started >= run_at for run_at, started, _, _ in later)
    assert [started for _, started, _, _ in later] == sorted(s for _, s, _, _ in later)
    assert {(attempts, interruptions) for _, _, attempts, interruptions in later} == {(1, 0)}
