"""Seeing a real `litetask serve`: probes during a SIGTERM drain, JSON logs on stderr, and
metrics on their own port after a crash."""

from __future__ import annotations

import json
import signal
import socket
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, ServerProcess, free_loopback_port
from tests.e2e.test_service import cli
from tests.web.test_metrics import parse

Start = Callable[..., ServerProcess]
TOKEN = "observe-test-token-" + "x" * 20
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TERMINAL = {"completed", "failed", "cancelled"}


def submit(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    response = httpx.post(url + "/tasks", json=body, headers=headers or {}, timeout=10)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def wait_status(
    url: str, task_id: str, wanted: set[str], headers: dict[str, str] | None = None
) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status: str = httpx.get(f"{url}/tasks/{task_id}", headers=headers or {}).json()["status"]
        if status in wanted:
            return status
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} never reached {wanted}")


def test_a_draining_server_stays_live_but_not_ready(start_server: Start) -> None:
    server = start_server(free_loopback_port(), LITETASK_STOP_TIMEOUT="20")
    task_id = submit(server.url, {"task_type": "demo.sleep", "kwargs": {"seconds": 5}})
    wait_status(server.url, task_id, {"running"})

    def probe() -> tuple[int, int]:
        live = httpx.get(server.url + "/health/live", timeout=5)
        ready = httpx.get(server.url + "/health/ready", timeout=5)
        return live.status_code, ready.status_code

    server.signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while probe() != (200, 503):  # the signal is handled
        assert time.monotonic() < deadline, "readiness never turned 503"
        time.sleep(0.02)
    seen = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        seen.append(probe())
        time.sleep(0.05)
    assert server.proc.poll() is None, "the drain is still running its task"
    assert seen and set(seen) == {(200, 503)}, seen
    assert server.wait() == 0
    # The task finished within the drain instead of being put back.
    again = start_server(free_loopback_port())
    assert httpx.get(f"{again.url}/tasks/{task_id}").json()["status"] == "completed"


def test_json_logs_one_object_per_line_with_task_fields(start_server: Start) -> None:
    server = start_server(
        free_loopback_port(),
        LITETASK_LOG_FORMAT="json",
        LITETASK_LOG_LEVEL="info",
        LITETASK_ACCESS_LOG="1",
        LITETASK_API_TOKEN=TOKEN,
    )
    task_id = submit(server.url, {"task_type": "demo.fail", "kwargs": {"message": "no"}}, BEARER)
    assert wait_status(server.url, task_id, TERMINAL, BEARER) == "failed"
    secret_query = httpx.get(server.url + "/tasks?limit=1&token=QUERYSECRET", headers=BEARER)
    assert secret_query.status_code == 422  # `token` is not a parameter; it is still logged safely
    httpx.get(server.url + "/tasks", headers={"Cookie": "litetask_session=COOKIESECRET"})
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    output = server.output()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert all({"timestamp", "level", "logger", "message"} <= set(r) for r in lines)
    failed = [r for r in lines if r.get("task_id") == task_id and "failed" in r["message"]]
    assert failed, output
    assert failed[0]["attempt"] == 1 and failed[0]["task_type"] == "demo.fail"
    access = [r for r in lines if r["logger"] == "litetask.access"]
    submitted = next(r for r in access if r["method"] == "POST" and r["path"] == "/tasks")
    assert submitted["status"] == 202 and submitted["client"] == "127.0.0.1"
    assert 0 <= submitted["duration"] < 10
    assert {r["status"] for r in access if r["path"] == "/tasks"} == {202, 422, 401}
    assert any(r["path"] == f"/tasks/{task_id}" and r["status"] == 200 for r in access)
    for secret in (TOKEN, "QUERYSECRET", "COOKIESECRET"):
        assert secret not in output


def test_metrics_port_shows_recoveries_and_event_streams(start_server: Start) -> None:
    first = start_server(free_loopback_port())
    task_id = submit(first.url, {"task_type": "demo.sleep", "kwargs": {"seconds": 30}})
    wait_status(first.url, task_id, {"running"})
    first.signal(signal.SIGKILL)
    first.wait()

    metrics_port = free_loopback_port()
    second = start_server(
        free_loopback_port(), LITETASK_API_TOKEN=TOKEN, LITETASK_METRICS_PORT=str(metrics_port)
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

    def sample(name: str, **labels: str) -> float:
        response = httpx.get(metrics_url, timeout=5)
        assert response.status_code == 200
        return parse(response.text).get((name, frozenset(labels.items())), -1.0)

    recoveries = "litetask_task_recoveries_total"
    assert sample(recoveries, task_type="demo.sleep", reason="interrupted") == 1
    assert httpx.get(second.url + "/metrics").status_code == 401
    with httpx.stream("GET", second.url + "/events", headers=BEARER, timeout=10) as stream:
        chunks = stream.iter_bytes()  # kept: a discarded iterator closes the stream
        next(chunks)  # the stream is open
        assert sample("litetask_sse_clients") == 1
    deadline = time.monotonic() + 10
    while sample("litetask_sse_clients") != 0:
        assert time.monotonic() < deadline, "the closed stream is still counted"
        time.sleep(0.05)


def test_commands_log_text_by_default_and_json_when_asked(tmp_path: Path) -> None:
    def migrate(name: str, **env: str) -> list[str]:
        url = f"sqlite+aiosqlite:///{tmp_path / name}"
        done = cli("migrate", "--database-url", url, **env)
        assert done.returncode == 0, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines, "alembic logs each migration it runs"
        return lines

    text = migrate("text.db")
    assert all(" INFO alembic.runtime.migration " in line for line in text)
    assert not any(line.startswith("{") for line in text)
    records = [json.loads(line) for line in migrate("json.db", LITETASK_LOG_FORMAT="json")]
    assert {r["logger"] for r in records} == {"alembic.runtime.migration"}
    url = f"sqlite+aiosqlite:///{tmp_path / 'bad.db'}"
    bad = cli("migrate", "--database-url", url, LITETASK_LOG_FORMAT="xml")
    assert bad.returncode == 2 and "LITETASK_LOG_FORMAT" in bad.stderr


def test_a_taken_metrics_port_is_one_line_and_nothing_starts(tmp_path: Path) -> None:
    port = free_loopback_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
        done = cli(
            "serve",
            "--port",
            str(free_loopback_port()),
            "--database-url",
            url,
            LITETASK_METRICS_PORT=str(port),
        )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"litetask: could not start: cannot listen on 127.0.0.1:{port} "
        "(LITETASK_METRICS_HOST/LITETASK_METRICS_PORT): Address already in use"
    )
    assert not (tmp_path / "x.db").exists()  # refused before the worker opened anything


def test_fly_routes_on_readiness_and_watches_liveness() -> None:
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    (ready,) = fly["http_service"]["checks"]
    assert ready["path"] == "/health/ready"
    assert fly["checks"]["alive"]["path"] == "/health/live"
    assert fly["checks"]["alive"]["port"] == fly["http_service"]["internal_port"]
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "`GET /health/ready`" in deploy and "`GET /health/live`" in deploy
