"""A database on a network or FUSE filesystem is refused at start, for real: a FUSE mount
made in a namespace of the test's own (tests/e2e/fuse_mount.py), `litetask serve` and
AsyncTaskWorker pointed at a database inside it. Both refuse with one clear message naming
the filesystem before touching the database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_loopback_port

FUSE_MOUNT = Path(__file__).with_name("fuse_mount.py")
LIBRARY_START = """
import asyncio, sys
from app import AsyncTaskWorker, DatabaseLocationError

try:
    asyncio.run(AsyncTaskWorker(sys.argv[1]).start())
except DatabaseLocationError as exc:
    print(f"refused: {exc}")
    sys.exit(3)
"""


def on_fuse(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """`command` run with a FUSE filesystem mounted at tmp_path/fuse, in namespaces of its
    own; skips when this machine cannot make them."""
    if shutil.which("unshare") is None or not Path("/dev/fuse").exists():
        pytest.skip("needs unshare (util-linux) and /dev/fuse")
    mount = tmp_path / "fuse"
    wrapped = ["unshare", "-rm", sys.executable, str(FUSE_MOUNT), str(mount), *command]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LITETASK_")}
    environ["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(wrapped, capture_output=True, text=True, timeout=60, env=environ)
    if "mount" in done.stderr and "CalledProcessError" in done.stderr:
        pytest.skip(f"cannot mount FUSE in a user namespace here: {done.stderr[-300:]!r}")
    return done


def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'fuse' / 'data' / 'litetask.db'}"


def test_serve_refuses_a_database_on_fuse(tmp_path: Path) -> None:
    port = str(free_loopback_port())
    url = database_url(tmp_path)
    done = on_fuse(
        tmp_path, sys.executable, "-m", "app", "serve", "--port", port, "--database-url", url
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "fuse filesystem" in lines[0] and "local" in lines[0], lines[0]


def test_the_library_refuses_a_database_on_fuse(tmp_path: Path) -> None:
    done = on_fuse(tmp_path, sys.executable, "-c", LIBRARY_START, database_url(tmp_path))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "fuse filesystem" in done.stdout and "needs a local disk" in done.stdout
