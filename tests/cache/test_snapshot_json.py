"""A task's value reads the same everywhere a client meets it: GET /tasks/{id}, its events,
and the snapshot that opens GET /tasks/{id}/events, whether the value was computed or came
from the cache. All of it strict JSON (no NaN or Infinity literals, which JSON.parse refuses).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import ClientFactory
from tests.web.helpers import submit, wait_done


def _refuse(literal: str) -> Any:
    raise ValueError(f"{literal} is not JSON")


def strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse)


def messages(stream: str) -> list[tuple[str, Any]]:
    """(event, data) of each SSE message in a finished response body, data parsed strictly."""
    found = []
    for block in stream.split("\r\n\r\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields and "data" in fields:
            found.append((fields["event"], strict_json(fields["data"])))
    return found


async def values_seen(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """The task's result as the API, the snapshot and the task.completed event give it."""
    api = strict_json((await client.get(f"/tasks/{task_id}")).text)
    [(kind, snapshot)] = messages((await client.get(f"/tasks/{task_id}/events")).text)
    assert kind == "task.snapshot"
    replay = await client.get(f"/tasks/{task_id}/events", headers={"Last-Event-ID": "0"})
    completed = [data for kind, data in messages(replay.text) if kind == "task.completed"]
    return {
        "api": api["result"],
        "snapshot": snapshot["result"],
        "event": completed[0]["result"],
        "from_cache": api["from_cache"],
    }


async def test_a_result_reads_the_same_in_the_api_the_snapshot_and_the_events(
    make_client: ClientFactory,
) -> None:
    async with make_client(task_modules=("tests.cache.service_tasks",)) as client:
        seen = []
        for _ in range(2):  # computed, then from the cache
            task = await submit(client, "cachetest.odd_values", use_cache=True)
            await wait_done(client, str(task["id"]))
            seen.append(await values_seen(client, str(task["id"])))

    assert [s["from_cache"] for s in seen] == [False, True]
    expected = seen[0]["api"]
    assert expected["inf"] is None and expected["nan"] is None and expected["set"] == [3]
    assert expected["when"] == "2026-01-02T03:04:05+00:00" and expected["bytes"] == "AP8="
    for view in seen:
        assert view["snapshot"] == view["event"] == view["api"] == expected
