"""The files litetask creates are private (0600): the database, its -wal and -shm, and the
`<database>.lock`, whether `litetask serve` or the library (AsyncTaskWorker) creates them.
Each start runs in a child process with umask 022, the usual default, which would leave
them readable by every local user."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_loopback_port
from tests.e2e.test_service import submit_sleeps

SUFFIXES = ("", "-wal", "-shm", ".lock")
LIBRARY_START = """
import asyncio, sys
from app import AsyncTaskWorker

async def main() -> None:
    async with AsyncTaskWorker(f"sqlite+aiosqlite:///{sys.argv[1]}") as worker:
        print("started", flush=True)
        sys.stdin.readline()

asyncio.run(main())
"""


def umask_022() -> None:
    os.umask(0o022)


def modes(database: Path) -> dict[str, str]:
    found = {}
    for suffix in SUFFIXES:
        path = database.with_name(database.name + suffix)
        found[path.name] = oct(stat.S_IMODE(path.stat().st_mode)) if path.exists() else "missing"
    return found


def process_umask(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return line.split()[1]
    raise AssertionError("no Umask line in /proc/<pid>/status")


def private(database: Path) -> dict[str, str]:
    return {database.name + suffix: "0o600" for suffix in SUFFIXES}


def test_serve_creates_private_files(tmp_path: Path) -> None:
    database = tmp_path / "data" / "litetask.db"
    port = free_loopback_port()
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "LITETASK_DEMO": "1",
        "LITETASK_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=environ, preexec_fn=umask_022)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server)
        submit_sleeps(url, 1, 0.0)
        assert modes(database) == private(database)
        assert oct(stat.S_IMODE(database.parent.stat().st_mode)) == "0o700"
        assert process_umask(server.pid) == "0077"  # for whatever else it creates
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0
    finally:
        server.kill()
        server.wait()


def wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the server did not become healthy")


def test_the_library_creates_private_files(tmp_path: Path) -> None:
    database = tmp_path / "lib.db"
    with subprocess.Popen(
        [sys.executable, "-c", LIBRARY_START, str(database)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=umask_022,
    ) as process:
        try:
            assert process.stdout is not None and process.stdin is not None
            assert process.stdout.readline().strip() == "started"
            assert modes(database) == private(database)
            process.stdin.write("\n")
            process.stdin.flush()
            assert process.wait(20) == 0
        finally:
            process.kill()
