"""/metrics of two `litetask serve` processes on one PostgreSQL database: what describes the
shared queue (tasks by status and type, the oldest pending task, the dashboard's throughput)
is the database's, the same on both; what counts work (attempts, finished tasks, run times,
the writer's commits) is each process's own, so summed over the processes it is the total,
as Prometheus' sum() expects, and never counted twice."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_loopback_port
from tests.pg_server import PostgresServer, postgres_sql
from tests.web.test_metrics import Samples, parse, value

pytestmark = pytest.mark.timeout(180)  # two real servers on a loaded machine
PER_PROCESS = 15
LATER = 3


def serve_two(url: str, directory: Path, **env: str) -> list[ServerProcess]:
    servers = [
        ServerProcess(
            directory / "unused.db", free_loopback_port(), LITETASK_DATABASE_URL=url, **env
        )
        for _ in range(2)
    ]
    for server in servers:
        server.wait_ready(timeout=60)
    return servers


def count(url: str, where: str) -> int:
    return int(str(postgres_sql(url, f"SELECT count(*) FROM tasks WHERE {where}")[0][0]))


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def scrape(client: httpx.Client, server: ServerProcess) -> Samples:
    response = client.get(server.url + "/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


def total(samples: Samples, name: str) -> float:
    """The sum of every sample of `name`, whatever its labels (0 when there is none)."""
    return sum(v for (sample, _labels), v in samples.items() if sample == name)


def completions(client: httpx.Client, server: ServerProcess) -> int:
    """What the dashboard's sparkline of `server` counts as completed."""
    minutes = client.get(server.url + "/stats/throughput").json()["minutes"]
    return sum(minute["completed"] for minute in minutes)


def test_queue_gauges_are_the_databases_and_counters_each_processs(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    servers = serve_two(url, tmp_path)
    try:
        with httpx.Client(timeout=30) as client:
            for server in servers:
                for n in range(PER_PROCESS):
                    body = {"task_type": "demo.add", "args": [n, 1]}
                    assert client.post(server.url + "/tasks", json=body).status_code == 202
            for n in range(LATER):
                body = {"task_type": "demo.add", "args": [n, 2], "delay": 3600}
                assert client.post(servers[0].url + "/tasks", json=body).status_code == 202
            done = 2 * PER_PROCESS
            wait_until(lambda: count(url, "status = 'completed'") == done, 60, "the tasks")
            # A task's events reach each process's follower a moment after their commit.
            wait_until(
                lambda: all(completions(client, s) == done for s in servers),
                30,
                "every process to count every completion on its sparkline",
            )
            scrapes = [scrape(client, server) for server in servers]
    finally:
        for server in servers:
            server.close()
    for samples in scrapes:  # the shared queue: the same on every process
        assert value(samples, "litetask_tasks", status="completed") == done
        assert value(samples, "litetask_tasks", status="scheduled") == LATER
        active = value(samples, "litetask_tasks_active", status="scheduled", task_type="demo.add")
        assert active == LATER
    for name in (  # what each process did: summed, every task once
        "litetask_tasks_finished_total",
        "litetask_task_attempts_total",
        "litetask_task_run_seconds_count",
        "litetask_task_queue_wait_seconds_count",
    ):
        each = [total(samples, name) for samples in scrapes]
        assert sum(each) == done, (name, each)
