"""SSEClient against a real server: typed events, resume across a server restart without
gap or duplicate, backoff with a retry limit, 204 and 4xx handling, aclose."""

from __future__ import annotations

import asyncio
import socket

import pytest

from app.events.client import RetriesExhaustedError, SSEClient, SSEEvent, StreamRejectedError
from app.events.manager import EventManager
from app.worker.core import AsyncTaskWorker
from tests.events.conftest import Gates, Server, build_app, running_server
from tests.events.test_log import log, rec


async def take(client: SSEClient, n: int, timeout: float = 10) -> list[SSEEvent]:
    async def run() -> list[SSEEvent]:
        got: list[SSEEvent] = []
        async for event in client:
            got.append(event)
            if len(got) == n:
                break
        return got

    return await asyncio.wait_for(run(), timeout)


async def test_typed_events_and_last_event_id(server: Server, worker: AsyncTaskWorker) -> None:
    async with SSEClient(server.url + "/events", params={"task_type": "echo"}) as client:
        reader = asyncio.create_task(take(client, 3))
        await asyncio.sleep(0.1)
        task_id = await worker.add_task("echo", "hi")
        got = await reader
    assert [e.type for e in got] == ["task.queued", "task.started", "task.completed"]
    assert all(e.data["task_id"] == task_id for e in got)
    assert [e.id for e in got] == [1, 2, 3] and client.last_event_id == 3
    assert client.server_retry == 3.0


async def test_resumes_across_a_server_restart_without_gap_or_duplicate(
    worker: AsyncTaskWorker,
) -> None:
    first = EventManager()
    worker.event_sink = first.publish
    async with running_server(build_app(worker, first), first) as server:
        client = SSEClient(server.url + "/events", reconnect_delay=0.05, max_retries=50)
        reader = asyncio.create_task(take(client, 12, timeout=20))
        await asyncio.sleep(0.1)
        await log(worker, *(rec(f"before{i}") for i in range(4)))
        await asyncio.sleep(0.1)
    # The server is down: these are committed while the client retries.
    await log(worker, *(rec(f"down{i}") for i in range(4)))
    second = EventManager()
    worker.event_sink = second.publish
    async with running_server(build_app(worker, second), second, port=server.port):
        await asyncio.sleep(0.2)
        await log(worker, *(rec(f"after{i}") for i in range(4)))
        got = await reader
    await client.aclose()
    assert [e.id for e in got] == list(range(1, 13))
    assert client.connects >= 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_gives_up_after_max_retries() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/events"
    async with SSEClient(url, reconnect_delay=0.01, max_delay=0.02, max_retries=3) as client:
        with pytest.raises(RetriesExhaustedError):
            await take(client, 1)


async def test_unknown_task_is_rejected_without_retrying(server: Server) -> None:
    client = SSEClient(server.url + "/tasks/nope/events", reconnect_delay=0.01)
    with pytest.raises(StreamRejectedError) as caught:
        await take(client, 1)
    assert caught.value.status_code == 404 and client.connects == 1


async def test_a_task_stream_ends_for_good_after_the_terminal_event(
    server: Server, worker: AsyncTaskWorker, gates: Gates
) -> None:
    task_id = await worker.add_task("held", "h")
    client = SSEClient(f"{server.url}/tasks/{task_id}/events")  # server hint: retry 3 s
    reader = asyncio.create_task(take(client, 100))
    await asyncio.sleep(0.1)
    gates.gate("h").set()
    # Ends promptly: the server closes after the terminal event, the client reconnects at
    # once (the stream had delivered events) and gets 204.
    got = await asyncio.wait_for(reader, 1.0)
    assert got[0].type == "task.snapshot"
    assert got[-1].type == "task.completed"
    # The first stream plus the reconnect that gets 204; on a loaded machine one more
    # reconnect may come first (its stream resumes by Last-Event-ID, nothing repeats).
    assert 2 <= client.connects <= 3
    assert len({e.id for e in got if e.id}) == len([e for e in got if e.id])


async def test_aclose_from_another_task_ends_the_iteration(server: Server) -> None:
    client = SSEClient(server.url + "/events")
    reader = asyncio.create_task(take(client, 1))
    await asyncio.sleep(0.2)
    await client.aclose()
    assert await asyncio.wait_for(reader, 2) == []


async def test_aclose_during_backoff_ends_the_iteration() -> None:
    client = SSEClient(f"http://127.0.0.1:{_closed_port()}/events", reconnect_delay=30)
    reader = asyncio.create_task(take(client, 1))
    await asyncio.sleep(0.2)
    await client.aclose()
    assert await asyncio.wait_for(reader, 2) == []


async def test_a_dropped_slow_stream_is_resumed_from_the_log(worker: AsyncTaskWorker) -> None:
    tiny = EventManager(max_queue=2)  # one commit of 6 events overflows it
    worker.event_sink = tiny.publish
    async with (
        running_server(build_app(worker, tiny), tiny) as server,
        SSEClient(server.url + "/events", reconnect_delay=0.01) as client,
    ):
        reader = asyncio.create_task(take(client, 6))
        await asyncio.sleep(0.1)
        await log(worker, *(rec(f"burst{i}") for i in range(6)))
        got = await reader
    assert [e.id for e in got] == [1, 2, 3, 4, 5, 6]
    assert tiny.dropped == 1 and client.connects == 2
