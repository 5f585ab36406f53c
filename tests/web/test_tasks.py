"""The task resource through the real app (lifespan included) over httpx."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem, submit, task_count, wait_done, wait_status


async def test_submit_runs_and_reports_the_result(client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", json={"task_type": "demo.add", "args": [2, 3]})
    assert response.status_code == 202
    task = response.json()
    assert response.headers["location"] == f"/tasks/{task['id']}" == task["url"]
    assert task["status"] == "pending" and task["task_type"] == "demo.add"
    done = await wait_done(client, task["id"])
    assert done["status"] == "completed"
    assert done["result"] == 5
    assert done["progress"] == 1.0 and done["attempts"] == 1
    for field in ("created_at", "started_at", "completed_at"):
        assert done[field].endswith("Z")
        datetime.fromisoformat(done[field])


async def test_params_is_an_alias_of_kwargs(client: httpx.AsyncClient) -> None:
    task = await submit(client, "demo.add", params={"a": 1, "b": 1})
    assert task["kwargs"] == {"a": 1, "b": 1}
    assert (await wait_done(client, task["id"]))["result"] == 2


async def test_options_are_stored(client: httpx.AsyncClient) -> None:
    run_at = datetime.now(UTC) + timedelta(hours=1)
    task = await submit(
        client,
        "demo.echo",
        kwargs={"x": [1, "two"]},
        priority=-5,
        task_id="my-id",
        metadata={"owner": "me"},
        timeout=30,
        max_attempts=3,
        run_at=run_at.isoformat(),
        use_cache=True,
        cache_ttl=60,
    )
    assert task["id"] == "my-id"
    assert (task["priority"], task["max_attempts"], task["timeout"]) == (-5, 3, 30.0)
    assert task["metadata"] == {"owner": "me"}
    assert abs(datetime.fromisoformat(task["run_at"]) - run_at) < timedelta(seconds=1)
    assert task["status"] == "scheduled"  # until its run_at: then pending
    assert (await client.get("/tasks/my-id")).json()["status"] == "scheduled"


async def test_failures_keep_each_attempt(make_client: ClientFactory) -> None:
    async with make_client(retry_backoff=0.01) as client:
        task = await submit(client, "demo.fail", kwargs={"message": "boom"}, max_attempts=2)
        done = await wait_done(client, task["id"])
    assert done["status"] == "failed" and done["error"] == "boom"
    assert [e["attempt"] for e in done["errors"]] == [1, 2]
    assert done["errors"][0]["error_type"] == "DemoFailure"


async def test_idempotency_key_gives_the_same_task(client: httpx.AsyncClient) -> None:
    body = {"task_type": "demo.add", "args": [1, 2]}
    headers = {"Idempotency-Key": "abc"}
    first = await client.post("/tasks", json=body, headers=headers)
    again = await client.post("/tasks", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert await task_count(client) == 1


async def test_concurrent_duplicates_create_one_task(client: httpx.AsyncClient) -> None:
    body = {"task_type": "demo.add", "args": [1, 2]}
    responses = await asyncio.gather(
        *(client.post("/tasks", json=body, headers={"Idempotency-Key": "k"}) for _ in range(20))
    )
    assert sorted(r.status_code for r in responses) == [200] * 19 + [202]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await task_count(client) == 1


async def test_unknown_task_type_names_the_known_ones(client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", json={"task_type": "nope"})
    body = assert_problem(response, 422)
    assert "nope" in body["detail"] and body["task_type"] == "nope"
    assert "demo.add" in body["known_task_types"]


async def test_existing_task_id_is_a_conflict(client: httpx.AsyncClient) -> None:
    await submit(client, "demo.add", args=[1, 1], task_id="same")
    response = await client.post("/tasks", json={"task_type": "demo.echo", "task_id": "same"})
    assert_problem(response, 409)
    assert await task_count(client) == 1


async def test_get_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/tasks/nope"), 404)


async def test_cancel_then_conflict_then_retry(client: httpx.AsyncClient) -> None:
    task = await submit(client, "demo.add", args=[1, 1], delay=3600)
    assert task["status"] == "scheduled"
    cancelled = await client.delete(f"/tasks/{task['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = assert_problem(await client.delete(f"/tasks/{task['id']}"), 409)
    assert again["task_status"] == "cancelled"
    assert_problem(await client.delete("/tasks/nope"), 404)
    retried = await client.post(f"/tasks/{task['id']}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    assert (await wait_done(client, task["id"]))["result"] == 2


async def test_retry_of_a_queued_task_is_a_conflict(client: httpx.AsyncClient) -> None:
    task = await submit(client, "demo.add", args=[1, 1], delay=3600)
    problem = assert_problem(await client.post(f"/tasks/{task['id']}/retry"), 409)
    assert "is scheduled" in problem["detail"]
    assert_problem(await client.post("/tasks/nope/retry"), 404)


async def test_cancel_a_running_task(client: httpx.AsyncClient) -> None:
    task = await submit(client, "demo.sleep", kwargs={"seconds": 30, "steps": 30})
    await wait_status(client, task["id"], "running")
    response = await client.delete(f"/tasks/{task['id']}")
    assert response.json()["status"] == "cancelled"


async def test_list_pages_newest_first(client: httpx.AsyncClient) -> None:
    ids = [(await submit(client, "demo.add", args=[i, i], delay=60))["id"] for i in range(5)]
    await submit(client, "demo.echo", delay=60)
    first = (await client.get("/tasks", params={"task_type": "demo.add", "limit": 2})).json()
    assert [t["id"] for t in first["tasks"]] == ids[::-1][:2]
    rest = await client.get(
        "/tasks", params={"task_type": "demo.add", "limit": 10, "cursor": first["next_cursor"]}
    )
    assert [t["id"] for t in rest.json()["tasks"]] == ids[::-1][2:]
    assert rest.json()["next_cursor"] is None
    scheduled = (await client.get("/tasks", params={"status": "scheduled"})).json()["tasks"]
    assert len(scheduled) == 6
    assert (await client.get("/tasks", params={"status": "pending"})).json()["tasks"] == []


async def test_list_rejects_bad_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/tasks", params={"status": "nah", "limit": "0", "x": "1"})
    body = assert_problem(response, 422)
    assert {e["field"] for e in body["errors"]} == {"status", "limit", "x"}


async def test_task_types_describe_signatures(client: httpx.AsyncClient) -> None:
    types = {t["name"]: t for t in (await client.get("/task-types")).json()["task_types"]}
    assert {"demo.add", "demo.sleep", "demo.echo", "demo.fail"} <= set(types)
    sleep = types["demo.sleep"]
    assert sleep["doc"].startswith("Sleep")
    assert [p["name"] for p in sleep["parameters"]] == ["seconds", "steps"]
    assert sleep["parameters"][0] == {
        "name": "seconds",
        "kind": "positional_or_keyword",
        "required": False,
        "annotation": "float",
        "default": 1.0,
    }


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404)
    assert_problem(await client.put("/tasks"), 405)


async def test_claimed_tasks_are_listed_counted_and_cancellable(
    make_client: ClientFactory,
) -> None:
    """Quick tasks make the pool take rows ahead of its one slot: they are `claimed`, not
    `running`, in the listing and the counts, and can be cancelled like pending ones."""
    async with make_client(max_workers=1) as client:
        for i in range(20):  # quick tasks first: the pool then prefetches
            await wait_done(client, (await submit(client, "demo.add", args=[i, i]))["id"])
        blocker = await submit(client, "demo.sleep", kwargs={"seconds": 30, "steps": 1})
        await wait_status(client, blocker["id"], "running")
        queued = [(await submit(client, "demo.add", args=[i, i]))["id"] for i in range(4)]

        async def claimed() -> list[dict[str, Any]]:
            response = await client.get("/tasks", params={"status": "claimed"})
            assert response.status_code == 200
            found: list[dict[str, Any]] = response.json()["tasks"]
            return found

        async with asyncio.timeout(10):
            while True:
                if len(taken := await claimed()) >= 2:
                    break
                await asyncio.sleep(0.01)
        assert {t["id"] for t in taken} <= set(queued)
        assert all(t["attempts"] == 0 and t["started_at"] is None for t in taken)
        queue = (await client.get("/health")).json()["queue"]
        assert queue["running"] == 1 and queue["claimed"] >= 2
        cancelled = await client.delete(f"/tasks/{taken[0]['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        await client.delete(f"/tasks/{blocker['id']}")
        for task_id in queued:
            assert (await wait_done(client, task_id))["status"] in {"completed", "cancelled"}
