"""Responses that end, checked in process through httpx's ASGITransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.events.retention import Retention, prune_events
from app.events.sse import MAX_FIELD_CHARS, event_stream_response
from app.worker.core import AsyncTaskWorker
from tests.events.conftest import in_process


async def test_unknown_task_is_a_404_problem(app: Starlette) -> None:
    async with in_process(app) as client:
        response = await client.get("/tasks/nope/events")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404 and body["title"] == "Not Found" and "nope" in body["detail"]
    assert "type" in body


async def test_malformed_last_event_id_is_a_400_problem(app: Starlette) -> None:
    async with in_process(app) as client:
        for url, headers in [
            ("/events", {"Last-Event-ID": "abc"}),
            ("/events?last_event_id=-3", {}),
        ]:
            response = await client.get(url, headers=headers)
            assert response.status_code == 400, url
            assert response.headers["content-type"] == "application/problem+json"


async def test_finished_task_stream_ends_after_the_snapshot(
    app: Starlette, worker: AsyncTaskWorker
) -> None:
    task_id = await worker.add_task("echo", {"answer": 42})
    await worker.wait_for_tasks([task_id], timeout=5)
    async with in_process(app) as client:
        response = await client.get(f"/tasks/{task_id}/events")
        assert response.status_code == 200
        assert "event: task.snapshot" in response.text
        assert '"result":{"answer":42}' in response.text
        last_id = response.text.split("id: ")[1].split("\r\n")[0]
        again = await client.get(f"/tasks/{task_id}/events", headers={"Last-Event-ID": last_id})
        assert again.status_code == 204
        earlier = await client.get(
            f"/tasks/{task_id}/events", headers={"Last-Event-ID": f"{worker.log_epoch}-1"}
        )
    assert earlier.status_code == 200
    assert [line for line in earlier.text.splitlines() if line.startswith("event:")] == [
        "event: cursor",  # where it resumes from
        "event: task.started",
        "event: task.completed",
    ]


async def test_heartbeat_comments_keep_an_idle_stream_alive() -> None:
    async def quiet() -> AsyncIterator[bytes]:
        yield b"retry: 3000\r\n\r\n"
        await asyncio.sleep(0.35)

    async def endpoint(_request: Request) -> Response:
        return event_stream_response(quiet(), heartbeat=0.1)

    app = Starlette(routes=[Route("/quiet", endpoint)])
    async with in_process(app) as client:
        response = await client.get("/quiet")
    assert response.text.count(": ping") >= 2


async def test_snapshot_caps_a_big_result(app: Starlette, worker: AsyncTaskWorker) -> None:
    task_id = await worker.add_task("big", 50_000)
    await worker.wait_for_tasks([task_id], timeout=5)
    async with in_process(app) as client:
        response = await client.get(f"/tasks/{task_id}/events")
    data = json.loads(response.text.split("data: ")[1].split("\r\n")[0])
    assert data["result_truncated"] is True and len(data["result"]) == MAX_FIELD_CHARS


async def test_finished_task_with_pruned_events_still_ends_for_good(
    app: Starlette, worker: AsyncTaskWorker
) -> None:
    task_id = await worker.add_task("echo", 1)
    await worker.wait_for_tasks([task_id], timeout=5)
    other = await worker.add_task("echo", 2)
    await worker.wait_for_tasks([other], timeout=5)
    await prune_events(worker.writer, Retention(max_age=None, max_count=1))
    async with in_process(app) as client:
        response = await client.get(f"/tasks/{task_id}/events")
        snapshot_id = response.text.split("id: ")[1].split("\r\n")[0]
        # the log's newest id, though this task has none left
        assert snapshot_id == f"{worker.log_epoch}-6"
        again = await client.get(
            f"/tasks/{task_id}/events", headers={"Last-Event-ID": f"{worker.log_epoch}-6"}
        )
    assert again.status_code == 204
