"""A listing renders each row straight from the stored values (app/web/listing.py); whatever a
row holds, its entry in GET /tasks is exactly the body GET /tasks/{id} answers for it."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import jsonschema_rs

from app.bounds import LATEST_US
from app.cache.serialization import packb
from app.web.openapi import document
from tests.direct_sql import blob, is_postgres
from tests.direct_sql import run_sql as sql
from tests.web.helpers import submit

SECOND = 1_000_000
NOW = 1_764_000_000 * SECOND

# Column assignments, one row each: what litetask writes, and what another program might;
# (assignments, whether the row has a value that cannot be shown). Blobs are written as
# b'..' and booleans as true, for the backend's SQL (`spelled`).
ROWS: list[tuple[str, bool]] = [
    ("", False),  # as submitted
    (
        f"status = 'completed', started_at = {NOW + 999_999}, completed_at = {NOW + SECOND}, "
        f"progress = 1, result = b'{packb([1.5, 'é', None, True]).hex()}', from_cache = true",
        False,
    ),
    (
        f"status = 'completed', result = b'cb7ff8000000000000', started_at = {NOW}, "
        f"completed_at = {NOW + 2 * SECOND + 7}",  # a NaN result
        False,
    ),
    (
        "status = 'completed', result = b'"
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
        False,
    ),
    (f"result = b'{packb({1: 'one', None: 'none'}).hex()}'", False),  # keys not strings
    ("args = b'92a2ffff01'", True),  # a string that is not UTF-8
    (f"created_at = 0, run_at = {LATEST_US}, started_at = -1", False),  # the edges
    (f"created_at = {NOW}.5, completed_at = 'later'", True),  # times that are not integers
    ("progress = 'most'", True),
    ("metadata = '[]'", True),
    ('metadata = \'{"ratio": NaN, "deep": {"a": [1, {"b": 2}]}}\'', False),
    ("metadata = '{\"open'", True),
    ("kwargs = b'81a16b" + "91" * 80 + "c0'", True),  # nested deeper than the bounds
]
# PostgreSQL refuses, whoever writes them, text in a bigint or float column and text that
# is not JSON in a json column (NaN, a cut string): those rows cannot exist there. In their
# place, what it can hold and SQLite cannot: a NaN progress, 1e999 (valid JSON, read as
# infinity) inside metadata.
PG_ROWS: dict[int, tuple[str, bool]] = {
    7: (f"created_at = -9223372036854775808, completed_at = {NOW}", True),
    8: ("progress = 'NaN'", True),
    10: ('metadata = \'{"ratio": 1e999, "deep": {"a": [1, {"b": 2}]}}\'', False),
    11: ("progress = '-Infinity', timeout = 'Infinity'", True),
}


def spelled(assignments: str, database: str) -> str:
    """`assignments` in the backend's SQL: b'..' as a blob literal, true as a boolean."""
    if not is_postgres(database):
        assignments = assignments.replace("= true", "= 1")
    return re.sub(r"b'([0-9a-f]*)'", lambda m: blob(database, m.group(1)), assignments)


async def test_every_listed_row_is_what_reading_it_alone_gives(
    client: httpx.AsyncClient, fresh_database_url: str
) -> None:
    database = fresh_database_url
    rows = [PG_ROWS.get(i, row) if is_postgres(database) else row for i, row in enumerate(ROWS)]
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
        for i in range(len(rows))
    ]
    for task_id, (assignments, _broken) in zip(ids, rows, strict=True):
        if assignments:
            sql(
                database,
                f"update tasks set {spelled(assignments, database)} where id = '{task_id}'",
            )
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
    assert broken == {task_id for task_id, (_, odd) in zip(ids, rows, strict=True) if odd}


async def test_a_page_of_plain_rows_has_every_value_and_time(client: httpx.AsyncClient) -> None:
    """The short path's output, spelled out: times to the microsecond with a Z."""
    task = await submit(client, "demo.echo", args=[1], run_at="2099-12-02T09:00:00Z")
    listed = (await client.get("/tasks")).json()["tasks"]
    assert listed == [task]
    assert task["run_at"] == "2099-12-02T09:00:00.000000Z"
    assert task["created_at"].endswith("Z") and len(task["created_at"]) == 27
