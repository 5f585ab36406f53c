"""The log's epoch: a database id carried in every SSE id (`<epoch>-<n>`), so an id from
another database (an older copy restored, a new file) gets `reset`, never a silent resume.
Last-Event-ID is parsed strictly: anything else is a 400 problem."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from starlette.applications import Starlette

from app.errors import DatabaseInUseError
from app.events.epoch import EnsureEpoch, rotate_epoch
from app.events.manager import EventManager
from app.worker.core import AsyncTaskWorker
from tests.events.conftest import Server, build_app, in_process, running_server
from tests.events.sse_reader import open_stream, read_until
from tests.events.test_log import log, rec

EPOCH = re.compile(r"^[0-9a-f]{12}$")


async def test_the_epoch_is_made_with_the_database_and_kept(database_url: str) -> None:
    async with AsyncTaskWorker(database_url) as first:
        epoch = first.log_epoch
    async with AsyncTaskWorker(database_url) as second:
        assert second.log_epoch == epoch
    assert EPOCH.match(epoch)


async def test_rotating_the_epoch_of_a_stopped_database(database_url: str) -> None:
    async with AsyncTaskWorker(database_url) as first:
        before = first.log_epoch
    after = rotate_epoch(database_url)
    async with AsyncTaskWorker(database_url) as second:
        assert second.log_epoch == after != before


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "-1",
        "1.5",
        "١٢",  # digits, but not ASCII ones
        "1-2-3",
        "zzzzzzzzzzzz-1",
        "0123456789ab-",
        "0123456789ab--1",
        "0123456789ab-01",
        "0123456789ab-1.5",
        "0123456789abc-1",
        "0123456789ab-" + "9" * 30,
    ],
)
async def test_a_malformed_last_event_id_is_a_400_problem(app: Starlette, raw: str) -> None:
    ways = [{"params": {"last_event_id": raw}}]
    if raw.isascii():  # HTTP headers are
        ways.append({"headers": {"Last-Event-ID": raw}})
    async with in_process(app) as client:
        for way in ways:
            for url in ("/events", "/tasks/some-task/events"):
                response = await client.get(url, **way)  # type: ignore[arg-type]
                assert response.status_code == 400, (raw, url, response.text[:200])
                assert response.headers["content-type"] == "application/problem+json"


async def reset_then_live(server: Server, worker: AsyncTaskWorker, last_id: str) -> list[str]:
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, server.url + "/events", {"Last-Event-ID": last_id}) as source,
    ):
        reader = asyncio.create_task(
            read_until(source, lambda g: g[-1].data.get("task_id") == "live")
        )
        await asyncio.sleep(0.1)
        await log(worker, rec("live"))
        got = await reader
    assert got[0].event == "reset" and got[0].data["reason"] == "epoch"
    assert got[0].data["last_event_id"] == last_id
    assert got[0].sse_id == f"{worker.log_epoch}-3"
    return [g.sse_id for g in got[1:]]


async def test_an_id_of_another_epoch_gets_a_reset(server: Server, worker: AsyncTaskWorker) -> None:
    await log(worker, *(rec(f"t{i}") for i in range(3)))
    other = "000000000001" if worker.log_epoch != "000000000001" else "000000000002"
    assert await reset_then_live(server, worker, f"{other}-2") == [f"{worker.log_epoch}-4"]


async def test_a_bare_number_from_before_epochs_gets_a_reset(
    server: Server, worker: AsyncTaskWorker
) -> None:
    await log(worker, *(rec(f"t{i}") for i in range(3)))
    assert await reset_then_live(server, worker, "2") == [f"{worker.log_epoch}-4"]


async def test_after_a_rotation_an_old_cursor_resets(database_url: str) -> None:
    manager = EventManager()
    async with AsyncTaskWorker(database_url, event_sink=manager.publish) as worker:
        await log(worker, *(rec(f"t{i}") for i in range(5)))
        seen = f"{worker.log_epoch}-5"
    rotate_epoch(database_url)
    manager = EventManager()
    async with (
        AsyncTaskWorker(database_url, event_sink=manager.publish) as worker,
        running_server(build_app(worker, manager), manager) as server,
        httpx.AsyncClient(timeout=10) as client,
        open_stream(client, server.url + "/events", {"Last-Event-ID": seen}) as source,
    ):
        got = await read_until(source, lambda g: len(g) >= 1, timeout=5)
    assert (got[0].event, got[0].data["reason"]) == ("reset", "epoch")


async def test_the_epoch_of_a_running_service_is_not_rotated(database_url: str) -> None:
    async with AsyncTaskWorker(database_url) as running:
        with pytest.raises(DatabaseInUseError):
            rotate_epoch(database_url)
        assert running.log_epoch == (await running.writer.run(EnsureEpoch()))
