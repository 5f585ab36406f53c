"""HTTP while the database misbehaves: a submit the database refuses (busy, full, read-only)
answers 503 problem+json with Retry-After and writes nothing; a dead writer turns readiness
503. On the backend under test (`--backend`): tests/faults.py injects each fault on both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from app.webhook_config import parse_webhooks
from app.worker.core import AsyncTaskWorker
from tests.conftest import Running, lifespan, settings_for
from tests.faults import disk_full, kill_writer_thread, read_only, write_lock_held
from tests.web.helpers import assert_problem, submit, task_count, wait_done, wait_status

FAST_FAILING = {"busy_timeout": 0.05, "write_retry_seconds": 0.3}


@pytest.fixture
def database(fresh_database_url: str) -> str:
    return fresh_database_url


@pytest.fixture
async def running(tmp_path: Path, database: str) -> AsyncIterator[Running]:
    webhooks = parse_webhooks(json.dumps({"hook.unsigned": {"scheme": "none"}}))
    modules = ("app.demo", "tests.web.webhook_tasks", "tests.fault_tasks")
    settings = settings_for(
        tmp_path, database_url=database, task_modules=modules, webhooks=webhooks, **FAST_FAILING
    )
    async with lifespan(create_app(settings)) as running:
        yield running


@pytest.fixture
async def client(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running.client() as client:
        yield client


def assert_unavailable(response: httpx.Response) -> dict[str, object]:
    body = assert_problem(response, 503)
    assert body["type"] == "urn:litetask:problem:unavailable"
    assert int(response.headers["retry-after"]) > 0
    return body


async def test_a_submit_on_a_full_disk_answers_503_and_writes_nothing(
    client: httpx.AsyncClient, database: str
) -> None:
    big = "x" * 200_000
    with disk_full(database) as disk:
        response = await client.post("/tasks", json={"task_type": "demo.echo", "args": [big]})
    body = assert_unavailable(response)
    assert disk.reason in str(body["detail"])
    assert await task_count(client) == 0


async def test_a_submit_while_another_program_holds_the_lock_answers_503(
    client: httpx.AsyncClient, database: str
) -> None:
    with write_lock_held(database):
        tasks = await client.post("/tasks", json={"task_type": "demo.add", "args": [1, 2]})
        hook = await client.post("/webhooks/hook.unsigned", json={"n": 1})
    assert_unavailable(tasks)
    assert_unavailable(hook)
    assert await task_count(client) == 0
    accepted = await client.post("/tasks", json={"task_type": "demo.add", "args": [1, 2]})
    assert accepted.status_code == 202  # the lock is gone: the service takes work again


async def test_a_submit_to_a_read_only_database_answers_503(
    client: httpx.AsyncClient, database: str
) -> None:
    with read_only(database) as fault:
        tasks = await client.post("/tasks", json={"task_type": "demo.add", "args": [1, 2]})
        hook = await client.post("/webhooks/hook.unsigned", json={"n": 1})
        fault.release()
        accepted = await client.post("/tasks", json={"task_type": "demo.add", "args": [1, 2]})
        assert accepted.status_code == 202  # writable again: the service takes work again
    assert fault.reason in str(assert_unavailable(tasks)["detail"])
    assert_unavailable(hook)
    assert await task_count(client) == 1


async def health_problems(client: httpx.AsyncClient, expected: str) -> list[str]:
    """Poll /health until one of its problems contains `expected`; return them all."""
    async with asyncio.timeout(10):
        while True:
            response = await client.get("/health")
            problems: list[str] = response.json().get("problems", [])
            if any(expected in p for p in problems):
                assert response.status_code == 503
                return problems
            await asyncio.sleep(0.02)


async def test_an_outcome_the_full_disk_refuses_turns_readiness_503_until_stored(
    client: httpx.AsyncClient, database: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    kwargs = {"gate": str(gate), "size": 256 * 1024}
    task = await submit(client, "faults.big_result", kwargs=kwargs)
    await wait_status(client, task["id"], "running")
    with disk_full(database) as disk:
        gate.touch()
        problems = await health_problems(client, "outcomes are waiting for the database")
        assert any(disk.reason in p for p in problems), problems
        disk.free()
        done = await wait_done(client, task["id"], timeout=20)
    assert done["status"] == "completed"
    assert (await client.get("/health")).status_code == 200


async def test_a_dead_writer_turns_readiness_503_and_submits_503(
    running: Running, client: httpx.AsyncClient
) -> None:
    worker: AsyncTaskWorker = running.state["worker"]
    assert (await client.get("/health")).status_code == 200
    kill_writer_thread(worker.writer)
    submitted = await client.post("/tasks", json={"task_type": "demo.add", "args": [1, 2]})
    assert_unavailable(submitted)
    health = await client.get("/health")  # the probe fails at once: the writer is dead
    assert health.status_code == 503
    problems = health.json()["problems"]
    assert any("database writer stopped" in p for p in problems), problems


async def test_a_submit_while_the_service_drains_is_503_not_500(
    tmp_path: Path, database: str
) -> None:
    """HTTP keeps answering while the worker drains; once the writer has stopped, a submit
    is told to come back (503 + Retry-After), as the restarted service will take it."""
    draining, drained = asyncio.Event(), asyncio.Event()
    settings = settings_for(tmp_path, database_url=database)
    app = create_app(settings, draining=draining, drained=drained)
    async with lifespan(app) as running, running.client() as client:
        draining.set()
        await asyncio.wait_for(drained.wait(), 10)
        response = await client.post("/tasks", json={"task_type": "demo.add", "args": [1, 2]})
        assert_problem(response, 503)
        assert response.headers["retry-after"]


async def test_readiness_is_503_while_the_database_is_not_writable(
    client: httpx.AsyncClient, database: str
) -> None:
    """Another program holds the write lock: readiness says the database is not writable
    (liveness stays 200: the process is fine), and is ready again once the lock is gone."""
    assert (await client.get("/health/ready")).status_code == 200
    with write_lock_held(database):
        async with asyncio.timeout(20):
            while (ready := await client.get("/health/ready")).status_code != 503:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert (await client.get("/health/live")).status_code == 200
    assert any("not writable" in p for p in ready.json()["problems"]), ready.json()
    async with asyncio.timeout(20):
        while (await client.get("/health/ready")).status_code != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
