"""Periodic tasks in a real `litetask serve`: a 1-second task served, stopped and started
again runs once per slot; GET /schedules (behind the token) and `litetask schedules` show
each schedule with its last and next run."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import ServerProcess, free_loopback_port, running_server
from tests.e2e.test_cli_tasks import litetask

pytestmark = pytest.mark.timeout(120)
# Loaded by the servers only: imported here, its every-second task would join the default
# registry and run in every in-process app of this pytest process.
MODULE = "tests.e2e.periodic_tasks"
RUNS_FILE = "PERIODIC_RUNS_FILE"  # tests/e2e/periodic_tasks.py appends each slot it ran to it
TOKEN = "periodic-test-token-" + "x" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECOND = timedelta(seconds=1)
Start = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"LITETASK_API_TOKEN": TOKEN, "LITETASK_TASK_MODULES": MODULE}
    with running_server(tmp_path_factory.mktemp("periodic"), **env) as process:
        yield process


def wait_for(condition: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.05)


def ran(path: Path) -> list[datetime]:
    """The slots `periodic.tick` ran for, in the order it ran them."""
    if not path.exists():
        return []
    return [datetime.fromisoformat(line) for line in path.read_text().split()]


def ticks(url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every `periodic.tick` task, through the API."""
    params = {"task_type": "periodic.tick", "limit": "1000"}
    answer = httpx.get(url + "/tasks", params=params, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    tasks: list[dict[str, Any]] = answer.json()["tasks"]
    return tasks


def slot(task: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(task["kwargs"]["scheduled_at"])


def schedules(url: str, headers: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    answer = httpx.get(url + "/schedules", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return {s["name"]: s for s in answer.json()["schedules"]}


def at(iso: str | None) -> datetime:
    assert iso is not None
    return datetime.fromisoformat(iso)


def test_a_one_second_task_runs_once_per_slot_across_a_restart(
    start_server: Start, tmp_path: Path
) -> None:
    """Served, stopped (SIGTERM), down 2.5 s, served again: every slot from the first start
    to the last is queued once (missed="all": the downtime's too), and each runs once."""
    runs = tmp_path / "runs.txt"
    env = {"LITETASK_TASK_MODULES": MODULE, RUNS_FILE: str(runs)}
    first = start_server(free_loopback_port(), **env)
    wait_for(lambda: len(ran(runs)) >= 3, what="three runs")
    first.signal(signal.SIGTERM)
    assert first.wait() == 0, first.output()
    stopped = datetime.now(UTC)
    time.sleep(2.5)  # down: slots pass while no process runs
    restarted = datetime.now(UTC)
    second = start_server(free_loopback_port(), **env)
    wait_for(lambda: any(s > restarted + 2 * SECOND for s in ran(runs)), what="runs after start")
    queued = ticks(second.url)
    shown = schedules(second.url)["periodic.tick"]
    second.signal(signal.SIGTERM)
    assert second.wait() == 0, second.output()

    slots = sorted(slot(t) for t in queued)
    assert len(slots) == len(set(slots)), slots  # no slot queued twice
    assert all(b - a == SECOND for a, b in itertools.pairwise(slots)), slots  # none lost
    assert any(stopped < s < restarted for s in slots), (stopped, restarted, slots)
    done = ran(runs)
    assert len(done) == len(set(done)), done  # no slot ran twice
    assert set(done) <= set(slots)
    completed = [t for t in queued if t["status"] == "completed"]
    assert {slot(t) for t in completed} <= set(done)
    assert all(t["attempts"] == 1 for t in completed)
    assert all((t["priority"], t["max_attempts"]) == (5, 2) for t in completed)
    assert at(shown["last_run"]) == slots[-1]


def test_schedules_need_the_token(server: ServerProcess) -> None:
    answer = httpx.get(server.url + "/schedules", timeout=10)
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_schedules_show_their_last_and_next_run(server: ServerProcess) -> None:
    wait_for(lambda: schedules(server.url, AUTH)["periodic.tick"]["last_run"], what="a tick")
    found = schedules(server.url, AUTH)
    now = datetime.now(UTC)
    assert sorted(found) == ["periodic.report", "periodic.tick"]
    tick = found["periodic.tick"]
    assert (tick["every"], tick["cron"], tick["timezone"], tick["missed"]) == (
        1,
        None,
        "UTC",
        "all",
    )
    assert tick["last_status"] in {"pending", "claimed", "running", "completed"}
    assert tick["last_task_id"] in {t["id"] for t in ticks(server.url, AUTH)}
    assert at(tick["last_run"]) < at(tick["next_run"]) <= now + 2 * SECOND

    report = found["periodic.report"]
    assert (report["cron"], report["every"]) == ("30 9 * * MON-FRI", None)
    assert (report["timezone"], report["missed"]) == ("America/New_York", "one")
    assert report["last_run"] is None and report["last_status"] is None
    local = at(report["next_run"]).astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, local.weekday() < 5) == (9, 30, True)
    assert now < at(report["next_run"]) <= now + timedelta(days=4)


def test_the_cli_prints_the_schedules(server: ServerProcess) -> None:
    wait_for(lambda: schedules(server.url, AUTH)["periodic.tick"]["last_run"], what="a tick")
    plain = litetask(server.url, "schedules", token=TOKEN)
    assert plain.returncode == 0, plain.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in plain.stdout.splitlines()}
    assert sorted(rows) == ["periodic.report", "periodic.tick"]
    assert rows["periodic.tick"][1:3] == ["every 1 s", "all"]
    assert rows["periodic.report"][1:3] == ["cron 30 9 * * MON-FRI (America/New_York)", "one"]
    assert rows["periodic.report"][3:5] == ["", ""]  # never ran: no last run, no status
    assert datetime.fromisoformat(rows["periodic.report"][5]).minute == 30

    as_json = litetask(server.url, "schedules", "--json", token=TOKEN)
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert [s["name"] for s in listed] == ["periodic.report", "periodic.tick"]
    assert listed[0] == schedules(server.url, AUTH)["periodic.report"]

    refused = litetask(server.url, "schedules", token=None)
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr
