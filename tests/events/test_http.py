"""The SSE routes end to end: a real Hypercorn server, a real worker, real tasks."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx
from starlette.applications import Starlette

from app.events.log import log_bounds
from app.events.manager import EventManager
from app.events.retention import Retention, prune_events
from app.worker.core import AsyncTaskWorker
from tests.events.conftest import Gates, Server, running_server
from tests.events.sse_reader import Got, open_stream, read_all, read_until
from tests.events.test_log import log, rec

DURABLE_LIFE = ["task.queued", "task.started", "task.completed"]


def number(sse_id: str) -> int:
    """The log id in an SSE id (`<epoch>-<n>`)."""
    return int(sse_id.rpartition("-")[2])


def durable(got: list[Got]) -> list[Got]:
    return [g for g in got if g.sse_id and g.event.startswith("task.") and g.data["id"]]


async def test_headers_and_retry_hint(server: Server) -> None:
    async with (
        httpx.AsyncClient(timeout=5) as client,
        client.stream("GET", server.url + "/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["cache-control"] == "no-store"
        first = await anext(response.aiter_text())
        assert first.startswith("retry: 3000")


async def test_every_task_s_events_arrive_complete_and_in_order(
    server: Server, worker: AsyncTaskWorker
) -> None:
    count = 20
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, server.url + "/events") as source,
    ):
        reader = asyncio.create_task(
            read_until(source, lambda g: sum(x.event == "task.completed" for x in g) == count)
        )
        await asyncio.sleep(0.05)
        ids = await asyncio.gather(*(worker.add_task("echo", i) for i in range(count)))
        got = await reader
    by_task: dict[str, list[Got]] = defaultdict(list)
    for g in got:
        by_task[g.data["task_id"]].append(g)
    assert set(by_task) == set(ids)
    for events in by_task.values():
        assert [g.event for g in events] == DURABLE_LIFE
    sse_ids = [number(g.sse_id) for g in got]
    assert sse_ids == sorted(sse_ids) and len(set(sse_ids)) == len(sse_ids)
    assert all(g.sse_id == f"{worker.log_epoch}-{g.data['id']}" for g in got)


async def test_filters_by_task_type_and_group(server: Server, worker: AsyncTaskWorker) -> None:
    url = server.url + "/events?task_type=mail&group=g1"
    async with httpx.AsyncClient(timeout=10) as client, open_stream(client, url) as source:
        reader = asyncio.create_task(read_until(source, lambda g: len(g) == 2))
        await asyncio.sleep(0.05)
        await log(worker, rec("a", "mail", group="g1"), rec("b", "echo", group="g1"))
        await log(worker, rec("c", "mail", group="g2"), rec("d", "mail", group="g1"))
        got = await reader
    assert [g.data["task_id"] for g in got] == ["a", "d"]


async def test_group_filter_follows_real_tasks_live_and_on_replay(
    server: Server, worker: AsyncTaskWorker
) -> None:
    """The group comes from the task's metadata, through every event the worker writes."""
    url = server.url + "/events?group=eu"
    async with httpx.AsyncClient(timeout=10) as client, open_stream(client, url) as source:
        reader = asyncio.create_task(
            read_until(source, lambda g: sum(x.event == "task.completed" for x in g) == 2)
        )
        await asyncio.sleep(0.05)
        eu = [await worker.add_task("echo", i, metadata={"group": "eu"}) for i in range(2)]
        us = await worker.add_task("echo", 9, metadata={"group": "us"})
        await worker.wait_for_tasks([*eu, us], timeout=5)
        live = await reader
    assert {g.data["task_id"] for g in live} == set(eu)
    assert sorted(g.event for g in durable(live)) == sorted(DURABLE_LIFE * 2)
    url += "&last_event_id=0"
    async with httpx.AsyncClient(timeout=10) as client, open_stream(client, url) as source:
        replayed = await read_until(source, lambda g: len(durable(g)) == 6)
    assert {g.data["task_id"] for g in replayed} == set(eu)


async def resume(server: Server, worker: AsyncTaskWorker, url: str, **headers: str) -> list[Got]:
    """Open `url`, commit one new event, read up to it."""
    newest = (await log_bounds(worker.engines.reader))[1] or 0
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, server.url + url, headers) as source,
    ):
        reader = asyncio.create_task(read_until(source, lambda g: g[-1].data["id"] > newest))
        await asyncio.sleep(0.05)
        await log(worker, rec("new"))
        return await reader


async def test_last_event_id_replays_what_was_missed_then_goes_live(
    server: Server, worker: AsyncTaskWorker
) -> None:
    await log(worker, *(rec(f"old{i}") for i in range(5)))
    got = await resume(server, worker, "/events", **{"Last-Event-ID": f"{worker.log_epoch}-2"})
    assert [g.data["id"] for g in got] == [3, 4, 5, 6]
    assert [g.data["task_id"] for g in got] == ["old2", "old3", "old4", "new"]
    got = await resume(server, worker, f"/events?last_event_id={worker.log_epoch}-5")
    assert [g.data["id"] for g in got] == [6, 7]


