"""The task API over HTTP: options stay apart from kwargs in the body, plain `def` tasks,
the context, and Retry/Abort in a task's attempt history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ClientFactory

from .helpers import submit, wait_done

MODULES = ("tests.web.taskapi_tasks",)


@pytest.fixture
async def api(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(task_modules=MODULES, retry_backoff=0.01) as client:
        yield client


async def test_kwargs_named_like_options_reach_the_function(api: httpx.AsyncClient) -> None:
    task = await submit(
        api, "taskapi.fetch", kwargs={"url": "u", "timeout": 30}, timeout=5, priority=3
    )
    done = await wait_done(api, task["id"])
    assert done["status"] == "completed"
    assert done["result"] == {"url": "u", "timeout": 30}
    assert (done["timeout"], done["priority"], done["kwargs"]) == (
        5.0,
        3,
        {"url": "u", "timeout": 30},
    )


async def test_a_def_task_runs_beside_async_ones(api: httpx.AsyncClient) -> None:
    slow = await submit(api, "taskapi.blocking", args=[1.0])
    quick = await submit(api, "demo.add", args=[1, 2])
    done = await wait_done(api, quick["id"])
    assert done["result"] == 3
    assert (await api.get(f"/tasks/{slow['id']}")).json()["status"] in {"claimed", "running"}
    finished = await wait_done(api, slow["id"])
    assert (finished["status"], finished["result"], finished["progress"]) == ("completed", 1.0, 1.0)


async def test_thread_workers_bounds_the_def_tasks_running_at_once(
    make_client: ClientFactory,
) -> None:
    async with make_client(task_modules=MODULES, thread_workers=1) as client:
        tasks = [await submit(client, "taskapi.window", args=[0.3]) for _ in range(2)]
        first, second = sorted([(await wait_done(client, t["id"]))["result"] for t in tasks])
    assert second[0] >= first[1]  # one thread: the second began once the first ended


async def test_the_context_is_given_not_taken(api: httpx.AsyncClient) -> None:
    task = await submit(api, "taskapi.whoami")
    done = await wait_done(api, task["id"])
    assert done["result"] == {"task_id": task["id"], "attempt": 1}
    response = await api.post(
        "/tasks", json={"task_type": "taskapi.whoami", "kwargs": {"context": 1}}
    )
    assert response.status_code == 422
    assert "context" in response.json()["detail"]


async def test_snoozes_and_aborts_are_in_the_attempt_history(api: httpx.AsyncClient) -> None:
    snoozed = await submit(api, "taskapi.snooze", args=[2], max_attempts=1)
    aborted = await submit(api, "taskapi.abort", args=["no way"], max_attempts=5)
    done, failed = await asyncio.gather(
        wait_done(api, snoozed["id"]), wait_done(api, aborted["id"])
    )
    assert (done["status"], done["result"], done["snoozes"]) == ("completed", 3, 2)
    assert [(e["kind"], e["error_type"]) for e in done["errors"]] == [("snoozed", "Retry")] * 2
    assert (failed["status"], failed["attempts"], failed["error"]) == ("failed", 1, "no way")
    assert [(e["kind"], e["message"]) for e in failed["errors"]] == [("aborted", "no way")]
