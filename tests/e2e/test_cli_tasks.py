"""The operator CLI (`litetask tasks ...`, `litetask watch`) as real processes against a real
`litetask serve` with a token: exit statuses and output, plain (stdout is a pipe here) and
--json; every error is one line."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess, free_loopback_port, running_server

pytestmark = pytest.mark.timeout(120)
TOKEN = "cli-tasks-test-token-" + "x" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "LITETASK_API_TOKEN": TOKEN,
        "LITETASK_RETRY_BACKOFF": "0.01",
        "LITETASK_TASK_MODULES": "tests.web.taskapi_tasks,tests.e2e.watch_tasks",
    }
    with running_server(tmp_path_factory.mktemp("cli"), **env) as process:
        yield process


def cli_env(url: str, token: str | None = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITETASK_", "FORCE_COLOR"))}
    env.update(PYTHONPATH=str(ROOT), LITETASK_URL=url)
    if token is not None:
        env["LITETASK_API_TOKEN"] = token
    return env


def litetask(url: str, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=cli_env(url, token),
        capture_output=True,
        text=True,
        timeout=90,
    )


def submit(url: str, task_type: str, **body: Any) -> str:
    response = httpx.post(
        url + "/tasks", json={"task_type": task_type, **body}, headers=AUTH, timeout=10
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def get(url: str, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = httpx.get(f"{url}/tasks/{task_id}", headers=AUTH, timeout=10).json()
    return task


def wait_status(url: str, task_id: str, wanted: set[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (task := get(url, task_id))["status"] not in wanted:
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
    return task


def one_error_line(result: subprocess.CompletedProcess[str], *, code: int = 1) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("litetask: "), result.stderr
    return lines[0]


def test_list_filters_plain_and_json(server: ServerProcess) -> None:
    url = server.url
    added = submit(url, "demo.add", args=[2, 3])
    failed = submit(url, "demo.fail", kwargs={"message": "list boom"}, max_attempts=1)
    waiting = submit(url, "demo.sleep", delay=600)
    wait_status(url, added, {"completed"})
    wait_status(url, failed, {"failed"})

    plain = litetask(url, "tasks", "list", "--type", "demo.add")
    assert plain.returncode == 0, plain.stderr
    rows = [line.split("\t") for line in plain.stdout.splitlines()]
    row = next(r for r in rows if r[0] == added)
    assert row[1:4] == ["demo.add", "completed", "1/1"] and row[5] == "5"
    assert {r[1] for r in rows} == {"demo.add"}

    only_failed = litetask(url, "tasks", "list", "--status", "failed", "--json")
    assert only_failed.returncode == 0, only_failed.stderr
    listed = json.loads(only_failed.stdout)
    assert failed in [t["id"] for t in listed]
    assert {t["status"] for t in listed} == {"failed"}

    two = litetask(url, "tasks", "list", "--status", "scheduled", "--status", "failed", "--json")
    assert {waiting, failed} <= {t["id"] for t in json.loads(two.stdout)}
    newest = litetask(url, "tasks", "list", "--limit", "1")
    assert [line.split("\t")[0] for line in newest.stdout.splitlines()] == [waiting]


def test_a_snooze_spends_no_attempt_in_what_show_prints(server: ServerProcess) -> None:
    task_id = submit(server.url, "taskapi.snooze", args=[2], max_attempts=2)
    wait_status(server.url, task_id, {"completed"})
    out = litetask(server.url, "tasks", "show", task_id).stdout
    assert "attempts: 1 of at most 2" in out and "snoozes: 2" in out
    listed = litetask(server.url, "tasks", "list", "--limit", "1").stdout
    assert "1/2" in listed.splitlines()[0].split("\t")


def test_show_gives_every_attempt_with_its_traceback(server: ServerProcess) -> None:
    url = server.url
    task_id = submit(url, "demo.fail", kwargs={"message": "show boom"}, max_attempts=2)
    wait_status(url, task_id, {"failed"})
    plain = litetask(url, "tasks", "show", task_id)
    assert plain.returncode == 0, plain.stderr
    out = plain.stdout
    assert f"id: {task_id}" in out and "status: failed" in out
    assert "attempts: 2 of at most 2" in out
    for attempt in (1, 2):
        assert f"attempt {attempt} of 2 failed at " in out
    assert out.count("DemoFailure: show boom") >= 2
    assert out.count("Traceback (most recent call last):") == 2
    assert "raise DemoFailure(message)" in out

    as_json = litetask(url, "tasks", "show", task_id, "--json")
    shown = json.loads(as_json.stdout)
    assert shown == get(url, task_id)
    assert [e["attempt"] for e in shown["errors"]] == [1, 2]


def test_cancel_and_retry_by_id(server: ServerProcess) -> None:
    url = server.url
    task_id = submit(url, "demo.sleep", delay=600)
    cancelled = litetask(url, "tasks", "cancel", task_id)
    assert (cancelled.returncode, cancelled.stdout) == (0, f"cancelled {task_id}\n")
    assert get(url, task_id)["status"] == "cancelled"
    again = one_error_line(litetask(url, "tasks", "cancel", task_id))
    assert "already cancelled" in again and "HTTP 409" in again

    retried = litetask(url, "tasks", "retry", task_id, "--json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["status"] == "pending"
    wait_status(url, task_id, {"running", "completed"})
    refused = one_error_line(litetask(url, "tasks", "retry", task_id))
    assert "only failed or cancelled tasks can be retried" in refused


def test_retry_all_failed_of_a_type(server: ServerProcess) -> None:
    url = server.url
    fails = [submit(url, "demo.fail", max_attempts=1, metadata={"n": i}) for i in range(3)]
    timed_out = submit(url, "demo.sleep", kwargs={"seconds": 5}, timeout=0.05)
    for task_id in [*fails, timed_out]:
        wait_status(url, task_id, {"failed"})

    as_json = litetask(url, "tasks", "retry", "--all-failed", "--type", "demo.fail", "--json")
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    retried = {t["id"] for t in answer["tasks"] if t["outcome"] == "retried"}
    assert set(fails) <= retried
    assert answer["counts"]["retried"] == len(retried)
    assert get(url, timed_out)["status"] == "failed"

    plain = litetask(url, "tasks", "retry", "--all-failed")
    assert plain.returncode == 0, plain.stderr
    assert f"retried {timed_out}" in plain.stdout.splitlines()
    assert plain.stdout.splitlines()[-1].startswith("retried ")
    usage = litetask(url, "tasks", "retry", fails[0], "--all-failed")
    assert one_error_line(usage, code=2).endswith("give a task ID, or --all-failed [--type T]")


def test_watch_exits_0_when_completed_and_1_when_failed(
    server: ServerProcess, tmp_path: Path
) -> None:
    url = server.url
    start, finish = tmp_path / "start", tmp_path / "finish"
    gates = {"start": str(start), "finish": str(finish)}
    task_id = submit(url, "watch.halfway", kwargs=gates)
    with watcher_of(url, task_id) as (watcher, lines):
        # Its first line comes from the stream's snapshot: the watcher is subscribed, so
        # the progress made after it can reach it only as a live event.
        assert next_line(lines).endswith(" 0%")
        start.touch()
        seen = [next_line(lines)]
        while seen[-1] != "running 50%":
            seen.append(next_line(lines))
        finish.touch()
        assert watcher.wait(timeout=60) == 0, watcher.stderr.read()
        assert next_line(lines) == 'completed: "done"'

    failing = submit(url, "demo.fail", kwargs={"message": "watch boom"}, max_attempts=1, delay=1)
    as_json = litetask(url, "watch", failing, "--json")
    assert as_json.returncode == 1, as_json.stderr
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert events[0]["type"] == "task.snapshot"  # then what is left of its run, if anything
    assert (events[-1]["status"], events[-1]["error"]) == ("failed", "watch boom")
    kinds = [e["type"] for e in events[1:]]
    assert kinds in ([], ["task.failed"], ["task.started", "task.failed"]), kinds
    finished = litetask(url, "watch", failing)  # already over: says so at once
    assert (finished.returncode, finished.stdout) == (1, "failed: watch boom\n")


@contextmanager
def watcher_of(url: str, task_id: str) -> Iterator[tuple[subprocess.Popen[str], Queue[str]]]:
    """`litetask watch task_id` running, and its stdout lines as they come (a thread reads
    them, so a wait for one has a deadline)."""
    command = [sys.executable, "-m", "app", "watch", task_id]
    with subprocess.Popen(
        command, env=cli_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as watcher:
        lines: Queue[str] = Queue()
        assert watcher.stdout is not None
        stdout = watcher.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        try:
            yield watcher, lines
        finally:
            watcher.kill()


def next_line(lines: Queue[str], timeout: float = 60) -> str:
    """The watcher's next line; fails after `timeout` seconds without one."""
    try:
        return lines.get(timeout=timeout).rstrip("\n")
    except Empty:
        pytest.fail(f"the watcher printed no line within {timeout} s")