async def test_a_pruned_last_event_id_gets_a_reset_then_live_events(
    server: Server, worker: AsyncTaskWorker
) -> None:
    await log(worker, *(rec(f"t{i}") for i in range(10)))
    await prune_events(worker.writer, Retention(max_age=None, max_count=3))
    epoch = worker.log_epoch
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, server.url + "/events", {"Last-Event-ID": f"{epoch}-2"}) as source,
    ):
        reader = asyncio.create_task(read_until(source, lambda g: len(g) == 2))
        await asyncio.sleep(0.05)
        await log(worker, rec("live"))
        got = await reader
    assert got[0].event == "reset" and got[0].sse_id == f"{epoch}-10"
    assert got[0].data["reason"] == "expired" and got[0].data["last_event_id"] == f"{epoch}-2"
    assert (got[1].sse_id, got[1].data["task_id"]) == (f"{epoch}-11", "live")


async def test_task_stream_sends_state_then_events_until_done(
    server: Server, worker: AsyncTaskWorker, gates: Gates
) -> None:
    task_id = await worker.add_task("steps", "s", 2)
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, f"{server.url}/tasks/{task_id}/events") as source,
    ):
        reader = asyncio.create_task(read_all(source))
        await asyncio.sleep(0.1)
        gates.gate("s:1").set()
        await asyncio.sleep(0.05)
        gates.gate("s:2").set()
        got = await reader  # the stream ends by itself after the terminal event
    assert got[0].event == "task.snapshot"
    assert got[0].data["status"] in {"pending", "running"}
    events = [g.event for g in got[1:]]
    assert events[-1] == "task.completed"
    assert [e for e in events if e == "task.progress"] == ["task.progress"] * 2
    progress = [g for g in got if g.event == "task.progress"]
    assert [g.data["progress"] for g in progress] == [0.5, 1.0]
    assert all(g.data["id"] is None for g in progress)
    logged = [g.data["id"] for g in got[1:] if g.data["id"] is not None]
    assert logged == sorted(logged) and got[0].data["id"] < logged[0]


async def test_task_stream_of_a_finished_task_is_its_snapshot(
    server: Server, worker: AsyncTaskWorker
) -> None:
    task_id = await worker.add_task("boom", "bad " * 2000)
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient(timeout=10) as client:
        async with open_stream(client, f"{server.url}/tasks/{task_id}/events") as source:
            got = await read_all(source)
        assert [g.event for g in got] == ["task.snapshot"]
        snapshot = got[0]
        assert snapshot.data["status"] == "failed" and snapshot.data["error_truncated"] is True
        last = snapshot.sse_id
        # Reconnecting after the end: 204, which tells EventSource to stop.
        response = await client.get(
            f"{server.url}/tasks/{task_id}/events", headers={"Last-Event-ID": last}
        )
        assert response.status_code == 204


async def test_task_stream_resumes_after_last_event_id(
    server: Server, worker: AsyncTaskWorker, gates: Gates
) -> None:
    task_id = await worker.add_task("held", "h")
    await asyncio.sleep(0.1)  # queued (1) and started (2) are logged
    epoch = worker.log_epoch
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_stream(
            client, f"{server.url}/tasks/{task_id}/events", {"Last-Event-ID": f"{epoch}-1"}
        ) as source,
    ):
        reader = asyncio.create_task(read_all(source))
        await asyncio.sleep(0.05)
        gates.gate("h").set()
        got = await reader
    assert [(g.sse_id, g.event) for g in got] == [
        (f"{epoch}-2", "task.started"),
        (f"{epoch}-3", "task.completed"),
    ]


async def test_server_shutdown_ends_open_streams_promptly(
    app: Starlette, manager: EventManager, worker: AsyncTaskWorker
) -> None:
    async with (
        running_server(app, manager) as server,
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, server.url + "/events") as source,
    ):
        reader = asyncio.create_task(read_all(source))
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        server.stop.set()
        await asyncio.wait_for(reader, 2)
        await asyncio.wait_for(asyncio.shield(server.task), 2)
        elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 1.0


async def test_task_stream_with_a_pruned_id_resets_then_sends_state(
    server: Server, worker: AsyncTaskWorker, gates: Gates
) -> None:
    await log(worker, *(rec(f"t{i}") for i in range(10)))
    task_id = await worker.add_task("held", "r")
    await asyncio.sleep(0.1)
    await prune_events(worker.writer, Retention(max_age=None, max_count=2))
    at_3 = f"{worker.log_epoch}-3"
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, f"{server.url}/tasks/{task_id}/events", {"Last-Event-ID": at_3}) as s,
    ):
        reader = asyncio.create_task(read_all(s))
        await asyncio.sleep(0.05)
        gates.gate("r").set()
        got = await reader
    assert [g.event for g in got] == ["reset", "task.snapshot", "task.completed"]
    assert got[1].data["status"] == "running" and got[2].data["id"] > got[1].data["id"]


async def test_resume_while_tasks_run_has_no_gap_and_no_duplicate(
    server: Server, worker: AsyncTaskWorker
) -> None:
    first = await asyncio.gather(*(worker.add_task("echo", i) for i in range(30)))
    await worker.wait_for_tasks(first, timeout=10)

    async def more() -> list[str]:
        ids = []
        for i in range(30):
            ids.append(await worker.add_task("echo", i))
            await asyncio.sleep(0.002)
        return ids

    producer = asyncio.create_task(more())  # commits while the stream replays and switches
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_stream(
            client, server.url + "/events", {"Last-Event-ID": f"{worker.log_epoch}-20"}
        ) as source,
    ):
        got = await read_until(source, lambda g: g[-1].data["id"] == 180)
    await producer
    assert [g.data["id"] for g in got] == list(range(21, 181))
