"""A listing renders each row straight from the stored values (app/web/listing.py); whatever a
row holds, its entry in GET /tasks is exactly the body GET /tasks/{id} answers for it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import jsonschema_rs

from app.bounds import LATEST_US
from app.cache.serialization import packb
from app.web.openapi import document
from tests.web.helpers import submit
from tests.worker.conftest import sql

SECOND = 1_000_000
NOW = 1_764_000_000 * SECOND

# Column assignments, one row each: what litetask writes, and what another program might.
ROWS = [
    "",  # as submitted
    f"status = 'completed', started_at = {NOW + 999_999}, completed_at = {NOW + SECOND}, "
    f"progress = 1, result = x'{packb([1.5, 'é', None, True]).hex()}', from_cache = 1",
    f"status = 'completed', result = x'cb7ff8000000000000', started_at = {NOW}, "
    f"completed_at = {NOW + 2 * SECOND + 7}",  # a NaN result
    "status = 'completed', result = x'"
    + packb(
        {
            "when": datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),
            "id": uuid.UUID(int=7),
            "cost": Decimal("1.10"),
            "tags": {"a"},
            "pair": (1, 2),
            "raw": b"\x00\xff",
        }
    ).hex()
    + "'",
    f"result = x'{packb({1: 'one', None: 'none'}).hex()}'",  # keys that are not strings
    "args = x'92a2ffff01'",  # a string that is not UTF-8
    f"created_at = 0, run_at = {LATEST_US}, started_at = -1",  # the edges, and just before
    f"created_at = {NOW}.5, completed_at = 'later'",  # times that are not integers
    "progress = 'most'",
    "metadata = '[]'",
    'metadata = \'{"ratio": NaN, "deep": {"a": [1, {"b": 2}]}}\'',
    "metadata = '{\"open'",
    "kwargs = x'81a16b" + "91" * 80 + "c0'",  # nested deeper than the bounds
]


async def test_every_listed_row_is_what_reading_it_alone_gives(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    ids = [
        (
            await submit(
                client,
                "demo.echo",
                args=[i, "é"],
                kwargs={"k": [1, {"a": None}]},
                metadata={"group": "g", "nested": {"x": [1, 2]}} if i % 2 else {},
                delay=3600,
            )
        )["id"]
        for i in range(len(ROWS))
    ]
    database = f"sqlite+aiosqlite:///{tmp_path / 'litetask.db'}"
    for task_id, assignments in zip(ids, ROWS, strict=True):
        if assignments:
            sql(database, f"update tasks set {assignments} where id = '{task_id}'")
    listing = await client.get("/tasks?limit=100")
    assert listing.status_code == 200, listing.text
    listed = {task["id"]: task for task in listing.json()["tasks"]}
    assert set(listed) == set(ids)
    documented = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/Task", "components": document()["components"]}
    )
    for task_id in ids:
        alone = await client.get(f"/tasks/{task_id}")
        assert alone.status_code == 200, alone.text
        assert listed[task_id] == alone.json()
        documented.validate(listed[task_id])
    broken = {task_id for task_id, task in listed.items() if "render_errors" in task}
    assert broken == {ids[i] for i in (5, 7, 8, 9, 11, 12)}


async def test_a_page_of_plain_rows_has_every_value_and_time(client: httpx.AsyncClient) -> None:
    """The short path's output, spelled out: times to the microsecond with a Z."""
    task = await submit(client, "demo.echo", args=[1], run_at="2099-12-02T09:00:00Z")
    listed = (await client.get("/tasks")).json()["tasks"]
    assert listed == [task]
    assert task["run_at"] == "2099-12-02T09:00:00.000000Z"
    assert task["created_at"].endswith("Z") and len(task["created_at"]) == 27
