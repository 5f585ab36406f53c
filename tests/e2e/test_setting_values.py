"""A setting with a value litetask cannot use stops `litetask serve` before it does anything:
exit 2 and one line on stderr naming the variable and the values it accepts, never a
traceback (and never the password of a URL it refuses)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_loopback_port

BOOLEANS = "1, true, yes, on, 0, false, no, off"
SQLITE_URL = "sqlite+aiosqlite:///"


def litetask(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'litetask.db'}",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return litetask(tmp_path, "serve", "--port", str(free_loopback_port()), *args, **env)


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("LOG_LEVEL", "verbose", "debug, info, warning, error"),
        ("LOG_FORMAT", "xml", "text, json"),
        ("ACCESS_LOG", "loud", BOOLEANS),
        ("CACHE_BACKEND", "mem", "sqlite, memory, redis, none"),
        ("WEBHOOK_SCHEME", "hmac", "standard, github, stripe, none"),
        ("DEMO", "maybe", BOOLEANS),
        ("INSECURE_NO_AUTH", "2", BOOLEANS),
        ("PORT", "eighty", "a whole number"),
        ("MAX_WORKERS", "1.5", "a whole number"),
        ("BUSY_TIMEOUT", "inf", "a finite number"),
        ("HEALTH_INTERVAL", "nan", "a finite number"),
        ("READ_TIMEOUT", "soon", "a finite number"),
        ("DATABASE_URL", "not a url", SQLITE_URL),
        ("DATABASE_URL", "postgresql://app:hunter2-pw@db/tasks", SQLITE_URL),
        ("DATABASE_URL", "sqlite:///plain-driver.db", SQLITE_URL),
        ("DATABASE_URL", "sqlite+aiosqlite://", SQLITE_URL),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_what_it_accepts(
    tmp_path: Path, variable: str, value: str, accepted: str
) -> None:
    name = f"LITETASK_{variable}"
    done = serve(tmp_path, **{name: value})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("litetask: configuration error:"), lines[0]
    assert name in lines[0] and accepted in lines[0], lines[0]
    assert "hunter2-pw" not in done.stderr
    assert not (tmp_path / "litetask.db").exists()


def test_log_levels_are_case_insensitive(tmp_path: Path) -> None:
    """LITETASK_LOG_LEVEL=WARNING (as Python spells levels) is accepted: the service gets
    past its settings and stops only at the port another socket holds (exit 1)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = serve(tmp_path, "--port", port, LITETASK_LOG_LEVEL="WARNING")
    assert done.returncode == 1, done.stderr
    assert "could not start" in done.stderr and "configuration error" not in done.stderr


@pytest.mark.parametrize("command", [["migrate"], ["backup", "copy.db"], ["restore", "copy.db"]])
def test_the_database_commands_refuse_a_bad_setting_the_same_way(
    tmp_path: Path, command: list[str]
) -> None:
    done = litetask(tmp_path, *command, LITETASK_LOG_LEVEL="verbose")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "litetask: configuration error: LITETASK_LOG_LEVEL='verbose' is not one of "
        "debug, info, warning, error"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
