"""Secrets never show: repr(Settings) masks the API token, webhook secrets and URL passwords,
and a real `litetask serve` at LITETASK_LOG_LEVEL=debug, which logs its settings, never
writes the token or a webhook secret while it serves authenticated, refused and webhook
requests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.config import Settings
from app.webhook_config import parse_webhooks
from tests.conftest import ROOT, free_loopback_port
from tests.e2e.test_file_modes import wait_healthy
from tests.web.webhook_signing import BODY, SECRET, github_headers, standard_headers

TOKEN = "secret-token-never-logged-0123456789abcdef"
GITHUB_SECRET = "github-secret-never-logged"
REDIS_PASSWORD = "redis-password-never-shown"
WEBHOOKS = json.dumps({"hook.record": {"scheme": "github", "secret": GITHUB_SECRET}})
SECRETS = (TOKEN, SECRET, GITHUB_SECRET)


def test_repr_and_str_of_settings_mask_every_secret() -> None:
    settings = Settings(
        api_token=TOKEN,
        webhook_secret=SECRET,
        webhook_types=("demo.echo",),
        webhooks=parse_webhooks(WEBHOOKS),
        cache_backend="redis",
        redis_url=f"redis://default:{REDIS_PASSWORD}@127.0.0.1:6379/0",
    ).validated()
    for shown in (repr(settings), str(settings), repr(settings.cache())):
        for secret in (*SECRETS, REDIS_PASSWORD):
            assert secret not in shown
    assert "api_token='***'" in repr(settings)
    assert "redis://default:***@127.0.0.1:6379/0" in repr(settings)
    assert "api_token=None" in repr(Settings())  # unset stays visible as unset


def exercise(url: str) -> None:
    """Authenticated, refused, session and signed webhook requests, and a finished task."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/tasks", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post("/auth/session", json={"token": TOKEN}).status_code == 200
        hook = client.post("/webhooks/demo.echo", content=BODY, headers=standard_headers(BODY))
        assert hook.status_code == 202, hook.text
        github = client.post(
            "/webhooks/hook.record", content=BODY, headers=github_headers(BODY, GITHUB_SECRET)
        )
        assert github.status_code == 202, github.text
        task_id = github.json()["task_id"]
        deadline = time.monotonic() + 20
        while client.get(f"/tasks/{task_id}", headers=auth).json()["status"] != "completed":
            assert time.monotonic() < deadline, "the webhook's task did not complete"
            time.sleep(0.05)


def test_a_debug_log_of_a_serving_service_holds_no_secret(tmp_path: Path) -> None:
    port = free_loopback_port()
    log = tmp_path / "serve.log"
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'litetask.db'}",
        "LITETASK_LOG_LEVEL": "debug",
        "LITETASK_DEMO": "1",
        "LITETASK_TASK_MODULES": "tests.web.webhook_tasks",
        "LITETASK_API_TOKEN": TOKEN,
        "LITETASK_WEBHOOK_SECRET": SECRET,
        "LITETASK_WEBHOOK_TYPES": "demo.echo",
        "LITETASK_WEBHOOKS": WEBHOOKS,
        "LITETASK_STOP_TIMEOUT": "3",
    }
    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(command, env=environ, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server, timeout=30)
        exercise(f"http://127.0.0.1:{port}")
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        server.kill()
        server.wait()
    text = log.read_text()
    assert "api_token='***'" in text  # the settings were logged, masked
    for secret in SECRETS:
        assert secret not in text