def test_watch_a_task_cancelled_meanwhile_exits_1(server: ServerProcess) -> None:
    url = server.url
    task_id = submit(url, "demo.sleep", kwargs={"seconds": 60, "steps": 60})
    with subprocess.Popen(
        [sys.executable, "-m", "app", "watch", task_id],
        env=cli_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as watcher:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().startswith(("pending", "running"))
        wait_status(url, task_id, {"running"})
        httpx.delete(f"{url}/tasks/{task_id}", headers=AUTH, timeout=10)
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 1, err
    assert out.splitlines()[-1] == "cancelled"


def test_errors_are_one_line(server: ServerProcess) -> None:
    url = server.url
    down = one_error_line(litetask(f"http://127.0.0.1:{free_loopback_port()}", "tasks", "list"))
    assert "cannot reach the service at http://127.0.0.1:" in down
    bad_token = one_error_line(litetask(url, "tasks", "list", token="wrong-token"))
    assert "HTTP 401" in bad_token and "LITETASK_API_TOKEN" in bad_token
    unknown = one_error_line(litetask(url, "tasks", "show", "no-such-task"))
    assert unknown == "litetask: no task with id 'no-such-task' (HTTP 404)"
    watch_unknown = one_error_line(litetask(url, "watch", "no-such-task", "--json"))
    assert watch_unknown == unknown
    bad_status = one_error_line(litetask(url, "tasks", "list", "--status", "bogus"))
    assert "status" in bad_status and "HTTP 422" in bad_status


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://127.0.0.1", "http://"])
@pytest.mark.parametrize("command", [("tasks", "list"), ("watch", "some-id"), ("status", "x")])
def test_a_bad_service_url_is_a_configuration_error(url: str, command: tuple[str, ...]) -> None:
    """LITETASK_URL that is not an http(s) URL of a service: exit 2, one line naming the
    variable and what it accepts (as for the service's own settings), nothing sent."""
    said = one_error_line(litetask(url, *command), code=2)
    assert said.startswith("litetask: configuration error: LITETASK_URL"), said
    assert "http:// or https://" in said


def on_terminal(url: str, *args: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdout (160 columns); its exit status and what
    it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**cli_env(url), "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    with subprocess.Popen(
        [sys.executable, "-m", "app", *args], stdin=slave, stdout=slave, stderr=slave, env=env
    ) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child's side is closed
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(60)
    os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_tables_panels_and_a_bar(server: ServerProcess) -> None:
    url = server.url
    failed = submit(url, "demo.fail", kwargs={"message": "tty boom"}, max_attempts=1)
    wait_status(url, failed, {"failed"})
    code, table = on_terminal(url, "tasks", "list", "--status", "failed")
    assert code == 0, table
    assert "\x1b[" in table  # styled
    assert all(name in table for name in ("ID", "TYPE", "STATUS", "ATTEMPTS", "AGE", "RESULT"))
    assert failed in table and "tty boom" in table

    code, detail = on_terminal(url, "tasks", "show", failed)
    assert code == 0, detail
    assert "╭" in detail and "Traceback (most recent call last)" in detail

    sleeper = submit(url, "demo.sleep", kwargs={"seconds": 3.0, "steps": 6}, delay=1)
    code, bar = on_terminal(url, "watch", sleeper)
    assert code == 0, bar
    assert "━" in bar and "100%" in bar and "completed" in bar
