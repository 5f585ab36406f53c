"""GET /tasks filters: several statuses at once (`?status=a&status=b`), as the dashboard's
"pending" (scheduled, pending and claimed) and the CLI's repeated --status ask."""

from __future__ import annotations

import httpx

from tests.web.helpers import assert_problem, submit


async def test_status_may_be_given_several_times(client: httpx.AsyncClient) -> None:
    waiting = await submit(client, "demo.add", args=[1, 1], delay=600)
    stopped = await submit(client, "demo.add", args=[2, 2], delay=600)
    assert (await client.delete(f"/tasks/{stopped['id']}")).status_code == 200
    other = await submit(client, "demo.echo", delay=600)
    both = await client.get("/tasks", params=[("status", "scheduled"), ("status", "cancelled")])
    assert both.status_code == 200, both.text
    assert [t["id"] for t in both.json()["tasks"]] == [other["id"], stopped["id"], waiting["id"]]
    typed = await client.get(
        "/tasks",
        params=[("status", "cancelled"), ("status", "scheduled"), ("task_type", "demo.add")],
    )
    assert [t["id"] for t in typed.json()["tasks"]] == [stopped["id"], waiting["id"]]
    one = await client.get("/tasks", params={"status": "cancelled"})
    assert [t["id"] for t in one.json()["tasks"]] == [stopped["id"]]


async def test_each_status_is_checked(client: httpx.AsyncClient) -> None:
    response = await client.get("/tasks", params=[("status", "bogus"), ("status", "pending")])
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["status"]
