"""GET /health: ok with workers and queue depth; 503 while draining or stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from app.main import create_app
from app.worker.core import AsyncTaskWorker
from tests.conftest import lifespan, settings_for
from tests.web.helpers import submit


async def test_health_reports_workers_and_queue(client: httpx.AsyncClient) -> None:
    await submit(client, "demo.add", args=[1, 2], delay=60)
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["workers"] == {"max": 10, "active": 0}
    assert (body["queue"]["scheduled"], body["queue"]["pending"]) == (1, 0)
    assert set(body["queue"]) >= {"running", "failed"}


async def test_lifespan_state_reaches_handlers(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, max_workers=3)
    async with lifespan(create_app(settings)) as running, running.client() as client:
        assert running.state["settings"] is settings
        assert isinstance(running.state["worker"], AsyncTaskWorker)
        assert running.state["events"] is not None
        assert (await client.get("/health")).json()["workers"]["max"] == 3


async def test_health_is_503_while_draining(tmp_path: Path) -> None:
    draining = asyncio.Event()
    app = create_app(settings_for(tmp_path), draining=draining)
    async with lifespan(app) as running, running.client() as client:
        assert (await client.get("/health")).status_code == 200
        draining.set()
        response = await client.get("/health")
        assert response.status_code == 503
        assert response.json()["problems"] == ["the service is draining"]


async def test_health_is_503_when_the_pool_is_stopped(tmp_path: Path) -> None:
    async with lifespan(create_app(settings_for(tmp_path))) as running, running.client() as client:
        worker: AsyncTaskWorker = running.state["worker"]
        await worker.stop()
        response = await client.get("/health")
        assert response.status_code == 503
        assert "the worker pool is stopped" in response.json()["problems"]


TOKEN = "health-test-token-" + "x" * 20


async def test_public_health_shows_status_only_when_a_token_is_set(tmp_path: Path) -> None:
    draining = asyncio.Event()
    app = create_app(settings_for(tmp_path, api_token=TOKEN), draining=draining)
    async with lifespan(app) as running, running.client() as client:
        anonymous = await client.get("/health")
        assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
        wrong = await client.get("/health", headers={"Authorization": "Bearer nope"})
        assert wrong.json() == {"status": "ok"}
        bearer = await client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.json()["workers"]["max"] == 10 and "pending" in bearer.json()["queue"]
        assert (await client.post("/auth/session", json={"token": TOKEN})).status_code == 200
        assert "queue" in (await client.get("/health")).json()  # the session cookie counts
        client.cookies.clear()
        draining.set()
        down = await client.get("/health")
        assert down.status_code == 503 and down.json() == {"status": "unavailable"}


async def test_liveness_stays_200_while_draining_and_readiness_turns_503(tmp_path: Path) -> None:
    draining = asyncio.Event()
    app = create_app(settings_for(tmp_path), draining=draining)
    async with lifespan(app) as running, running.client() as client:
        live, ready = await client.get("/health/live"), await client.get("/health/ready")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
        draining.set()
        live, ready = await client.get("/health/live"), await client.get("/health/ready")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        assert ready.status_code == 503
        assert ready.json()["problems"] == ["the service is draining"]
        assert (await client.get("/health")).json() == ready.json()


async def test_readiness_is_what_health_always_answered(client: httpx.AsyncClient) -> None:
    await submit(client, "demo.add", args=[1, 2], delay=60)
    ready, health = await client.get("/health/ready"), await client.get("/health")
    assert ready.status_code == health.status_code == 200
    assert ready.json() == health.json()
    assert ready.json()["queue"]["scheduled"] == 1 and ready.json()["workers"]["max"] == 10


async def test_probes_are_public_and_say_status_only_without_the_token(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, api_token=TOKEN))
    async with lifespan(app) as running, running.client() as client:
        for path in ("/health/live", "/health/ready"):
            response = await client.get(path)
            assert (response.status_code, response.json()) == (200, {"status": "ok"}), path
        bearer = await client.get("/health/ready", headers={"Authorization": f"Bearer {TOKEN}"})
        assert "queue" in bearer.json()
