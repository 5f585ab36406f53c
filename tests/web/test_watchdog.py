"""A task that blocks the event loop is noticed: the log shows where the loop is stuck, and
readiness turns 503 for a while after."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.web.helpers import submit, wait_done
from tests.web.test_metrics import parse, value

MODULES = ("app.demo", "tests.web.blocking_tasks")


async def test_a_blocked_loop_is_logged_with_its_stack_and_fails_readiness(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.watchdog")
    async with make_client(task_modules=MODULES, loop_lag_threshold=0.2) as client:
        assert (await client.get("/health")).status_code == 200
        task = await submit(client, "test.block_loop", args=[1.0])
        assert (await wait_done(client, task["id"]))["status"] == "completed"

        response = await client.get("/health")
        assert response.status_code == 503
        (problem,) = response.json()["problems"]
        assert "event loop was blocked" in problem

    stuck = [r.getMessage() for r in caplog.records if "has not answered" in r.getMessage()]
    assert len(stuck) == 1, "one log entry per episode"
    assert "blocking_tasks.py" in stuck[0] and "time.sleep(seconds)" in stuck[0]


async def test_a_quiet_loop_stays_ready(make_client: ClientFactory) -> None:
    async with make_client(loop_lag_threshold=0.2) as client:
        task = await submit(client, "demo.sleep", kwargs={"seconds": 0.5, "steps": 5})
        assert (await wait_done(client, task["id"]))["status"] == "completed"
        assert (await client.get("/health")).status_code == 200


async def test_the_watchdog_can_be_turned_off(make_client: ClientFactory) -> None:
    async with make_client(task_modules=MODULES, loop_lag_threshold=0) as client:
        task = await submit(client, "test.block_loop", args=[0.5])
        await wait_done(client, task["id"])
        assert (await client.get("/health")).status_code == 200


async def test_the_metrics_show_the_loop_lag_and_each_blocked_episode(
    make_client: ClientFactory,
) -> None:
    async with make_client(task_modules=MODULES, loop_lag_threshold=0.5) as client:
        quiet = parse((await client.get("/metrics")).text)
        assert value(quiet, "litetask_event_loop_blocked_total") == 0
        busy = await submit(client, "test.busy_loop", args=[6.0, 0.15])
        # Started (each poll takes several of the busy loop's turns, so one may read the
        # task claimed and the next already running for a while): lag is sampled after.
        await wait_started(client, busy["id"])
        lags = []
        for _ in range(5):  # the loop waits up to 0.15 s at a time: pings see it
            samples = parse((await client.get("/metrics")).text)
            lags.append(value(samples, "litetask_event_loop_lag_seconds"))
        assert max(lags) >= 0.02, lags
        await wait_done(client, busy["id"], timeout=30)
        for seconds in (1.0, 1.0):  # two episodes over the threshold, each counted once
            task = await submit(client, "test.block_loop", args=[seconds])
            await wait_done(client, task["id"])
            await asyncio.sleep(0.6)  # the watchdog's pings answer again between them
        blocked = parse((await client.get("/metrics")).text)
        assert value(blocked, "litetask_event_loop_blocked_total") == 2


async def wait_started(client: httpx.AsyncClient, task_id: str) -> None:
    async with asyncio.timeout(30):
        while True:
            if (await client.get(f"/tasks/{task_id}")).json()["started_at"] is not None:
                return
            await asyncio.sleep(0.01)
