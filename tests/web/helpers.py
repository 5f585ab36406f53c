"""Small helpers for the HTTP tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

TERMINAL = {"completed", "failed", "cancelled"}


async def submit(client: httpx.AsyncClient, task_type: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/tasks", json={"task_type": task_type, **body})
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


async def wait_done(client: httpx.AsyncClient, task_id: str, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            task: dict[str, Any] = (await client.get(f"/tasks/{task_id}")).json()
            if task["status"] in TERMINAL:
                return task
            await asyncio.sleep(0.01)


async def wait_status(
    client: httpx.AsyncClient, task_id: str, status: str, timeout: float = 10
) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if (await client.get(f"/tasks/{task_id}")).json()["status"] == status:
                return
            await asyncio.sleep(0.01)


async def task_count(client: httpx.AsyncClient, timeout: float = 60) -> int:
    """Tasks in the database, by the counts of GET /health (every status). Its database
    probe gives up after 2 s on a loaded machine and then reports no counts at all, which
    would read as 0: asked again until it has them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (queue := (await client.get("/health")).json()["queue"]):
        assert asyncio.get_running_loop().time() < deadline, "/health never reported counts"
    return sum(queue.values())


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is problem+json with `status` and a useful detail; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    assert body["type"].startswith("urn:litetask:problem:")
    return body
