"""Secure by default, as a real `litetask serve` process shows it: off loopback it needs a
token (or an explicit, loudly logged opt-out), a token must be long, and `litetask token`
makes one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess, free_loopback_port

GOOD_TOKEN = "k" * 32


def litetask(*args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the `litetask` command in a clean environment: no LITETASK_* of the caller's."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LITETASK_")}
    environ.update(PYTHONPATH=str(ROOT), **env)
    command = [sys.executable, "-m", "app", *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=timeout)


def serve(tmp_path: Path, host: str, **env: str) -> subprocess.CompletedProcess[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'litetask.db'}"
    port = str(free_loopback_port())
    return litetask("serve", "--host", host, "--port", port, "--database-url", url, **env)


def assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit code 2 and exactly one line on stderr naming every one of `words`."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "myhost.example"])
def test_off_loopback_without_a_token_refuses_to_start(tmp_path: Path, host: str) -> None:
    done = serve(tmp_path, host)
    assert_refused(done, "LITETASK_API_TOKEN", "litetask token", "LITETASK_INSECURE_NO_AUTH")
    assert not (tmp_path / "litetask.db").exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_an_empty_token_is_a_configuration_error(tmp_path: Path, host: str) -> None:
    assert_refused(serve(tmp_path, host, LITETASK_API_TOKEN=""), "LITETASK_API_TOKEN", "empty")


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_short_token_is_refused_on_loopback_too(tmp_path: Path, host: str) -> None:
    done = serve(tmp_path, host, LITETASK_API_TOKEN="x" * 31)
    assert_refused(done, "LITETASK_API_TOKEN", "32", "litetask token")


def test_token_prints_a_fresh_long_random_token() -> None:
    tokens = [litetask("token") for _ in range(2)]
    for done in tokens:
        assert done.returncode == 0, done.stderr
    first, second = (done.stdout.strip() for done in tokens)
    assert first != second
    assert len(first) >= 32 and first.isascii() and first.isprintable() and " " not in first


def test_a_token_from_litetask_token_starts_the_service(tmp_path: Path) -> None:
    token = litetask("token").stdout.strip()
    server = ServerProcess(tmp_path / "litetask.db", free_loopback_port(), LITETASK_API_TOKEN=token)
    try:
        server.wait_ready()
        assert httpx.get(server.url + "/tasks").status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(server.url + "/tasks", headers=auth).status_code == 200
    finally:
        server.close()


def test_the_opt_out_lifts_the_refusal_and_warns(tmp_path: Path) -> None:
    """192.0.2.1 (TEST-NET-1) is off loopback and never assigned here: with the opt-out the
    service gets past the token check, warns, and fails only when it cannot bind."""
    done = serve(tmp_path, "192.0.2.1", LITETASK_INSECURE_NO_AUTH="1")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "WARNING" in done.stderr and "LITETASK_INSECURE_NO_AUTH" in done.stderr
    assert "192.0.2.1" in done.stderr.strip().splitlines()[-1]


def test_the_opt_out_warns_at_every_start(tmp_path: Path) -> None:
    for _ in range(2):
        server = ServerProcess(
            tmp_path / "litetask.db", free_loopback_port(), LITETASK_INSECURE_NO_AUTH="1"
        )
        try:
            server.wait_ready()
            assert httpx.get(server.url + "/tasks").status_code == 200
            server.signal(signal.SIGTERM)
            assert server.wait() == 0
            output = server.output()
        finally:
            server.close()
        assert "WARNING" in output and "LITETASK_INSECURE_NO_AUTH" in output, output
