"""Bulk actions over HTTP: POST /tasks/retry and POST /tasks/cancel take explicit ids or a
filter (status, task_type), at most MAX_BULK_TASKS per call, and answer what was done to
each task; every row is fenced by its state."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.bounds import MAX_BULK_TASKS
from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem, submit, wait_done, wait_status

TOKEN = "bulk-test-token-0123456789abcdefghij"


async def failed_task(client: httpx.AsyncClient, **body: Any) -> str:
    task = await submit(client, "demo.fail", max_attempts=1, **body)
    assert (await wait_done(client, task["id"]))["status"] == "failed"
    return str(task["id"])


async def bulk(client: httpx.AsyncClient, action: str, body: Any) -> dict[str, Any]:
    response = await client.post(f"/tasks/{action}", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def outcomes(answer: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {t["id"]: (t["outcome"], t["status"]) for t in answer["tasks"]}


async def test_retry_the_failed_ones_by_filter(client: httpx.AsyncClient) -> None:
    failed = [await failed_task(client) for _ in range(3)]
    done = await submit(client, "demo.add", args=[1, 2])
    await wait_done(client, done["id"])
    answer = await bulk(client, "retry", {"status": "failed"})
    assert answer["action"] == "retry"
    assert outcomes(answer) == dict.fromkeys(failed, ("retried", "pending"))
    assert answer["counts"] == {"retried": 3, "skipped": 0, "not_found": 0}
    assert answer["next_cursor"] is None
    for task_id in failed:  # queued again: each runs (and fails) a second time
        task = await wait_done(client, task_id)
        assert (task["status"], task["attempts"]) == ("failed", 2)
    assert (await client.get(f"/tasks/{done['id']}")).json()["status"] == "completed"


async def test_retry_by_task_type_takes_failed_and_cancelled(client: httpx.AsyncClient) -> None:
    failed = await failed_task(client)
    sleeper = await submit(client, "demo.sleep", delay=600)
    assert (await client.delete(f"/tasks/{sleeper['id']}")).status_code == 200
    answer = await bulk(client, "retry", {"task_type": "demo.sleep"})
    assert outcomes(answer) == {sleeper["id"]: ("retried", "pending")}
    assert (await client.get(f"/tasks/{failed}")).json()["status"] == "failed"


async def test_ids_answer_per_task(client: httpx.AsyncClient) -> None:
    failed = await failed_task(client)
    done = await submit(client, "demo.add", args=[1, 2])
    await wait_done(client, done["id"])
    answer = await bulk(client, "retry", {"ids": [failed, done["id"], "no-such-task", failed]})
    assert outcomes(answer) == {
        failed: ("retried", "pending"),
        done["id"]: ("skipped", "completed"),
        "no-such-task": ("not_found", None),
    }
    assert answer["counts"] == {"retried": 1, "skipped": 1, "not_found": 1}
    skipped = next(t for t in answer["tasks"] if t["id"] == done["id"])
    assert "completed" in skipped["detail"]


async def test_cancel_by_filter_stops_running_and_pending(client: httpx.AsyncClient) -> None:
    running = await submit(client, "demo.sleep", kwargs={"seconds": 60})
    await wait_status(client, running["id"], "running")
    waiting = [await submit(client, "demo.sleep", delay=600) for _ in range(2)]
    other = await submit(client, "demo.add", args=[1, 1], delay=600)
    answer = await bulk(client, "cancel", {"task_type": "demo.sleep"})
    expected = {t["id"]: ("cancelled", "cancelled") for t in [running, *waiting]}
    assert outcomes(answer) == expected
    assert answer["counts"] == {"cancelled": 3, "skipped": 0, "not_found": 0}
    for task in [running, *waiting]:
        assert (await wait_done(client, task["id"]))["status"] == "cancelled"
    assert (await client.get(f"/tasks/{other['id']}")).json()["status"] == "scheduled"
    again = await bulk(client, "cancel", {"ids": [running["id"]]})
    assert outcomes(again) == {running["id"]: ("skipped", "cancelled")}


async def test_a_limited_pass_goes_forward_with_its_cursor(make_client: ClientFactory) -> None:
    """Pages follow the cursor: a task retried on an early page that fails again is not
    retried again later in the same pass."""
    async with make_client(retry_backoff=0.01) as client:
        failed = [await failed_task(client) for _ in range(5)]
        first = await bulk(client, "retry", {"status": "failed", "limit": 2})
        assert list(outcomes(first)) == failed[:2]
        assert first["next_cursor"] is not None
        for task_id in failed[:2]:
            assert (await wait_done(client, task_id))["attempts"] == 2  # failed again
        seen = list(outcomes(first))
        cursor = first["next_cursor"]
        while cursor is not None:
            page = await bulk(client, "retry", {"status": "failed", "limit": 2, "cursor": cursor})
            seen += list(outcomes(page))
            cursor = page["next_cursor"]
        assert seen == failed


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("retry", {}, ""),
    ("retry", [], ""),
    ("retry", {"status": "completed"}, "status"),
    ("retry", {"status": ["failed", "running"]}, "status"),
    ("retry", {"status": "bogus"}, "status"),
    ("retry", {"status": []}, "status"),
    ("cancel", {"status": "failed"}, "status"),
    ("retry", {"ids": []}, "ids"),
    ("retry", {"ids": "abc"}, "ids"),
    ("retry", {"ids": [1, 2]}, "ids"),
    ("retry", {"ids": ["x" * 65]}, "ids"),
    ("retry", {"ids": [f"t{i}" for i in range(MAX_BULK_TASKS + 1)]}, "ids"),
    ("retry", {"ids": ["a"], "status": "failed"}, "ids"),
    ("retry", {"ids": ["a"], "limit": 5}, "ids"),
    ("retry", {"status": "failed", "limit": 0}, "limit"),
    ("retry", {"status": "failed", "limit": MAX_BULK_TASKS + 1}, "limit"),
    ("retry", {"status": "failed", "cursor": -1}, "cursor"),
    ("cancel", {"task_type": ""}, "task_type"),
    ("cancel", {"task_type": "demo.sleep", "everything": True}, "everything"),
]


@pytest.mark.parametrize(("action", "body", "field"), BAD_BODIES)
async def test_bad_filters_are_422(
    client: httpx.AsyncClient, action: str, body: Any, field: str
) -> None:
    task = await submit(client, "demo.sleep", delay=600)
    problem = assert_problem(await client.post(f"/tasks/{action}", json=body), 422)
    assert field in [e["field"] for e in problem["errors"]], problem
    assert (await client.get(f"/tasks/{task['id']}")).json()["status"] == "scheduled"


async def test_cookie_requests_need_json_from_this_origin(make_client: ClientFactory) -> None:
    async with make_client(api_token=TOKEN) as browser:
        assert (await browser.post("/auth/session", json={"token": TOKEN})).status_code == 200
        bearer = {"authorization": f"Bearer {TOKEN}"}
        task = (
            await browser.post(
                "/tasks", json={"task_type": "demo.sleep", "delay": 600}, headers=bearer
            )
        ).json()
        body = {"ids": [task["id"]]}
        evil = {"origin": "https://evil.example"}
        assert_problem(await browser.post("/tasks/cancel", json=body, headers=evil), 403)
        form = await browser.post("/tasks/cancel", data={"ids": task["id"]})
        assert_problem(form, 415)
        assert (await browser.get(f"/tasks/{task['id']}")).json()["status"] == "scheduled"
        same_origin = {"origin": "http://localhost", "sec-fetch-site": "same-origin"}
        answer = await browser.post("/tasks/cancel", json=body, headers=same_origin)
        assert answer.json()["counts"]["cancelled"] == 1


async def test_concurrent_bulk_calls_act_once_per_task(client: httpx.AsyncClient) -> None:
    """Two operators retrying the same set at once: each task is retried by one of them."""
    failed = [await failed_task(client) for _ in range(4)]
    answers = await asyncio.gather(*(bulk(client, "retry", {"ids": failed}) for _ in range(2)))
    retried = [t["id"] for a in answers for t in a["tasks"] if t["outcome"] == "retried"]
    assert sorted(retried) == sorted(failed)
