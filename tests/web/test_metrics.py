"""GET /metrics: Prometheus text a scraper parses, with the numbers a user expects after
tasks complete, fail and retry; token-protected like the API."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import ConfigError, Settings
from app.events.manager import EventManager
from app.main import create_app
from tests.conftest import ClientFactory, free_loopback_port, lifespan, settings_for
from tests.web.helpers import submit, wait_done, wait_status

TOKEN = "metrics-test-token-" + "x" * 20
BEARER = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}; have {sorted(k[0] for k in samples)}"
    return samples[key]


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


async def test_metrics_count_what_tasks_did(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, max_workers=1, retry_backoff=0.01)
    async with lifespan(create_app(settings)) as running, running.client() as client:
        events: EventManager = running.state["events"]
        slow = events.subscribe(max_queue=1)  # never read: dropped as a slow subscriber
        # A task of a few hundred ms first, so the pool does not prefetch the later ones.
        first = await submit(client, "demo.sleep", kwargs={"seconds": 0.3, "steps": 1})
        await wait_done(client, first["id"])
        adds = [await submit(client, "demo.add", args=[i, 1]) for i in range(3)]
        failing = await submit(client, "demo.fail", max_attempts=2)
        for task in [*adds, failing]:
            await wait_done(client, task["id"])
        long = await submit(client, "demo.sleep", kwargs={"seconds": 30, "steps": 1})
        await wait_status(client, long["id"], "running")
        waiting = await submit(client, "demo.add", args=[1, 1])
        await submit(client, "demo.add", args=[2, 2], delay=3600)
        await asyncio.sleep(0.3)
        samples = await scrape(client)
        assert slow.reason is not None

    def attempts(task_type: str, outcome: str) -> float:
        return value(samples, "litetask_task_attempts_total", task_type=task_type, outcome=outcome)

    assert attempts("demo.add", "completed") == 3
    assert attempts("demo.fail", "retried") == 1
    assert attempts("demo.fail", "failed") == 1
    finished = "litetask_tasks_finished_total"
    assert value(samples, finished, task_type="demo.add", status="completed") == 3
    assert value(samples, finished, task_type="demo.fail", status="failed") == 1

    assert value(samples, "litetask_tasks", status="completed") == 4
    assert value(samples, "litetask_tasks", status="failed") == 1
    assert value(samples, "litetask_tasks", status="running") == 1
    assert value(samples, "litetask_tasks", status="pending") == 1
    assert value(samples, "litetask_tasks", status="scheduled") == 1
    active = "litetask_tasks_active"
    assert value(samples, active, status="running", task_type="demo.sleep") == 1
    assert value(samples, active, status="pending", task_type="demo.add") == 1
    assert value(samples, active, status="scheduled", task_type="demo.add") == 1
    assert waiting["status"] == "pending"
    assert 0.25 <= value(samples, "litetask_oldest_pending_seconds") < 30

    run = "litetask_task_run_seconds"
    assert value(samples, run + "_count", task_type="demo.sleep") == 1
    assert 0.3 <= value(samples, run + "_sum", task_type="demo.sleep") < 5
    assert value(samples, run + "_count", task_type="demo.fail") == 2
    assert value(samples, run + "_count", task_type="demo.add") == 3
    wait = "litetask_task_queue_wait_seconds"
    assert value(samples, wait + "_count", task_type="demo.add") == 3
    assert value(samples, wait + "_count", task_type="demo.fail") == 2
    assert value(samples, wait + "_count", task_type="demo.sleep") == 2
    # The retry waited out its backoff first; only then does queue wait start.
    assert value(samples, wait + "_sum", task_type="demo.fail") < 5

    assert value(samples, "litetask_writer_batch_size_count") >= 10
    assert value(samples, "litetask_writer_batch_size_sum") >= 10
    assert value(samples, "litetask_writer_commit_seconds_count") >= 10
    assert value(samples, "litetask_workers_busy") == 1
    assert value(samples, "litetask_workers_max") == 1
    assert value(samples, "litetask_outcomes_waiting") == 0
    assert value(samples, "litetask_sse_clients") == 0
    assert value(samples, "litetask_subscribers_dropped_total") == 1
    assert 0 <= value(samples, "litetask_event_loop_lag_seconds") < 1
    assert value(samples, "litetask_event_loop_blocked_total") == 0
    assert value(samples, "process_resident_memory_bytes") > 0


async def test_metrics_need_the_token_like_the_api(make_client: ClientFactory) -> None:
    async with make_client(api_token=TOKEN) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await client.get("/metrics", headers={"Authorization": "Bearer no"})).is_error
        assert value(await scrape(client, **BEARER), "litetask_workers_max") == 10
        assert (await client.post("/auth/session", json={"token": TOKEN})).status_code == 200
        assert value(await scrape(client), "litetask_workers_max") == 10  # the session cookie


async def test_metrics_on_their_own_port_need_no_token(make_client: ClientFactory) -> None:
    port = free_loopback_port()
    async with make_client(api_token=TOKEN, metrics_port=port) as client:
        body = {"task_type": "demo.add", "args": [1, 2]}
        assert (await client.post("/tasks", json=body, headers=BEARER)).status_code == 202
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scraper:
            response = await scraper.get("/metrics")
            assert response.status_code == 200
            samples = parse(response.text)
            assert (
                value(samples, "litetask_tasks", status="pending")
                + value(samples, "litetask_tasks", status="running")
                + value(samples, "litetask_tasks", status="completed")
                == 1
            )
            assert (await scraper.get("/tasks")).status_code == 404  # metrics only
            rebinding = await scraper.get("/metrics", headers={"Host": "evil.example"})
            assert rebinding.status_code == 400
        assert (await client.get("/metrics")).status_code == 401  # still locked here
    async with httpx.AsyncClient() as late:
        with pytest.raises(httpx.ConnectError):  # closed with the app
            await late.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


async def test_a_taken_metrics_port_stops_the_start(tmp_path: Path) -> None:
    port = free_loopback_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        app = create_app(settings_for(tmp_path, metrics_port=port))
        with pytest.raises(ConfigError, match=f"LITETASK_METRICS_PORT.*127.0.0.1:{port}"):
            async with lifespan(app):
                pass


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LITETASK_METRICS_PORT": "70000"}, "LITETASK_METRICS_PORT must be between 1 and 65535"),
        ({"LITETASK_METRICS_PORT": "nine"}, "LITETASK_METRICS_PORT='nine' is not a whole number"),
        ({"LITETASK_METRICS_PORT": "8000"}, "LITETASK_METRICS_PORT must differ from"),
    ],
)
def test_bad_metrics_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(environ)


def test_metrics_port_is_off_by_default() -> None:
    settings = Settings.from_env({})
    assert (settings.metrics_port, settings.metrics_host) == (None, "127.0.0.1")
    assert (settings.log_format, settings.access_log) == ("text", False)
