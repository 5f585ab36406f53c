"""The built wheel is a working litetask on its own: `uv build --wheel`, `pip install` of
that file into a fresh venv (dependencies from PyPI), then `litetask migrate` and
`litetask serve --demo` run from outside the repository, so only what the wheel ships (the
migrations included) can be used."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_loopback_port

pytestmark = [pytest.mark.network, pytest.mark.timeout(900)]
PYPI = "https://pypi.org/simple/starlette/"


def run(command: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600, **kwargs
    )
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh venv with the wheel installed."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("needs uv to build the wheel (run the suite through `uv run`)")
    try:
        httpx.get(PYPI, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.skip(
            f"PyPI is not reachable, so the wheel's dependencies cannot be installed: {exc}"
        )
    work = tmp_path_factory.mktemp("wheel")
    run([uv, "build", "--wheel", "--out-dir", work / "dist"], cwd=ROOT)
    (wheel,) = (work / "dist").glob("litetask-*.whl")
    run([sys.executable, "-m", "venv", work / "venv"])
    bin_dir = work / "venv" / "bin"
    pip = [bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, "--only-binary", ":all:", wheel], cwd=work)
    return bin_dir


def outside_env(database: Path) -> dict[str, str]:
    """No PYTHONPATH or venv of this checkout: the installed package alone."""
    keep = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return {**keep, "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}


def test_the_installed_package_is_not_this_checkout(installed: Path, tmp_path: Path) -> None:
    done = run(
        [installed / "python", "-c", "import app; print(app.__file__)"],
        cwd=tmp_path,
        env=outside_env(tmp_path / "x.db"),
    )
    assert done.stdout.strip().startswith(str(installed.parent)), done.stdout


def test_the_wheel_migrates_a_new_database(installed: Path, tmp_path: Path) -> None:
    database = tmp_path / "data" / "litetask.db"
    done = run([installed / "litetask", "migrate"], cwd=tmp_path, env=outside_env(database))
    assert "is up to date" in done.stdout
    with sqlite3.connect(database) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert revision == head_revision() and "tasks" in tables


def head_revision() -> str:
    """The newest revision of this checkout's migrations/ (what the wheel must carry)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    assert head is not None
    return head


def test_the_wheel_serves_and_runs_a_demo_task(installed: Path, tmp_path: Path) -> None:
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(installed / "litetask"), "serve", "--demo", "--port", str(port)]
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=outside_env(tmp_path / "litetask.db"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: health(url) == 200), "the installed service never became healthy"
        with httpx.Client(base_url=url, timeout=10) as client:
            accepted = client.post("/tasks", json={"task_type": "demo.add", "args": [2, 3]})
            assert accepted.status_code == 202, accepted.text
            task_url = f"/tasks/{accepted.json()['id']}"
            assert wait_for(lambda: client.get(task_url).json()["status"] == "completed")
            assert client.get(task_url).json()["result"] == 5
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        server.kill()
        server.wait()


def health(url: str) -> int | None:
    try:
        return httpx.get(url + "/health", timeout=2).status_code
    except httpx.TransportError:
        return None


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
