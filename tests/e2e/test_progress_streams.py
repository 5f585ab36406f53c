"""Progress over a real `litetask serve`: a task calling its progress callback in a tight
loop reaches 20 open event streams a few times a second (the latest value each ~250 ms,
the final one always, before the outcome), no stream is dropped for falling behind, and a
progress event never carries a status."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from app.events.client import SSEClient, SSEEvent
from tests.conftest import ServerProcess
from tests.waiting import until
from tests.web.test_metrics import parse

Start = Callable[..., ServerProcess]
pytestmark = pytest.mark.timeout(180)
STREAMS = 20
INTERVAL = 0.25


async def follow(client: SSEClient, into: list[SSEEvent]) -> None:
    async for event in client:
        into.append(event)


def seconds_between(first: SSEEvent, last: SSEEvent) -> float:
    start, end = (datetime.fromisoformat(e.data["timestamp"]) for e in (first, last))
    return (end - start).total_seconds()


def check_one_stream(got: list[SSEEvent], task_id: str) -> None:
    mine = [e for e in got if e.data.get("task_id") == task_id]
    types = [e.type for e in mine]
    assert types[-1] == "task.completed", types[-5:]
    progress = [e for e in mine if e.type == "task.progress"]
    assert progress and progress[-1].data["progress"] == 1.0  # the final value went out
    assert types.index("task.completed") > types.index("task.progress")
    assert all(e.data["status"] is None for e in progress), "a progress event set a status"
    ran = seconds_between(mine[types.index("task.started")], mine[-1])
    assert len(progress) <= ran / INTERVAL + 3, (len(progress), ran)


async def test_a_task_reporting_in_a_loop_reaches_twenty_streams_a_few_times_a_second(
    start_server: Start, free_port: int
) -> None:
    server = await asyncio.to_thread(start_server, free_port)
    streams = [SSEClient(server.url + "/events", max_retries=0) for _ in range(STREAMS)]
    received: list[list[SSEEvent]] = [[] for _ in streams]
    readers = [asyncio.create_task(follow(c, r)) for c, r in zip(streams, received, strict=True)]
    try:
        await until(lambda: all(c.connects >= 1 for c in streams), 30)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            # thousands of callbacks a second: every step sleeps 200 µs
            body = {"task_type": "demo.sleep", "kwargs": {"seconds": 1.0, "steps": 5_000}}
            task_id = (await client.post("/tasks", json=body)).json()["id"]

            def done() -> bool:
                return all(
                    any(e.type == "task.completed" and e.data["task_id"] == task_id for e in r)
                    for r in received
                )

            await until(done, 60)
            metrics = parse((await client.get("/metrics")).text)
    finally:
        for client, reader in zip(streams, readers, strict=True):
            await client.aclose()
            reader.cancel()
    for got in received:
        check_one_stream(got, task_id)
    assert metrics[("litetask_subscribers_dropped_total", frozenset())] == 0
