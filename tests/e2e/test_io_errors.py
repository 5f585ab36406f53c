"""An I/O error on an outcome's write, for real: a `litetask serve` process whose file-size
limit (RLIMIT_FSIZE, set from outside with prlimit) stops SQLite from writing the pages a
result needs gets EFBIG, which SQLite reports as SQLITE_IOERR. The outcome is kept and
retried, readiness names the error meanwhile, and once the limit is lifted the task
completes: never left `running`, never charged an interruption. (Python ignores SIGXFSZ, so
the process is told by the failed write, not killed.)"""

from __future__ import annotations

import resource
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx

from tests.conftest import ServerProcess, free_loopback_port

Start = Callable[..., ServerProcess]
RESULT_BYTES = 4 * 1024 * 1024  # far beyond the limit below: its pages cannot be written


def row(database: Path, task_id: str) -> tuple[str, int, int]:
    with closing(sqlite3.connect(database, timeout=10)) as conn:
        found = conn.execute(
            "select status, attempts, interruptions from tasks where id = ?", (task_id,)
        ).fetchone()
    assert found is not None
    return (found[0], found[1], found[2])


def until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def health_names(url: str, words: str) -> bool:
    response = httpx.get(url + "/health", timeout=5)
    problems = response.json().get("problems", [])
    return response.status_code == 503 and any(words in p for p in problems)


def test_an_outcome_that_meets_an_io_error_is_kept_until_stored(
    start_server: Start, tmp_path: Path
) -> None:
    database, gate = tmp_path / "litetask.db", tmp_path / "gate"
    server = start_server(
        free_loopback_port(),
        LITETASK_TASK_MODULES="tests.fault_tasks",
        LITETASK_WRITE_RETRY_SECONDS="0.5",
    )
    body = {"task_type": "faults.big_result", "kwargs": {"gate": str(gate), "size": RESULT_BYTES}}
    task_id = httpx.post(server.url + "/tasks", json=body, timeout=10).json()["id"]
    until(lambda: row(database, task_id)[0] == "running")

    pid = server.proc.pid
    _soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    files = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
    limit = max(f.stat().st_size for f in files if f.exists()) + 256 * 1024
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))
    try:
        gate.touch()
        until(lambda: health_names(server.url, "SQLITE_IOERR"))
        assert row(database, task_id) == ("running", 1, 0)  # kept, not dropped
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
    until(lambda: row(database, task_id)[0] != "running")
    assert row(database, task_id) == ("completed", 1, 0)
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
