"""SSEClient against a real server: typed events, resume across a server restart without
gap or duplicate, backoff with a retry limit, 204 and 4xx handling, aclose."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.events.client import RetriesExhaustedError, SSEClient, SSEEvent, StreamRejectedError
from app.events.manager import EventManager
from app.web.streams import StreamLimits
from app.worker.core import AsyncTaskWorker
from tests.events.conftest import Gates, Server, build_app, running_server
from tests.events.sse_reader import open_stream
from tests.events.test_log import log, rec
from tests.waiting import until


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
    assert [e.id for e in got] == [1, 2, 3] and client.last_event_id == f"{worker.log_epoch}-3"
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


async def test_a_quiet_stream_ended_cleanly_is_not_a_failure(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    """A proxy (or the server's own stream lifetime) closing a quiet stream is routine: the
    client reconnects without counting it against max_retries."""
    app = build_app(worker, manager, StreamLimits(lifetime=1.2))
    async with (
        running_server(app, manager) as server,
        SSEClient(
            server.url + "/events", params={"group": "quiet"}, max_retries=1, reconnect_delay=0.05
        ) as client,
    ):
        reader = asyncio.create_task(take(client, 1, timeout=20))
        while client.connects < 4:
            assert not reader.done(), reader.exception()
            await asyncio.sleep(0.05)
        await log(worker, rec("at-last", group="quiet"))
        got = await reader
    assert got[0].data["task_id"] == "at-last"


async def test_retry_after_of_a_refused_stream_is_honoured(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    app = build_app(worker, manager, StreamLimits(per_client=1, retry_after=2))
    async with running_server(app, manager) as server, httpx.AsyncClient(timeout=10) as other:
        holder = open_stream(other, server.url + "/events")
        await holder.__aenter__()  # the only stream this address may have
        client = SSEClient(server.url + "/events", reconnect_delay=0.01, max_retries=50)
        reader = asyncio.create_task(take(client, 1, timeout=20))
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(0.3)
        await holder.__aexit__(None, None, None)  # the slot is free long before Retry-After
        await until(lambda: client.last_event_id is not None, 20)  # its opening cursor
        waited = asyncio.get_running_loop().time() - started
        await log(worker, rec("x"))
        await reader
        await client.aclose()
    assert waited >= 1.9, waited


async def test_a_server_retry_of_0_does_not_turn_backoff_off() -> None:
    """A broken server that says `retry: 0` and hangs up at once gets a few attempts a
    second, not a tight loop."""
    requests: list[float] = []

    async def hang_up(request: Request) -> Response:
        requests.append(asyncio.get_running_loop().time())
        return Response("retry: 0\n\n", media_type="text/event-stream")

    app = Starlette(routes=[Route("/events", hang_up)])
    async with running_server(app, EventManager()) as server:
        client = SSEClient(server.url + "/events", max_retries=None)
        reader = asyncio.create_task(take(client, 1, timeout=30))
        await asyncio.sleep(1.5)
        await client.aclose()
        assert await reader == []
    assert 1 <= len(requests) <= 5, len(requests)
