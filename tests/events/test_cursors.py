"""Every stream says where it is: it opens with a cursor (an id-only message at the log's
newest id, with the log's epoch), and a quiet filtered stream gets a cursor now and then, so
a client that reconnects resumes from where it really was, without a spurious reset."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.config import ConfigError, Settings
from app.events.client import SSEClient, SSEEvent
from app.events.manager import EventManager
from app.events.retention import Retention, prune_events
from app.web.streams import StreamLimits
from app.worker.core import AsyncTaskWorker
from tests.events.conftest import Server, build_app, running_server
from tests.events.sse_reader import open_stream, read_until
from tests.events.test_log import log, rec
from tests.waiting import until


def position(sse_id: str) -> tuple[str, int]:
    epoch, _, number = sse_id.rpartition("-")
    return epoch, int(number)


async def test_every_stream_opens_with_a_cursor_at_the_newest_id(
    server: Server, worker: AsyncTaskWorker
) -> None:
    await log(worker, *(rec(f"t{i}") for i in range(3)))
    async with httpx.AsyncClient(timeout=10) as client:
        for url in ("/events", "/events?group=nobody"):
            async with open_stream(client, server.url + url) as source:
                got = await read_until(source, lambda g: len(g) >= 1, timeout=5, cursors=True)
            assert got[0].event == "cursor", url
            assert position(got[0].sse_id) == (worker.log_epoch, 3)
            assert got[0].data["id"] == 3 and got[0].data["epoch"] == worker.log_epoch


async def test_a_quiet_filtered_stream_gets_cursors_as_the_log_moves(
    worker: AsyncTaskWorker, manager: EventManager
) -> None:
    app = build_app(worker, manager, StreamLimits(cursor_interval=0.2))
    async with (
        running_server(app, manager) as server,
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, server.url + "/events?group=quiet") as source,
    ):
        reader = asyncio.create_task(
            read_until(
                source, lambda g: g[-1].event == "cursor" and g[-1].data["id"] == 8, cursors=True
            )
        )
        await asyncio.sleep(0.1)
        await log(worker, *(rec(f"a{i}", group="loud") for i in range(5)))
        await asyncio.sleep(0.3)
        await log(worker, *(rec(f"b{i}", group="loud") for i in range(3)))
        got = await asyncio.wait_for(reader, 10)
    assert {g.event for g in got} == {"cursor"}
    ids = [g.data["id"] for g in got]
    assert ids[0] == 0 and ids == sorted(ids) and 5 in ids


async def follow(client: SSEClient, into: list[SSEEvent]) -> None:
    async for event in client:
        into.append(event)


async def test_a_quiet_filtered_client_resumes_a_pruned_log_without_a_reset(
    worker: AsyncTaskWorker,
) -> None:
    """Its last event is long pruned, but its cursor moved on: nothing it wanted was lost,
    so it resumes with no `reset` and gets the next event of its group."""
    first = EventManager()
    worker.event_sink = first.publish
    limits = StreamLimits(cursor_interval=0.1)
    got: list[SSEEvent] = []
    async with running_server(build_app(worker, first, limits), first) as server:
        client = SSEClient(
            server.url + "/events", params={"group": "g"}, reconnect_delay=0.05, max_retries=100
        )
        reader = asyncio.create_task(follow(client, got))
        await asyncio.sleep(0.1)
        await log(worker, rec("mine", group="g"))
        await log(worker, *(rec(f"other{i}", group="h") for i in range(50)))
        await until(lambda: (client.last_event_id or "").endswith("-51"))
    await prune_events(worker.writer, Retention(max_age=None, max_count=5))
    await log(worker, rec("next", group="g"))
    second = EventManager()
    worker.event_sink = second.publish
    async with running_server(build_app(worker, second, limits), second, port=server.port):
        await until(lambda: len(got) >= 2)
    reader.cancel()
    await client.aclose()
    assert [(e.type, e.data["task_id"]) for e in got] == [
        ("task.queued", "mine"),
        ("task.queued", "next"),
    ]


def test_the_cursor_interval_is_a_setting() -> None:
    settings = Settings.from_env({"LITETASK_SSE_CURSOR_INTERVAL": "2.5"})
    assert StreamLimits.from_settings(settings).cursor_interval == 2.5
    assert StreamLimits.from_settings(Settings.from_env({})).cursor_interval == 15.0
    for bad in ("0", "-1", "7200"):
        with pytest.raises(ConfigError, match="LITETASK_SSE_CURSOR_INTERVAL"):
            Settings.from_env({"LITETASK_SSE_CURSOR_INTERVAL": bad})
