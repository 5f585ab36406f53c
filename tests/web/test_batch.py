"""POST /tasks/batch: many tasks in one request, all or none; a 422 lists each bad index."""

from __future__ import annotations

from typing import Any

import httpx

from app.bounds import MAX_BATCH_BYTES, MAX_BATCH_TASKS
from tests.conftest import ClientFactory

from .helpers import assert_problem, task_count, wait_done


async def test_the_tasks_are_queued_in_order(client: httpx.AsyncClient) -> None:
    items: list[dict[str, Any]] = [
        {"task_type": "demo.add", "args": [i, 1], "priority": i} for i in range(5)
    ]
    items.append({"task_type": "demo.echo", "kwargs": {"x": 1}, "idempotency_key": "k1"})
    response = await client.post("/tasks/batch", json={"tasks": items})
    assert response.status_code == 202, response.text
    tasks = response.json()["tasks"]
    assert [t["task_type"] for t in tasks] == ["demo.add"] * 5 + ["demo.echo"]
    assert [t["priority"] for t in tasks[:5]] == [0, 1, 2, 3, 4]
    assert tasks[5]["idempotency_key"] == "k1"
    results = [(await wait_done(client, t["id"]))["result"] for t in tasks]
    assert results == [1, 2, 3, 4, 5, {"args": [], "kwargs": {"x": 1}}]
    again = await client.post("/tasks/batch", json={"tasks": items[5:]})
    assert again.json()["tasks"][0]["id"] == tasks[5]["id"]  # the key found its original


async def test_one_bad_item_queues_nothing_and_each_bad_index_is_listed(
    client: httpx.AsyncClient,
) -> None:
    items = [
        {"task_type": "demo.add", "args": [1, 2]},
        {"task_type": "demo.add", "args": [1, 2], "priority": "high"},  # a bad field
        {"task_type": "demo.add", "args": [1]},  # does not fit the signature
        {"task_type": "no.such.type"},
        "not an object",
        {"task_type": "demo.add", "args": [1, 2], "colour": "red"},
    ]
    response = await client.post("/tasks/batch", json={"tasks": items})
    body = assert_problem(response, 422)
    assert body["invalid_indexes"] == [1, 2, 3, 4, 5]
    fields = {e["field"] for e in body["errors"]}
    assert {"tasks[1].priority", "tasks[2]", "tasks[3]", "tasks[4]", "tasks[5].colour"} <= fields
    assert await task_count(client) == 0


async def test_the_batch_size_is_bounded(client: httpx.AsyncClient) -> None:
    for tasks in ([], [{"task_type": "demo.add", "args": [1, 2]}] * (MAX_BATCH_TASKS + 1)):
        response = await client.post("/tasks/batch", json={"tasks": tasks})
        assert assert_problem(response, 422)["errors"][0]["field"] == "tasks"
    assert await task_count(client) == 0


async def test_a_taken_id_conflicts_and_queues_nothing(client: httpx.AsyncClient) -> None:
    first = await client.post(
        "/tasks", json={"task_type": "demo.add", "args": [1, 1], "task_id": "t1"}
    )
    assert first.status_code == 202
    items = [
        {"task_type": "demo.add", "args": [1, 2]},
        {"task_type": "demo.add", "args": [1, 2], "task_id": "t1"},
    ]
    response = await client.post("/tasks/batch", json={"tasks": items})
    assert_problem(response, 409)
    assert await task_count(client) == 1


async def test_the_total_size_of_a_batch_is_bounded(make_client: ClientFactory) -> None:
    blob = "x" * (3 * 2**20)  # each task well within its own bounds
    item = {"task_type": "demo.echo", "args": [blob], "delay": 3600}
    over = [item] * (MAX_BATCH_BYTES // len(blob) + 1)
    async with make_client(max_body_bytes=2 * MAX_BATCH_BYTES) as client:
        response = await client.post("/tasks/batch", json={"tasks": over})
        assert response.status_code == 422, response.text[:200]
        body = assert_problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["tasks"]
        assert await task_count(client) == 0


async def test_each_task_says_whether_it_was_created(client: httpx.AsyncClient) -> None:
    def item(key: str) -> dict[str, Any]:
        return {"task_type": "demo.add", "args": [1, 2], "idempotency_key": key, "delay": 3600}

    first = await client.post("/tasks/batch", json={"tasks": [item("k1"), item("k2")]})
    assert first.status_code == 202, first.text
    assert [t["created"] for t in first.json()["tasks"]] == [True, True]
    again = await client.post("/tasks/batch", json={"tasks": [item("k1"), item("k2")]})
    assert again.status_code == 200, again.text  # nothing new, as POST /tasks with its key
    assert [t["created"] for t in again.json()["tasks"]] == [False, False]
    assert [t["id"] for t in again.json()["tasks"]] == [t["id"] for t in first.json()["tasks"]]
    mixed = await client.post("/tasks/batch", json={"tasks": [item("k1"), item("k3")]})
    assert mixed.status_code == 202, mixed.text
    assert [t["created"] for t in mixed.json()["tasks"]] == [False, True]
    assert await task_count(client) == 3
