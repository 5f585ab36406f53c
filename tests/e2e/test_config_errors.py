"""Webhook settings that would open the service are refused at start: `litetask serve`
exits 2 with one line naming the setting, before it binds anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_loopback_port

TOKEN = "config-errors-token-0123456789abcdefgh"
# TEST-NET-1: not on this machine, so nothing could be served there even by mistake.
NOT_LOOPBACK = "192.0.2.1"


def serve(tmp_path: Path, host: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'litetask.db'}",
        "LITETASK_API_TOKEN": TOKEN,
        **env,
    }
    command = [sys.executable, "-m", "app", "serve", "--host", host]
    command += ["--port", str(free_loopback_port())]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"LITETASK_WEBHOOKS": json.dumps({"demo.echo": {"scheme": "none"}})}, "none"),
        ({"LITETASK_WEBHOOK_SCHEME": "none", "LITETASK_WEBHOOK_TYPES": "demo.echo"}, "none"),
        (
            {"LITETASK_WEBHOOK_SECRET": "whsec_not*base64", "LITETASK_WEBHOOK_TYPES": "demo.echo"},
            "LITETASK_WEBHOOK_SECRET",
        ),
    ],
)
def test_unsafe_webhook_settings_stop_the_start(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    done = serve(tmp_path, NOT_LOOPBACK, **env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("litetask: configuration error:") and words in lines[0]
    assert "Traceback" not in done.stderr
