"""A task that blocks the event loop is noticed: the log shows where the loop is stuck, and
readiness turns 503 for a while after."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import ClientFactory
from tests.web.helpers import submit, wait_done

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
