"""Fault injection, for a bounded time, against real `litetask serve` processes.

While a client keeps submitting tasks over HTTP, the test kills the server with -9, stops
it with SIGTERM (tasks that ignore cancellation included), holds SQLite's write lock from
another connection (every write then waits, and submits may answer 503), and restarts it.
At the end every accepted task is terminal, nothing accepted is lost, no task ran two
attempts at once (a journal the tasks append to, read from outside), and no task was
charged more attempts than it was given plus the interruptions it lived through.

The seed is random per run and printed on failure; LITETASK_CHAOS_SEED replays one.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_loopback_port
from tests.faults import write_lock_held

StartServer = Callable[..., ServerProcess]
CHAOS_SECONDS = float(os.environ.get("LITETASK_CHAOS_SECONDS", "30"))
STOP_TIMEOUT = 1.0
TERMINAL = ("completed", "failed", "cancelled")

pytestmark = pytest.mark.timeout(CHAOS_SECONDS + 180)


@dataclass
class Accepted:
    """What the client was told it got: task ids by their `n`, and which kind each is."""

    ids: dict[int, str] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    error: BaseException | None = None  # what stopped the client, if anything did


@dataclass
class Service:
    """The one server process of the moment (restarted as the chaos requires)."""

    start: StartServer
    port: int
    database: Path
    journal: Path
    server: ServerProcess | None = None
    servers: list[ServerProcess] = field(default_factory=list)
    deaths: dict[int, float] = field(default_factory=dict)  # pid -> when it was gone

    def up(self) -> ServerProcess:
        self.server = self.start(
            self.port,
            LITETASK_TASK_MODULES="tests.e2e.chaos_tasks",
            LITETASK_CHAOS_JOURNAL=str(self.journal),
            LITETASK_MAX_WORKERS="4",
            LITETASK_STOP_TIMEOUT=str(STOP_TIMEOUT),
            LITETASK_BUSY_TIMEOUT="0.5",
            LITETASK_WRITE_RETRY_SECONDS="1",
            LITETASK_RECONCILE_INTERVAL="2",
            # Kills come every few seconds here: a task must not fail for living through
            # several (poison isolation has its own test, tests/e2e/test_poison.py).
            LITETASK_MAX_INTERRUPTIONS="50",
            LITETASK_LOG_LEVEL="error",
        )
        self.servers.append(self.server)
        return self.server

    def logs(self) -> str:
        """What every server of the run wrote (the current one once it has exited)."""
        return "\n".join(f"--- pid {s.proc.pid}:\n{s.output()}" for s in self.servers)

    def kill(self) -> None:
        server = self._current()
        server.signal(signal.SIGKILL)
        server.wait(20)
        self.deaths[server.proc.pid] = time.time()

    def terminate(self) -> None:
        """SIGTERM must end the process, with code 0, within the stop timeout and a margin,
        whatever its tasks do."""
        server = self._current()
        sent = time.monotonic()
        server.signal(signal.SIGTERM)
        code = server.wait(STOP_TIMEOUT + 15)
        self.deaths[server.proc.pid] = time.time()
        assert code == 0, server.output()
        assert time.monotonic() - sent < STOP_TIMEOUT + 10

    def _current(self) -> ServerProcess:
        assert self.server is not None
        return self.server


def body(n: int, kind: str, rng: random.Random) -> dict[str, object]:
    if kind == "chaos.flaky":
        return {"task_type": kind, "args": [n]}
    return {"task_type": kind, "args": [n, round(rng.uniform(0.05, 0.6), 2)]}


def submit_until(stop: threading.Event, port: int, accepted: Accepted, seed: int) -> None:
    try:
        submit_all(stop, port, accepted, seed)
    except BaseException as exc:
        accepted.error = exc


def submit_all(stop: threading.Event, port: int, accepted: Accepted, seed: int) -> None:
    """Keep submitting (each task under its own idempotency key, retried until the service
    answers 200/202 for it), whatever the server is going through."""
    rng = random.Random(seed)
    n = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while not stop.is_set():
            kind = rng.choices(["chaos.work", "chaos.stubborn", "chaos.flaky"], [8, 2, 1])[0]
            task_id = submit_one(client, stop, n, body(n, kind, rng))
            if task_id is not None:
                with accepted.lock:
                    accepted.ids[n], accepted.kinds[n] = task_id, kind
            n += 1
            time.sleep(rng.uniform(0.05, 0.25))  # about what 4 workers keep up with


def submit_one(
    client: httpx.Client, stop: threading.Event, n: int, request: dict[str, object]
) -> str | None:
    headers = {"Idempotency-Key": f"chaos-{n}"}
    while not stop.is_set():
        try:
            response = client.post("/tasks", json=request, headers=headers)
        except httpx.TransportError:
            time.sleep(0.1)  # down or restarting: the same key again
            continue
        if response.status_code in (200, 202):
            task_id: str = response.json()["id"]
            return task_id
        assert response.status_code == 503, response.text  # busy: never a 4xx/5xx else
        time.sleep(0.1)
    return None


def unleash(service: Service, rng: random.Random, until: float) -> Iterator[str]:
    """Faults, one after another, until `until` (monotonic); yields what it did."""
    while time.monotonic() < until:
        time.sleep(rng.uniform(0.5, 2.5))
        action = rng.choice(["kill", "term", "lock", "lock", "nothing"])
        if action == "kill":
            service.kill()
            service.up()
        elif action == "term":
            service.terminate()
            service.up()
        elif action == "lock":
            with write_lock_held(service.database):
                time.sleep(rng.uniform(0.5, 3))
        yield action


def wait_all_terminal(url: str, ids: dict[int, str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as client:
        pending = dict(ids)
        while pending:
            assert time.monotonic() < deadline, f"not terminal: {sorted(pending)[:20]}"
            for n, task_id in list(pending.items()):
                response = client.get(f"/tasks/{task_id}")
                assert response.status_code == 200, response.text
                if response.json()["status"] in TERMINAL:
                    del pending[n]
            time.sleep(0.2)


def check_rows(database: Path, accepted: Accepted) -> None:
    with sqlite3.connect(database) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT id, status, attempts, max_attempts, interruptions, result FROM tasks"
            )
        }
    for n, task_id in accepted.ids.items():
        assert task_id in rows, f"accepted task {n} ({task_id}) is lost"
        status, attempts, max_attempts, interruptions, _result = rows[task_id]
        assert status in TERMINAL, (n, status)
        assert attempts <= max_attempts + interruptions, (n, rows[task_id])
        if accepted.kinds[n] == "chaos.flaky":
            assert status == "failed", (n, rows[task_id])
        else:
            assert status == "completed", (n, rows[task_id])


def check_journal(journal: Path, deaths: dict[int, float]) -> None:
    """No two runs of one task overlap in time. A run with no `end` lasted until its
    process died (kill -9, or the end of a stop that cut it)."""
    runs: dict[int, list[tuple[float, float]]] = defaultdict(list)
    open_runs: dict[tuple[int, int], list[float]] = defaultdict(list)
    for line in journal.read_text().splitlines():
        event, n, pid, at = line.split()
        key = (int(n), int(pid))
        if event == "start":
            open_runs[key].append(float(at))
        else:
            runs[int(n)].append((open_runs[key].pop(0), float(at)))
    for (n, pid), starts in open_runs.items():
        runs[n].extend((start, deaths.get(pid, float("inf"))) for start in starts)
    for n, spans in runs.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"task {n} ran two attempts at once: {spans}"


def test_faults_lose_nothing_and_never_run_an_attempt_twice_at_once(
    tmp_path: Path, start_server: StartServer
) -> None:
    seed = int(os.environ.get("LITETASK_CHAOS_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    database, journal = tmp_path / "litetask.db", tmp_path / "journal"
    service = Service(start_server, free_loopback_port(), database, journal)
    service.up()
    accepted, stop = Accepted(), threading.Event()
    client = threading.Thread(target=submit_until, args=(stop, service.port, accepted, seed))
    client.start()
    try:
        done = list(unleash(service, rng, time.monotonic() + CHAOS_SECONDS))
    finally:
        stop.set()
        client.join(30)
    if accepted.error is not None:
        service.kill()
        pytest.fail(f"seed {seed}: the client failed: {accepted.error!r}\n{service.logs()}")
    server = service.server
    assert server is not None
    assert server.proc.poll() is None, f"seed {seed}: {server.output()}"
    started = time.monotonic()
    wait_all_terminal(server.url, accepted.ids)
    print(
        f"seed {seed}: {done}; {len(accepted.ids)} accepted; "
        f"all terminal {time.monotonic() - started:.1f} s after the chaos"
    )
    service.terminate()
    assert len(accepted.ids) > 20, f"seed {seed}: only {len(accepted.ids)} accepted ({done})"
    check_rows(database, accepted)
    check_journal(service.journal, service.deaths)
