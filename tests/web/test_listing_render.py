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


# Stored values that reach the JSON encoder as Python values orjson refuses or writes its own
# way (metadata is JSON text another program may have written): field -> (SQL text, the JSON
# the body must hold for it, byte for byte, as the standard library's encoder writes it).
ENCODER_EDGES = {
    "lone surrogate": ('{"note": "a\\ud800b"}', b'"metadata":{"note":"a\\ud800b"}'),
    "surrogate key": ('{"\\udc00": 1}', b'"metadata":{"\\udc00":1}'),
    "beyond 64 bits": ('{"n": 100000000000000000000}', b'"metadata":{"n":100000000000000000000}'),
    "below -2**63": ('{"n": -9223372036854775809}', b'"metadata":{"n":-9223372036854775809}'),
    "not finite": ('{"n": NaN, "m": -Infinity}', b'"metadata":{"n":null,"m":null}'),
}


async def test_values_a_fast_encoder_refuses_list_and_read_as_before(
    client: httpx.AsyncClient, fresh_database_url: str
) -> None:
    """Lone surrogates are written as their escapes, integers past 64 bits in full, keys that
    are not strings as the standard encoder names them, non-finite numbers as null: in a
    listing, alone, and in a page where only one row holds such a value."""
    plain = (await submit(client, "demo.echo", args=[1], delay=3600))["id"]
    database = fresh_database_url
    ids = {}
    # PostgreSQL's json type refuses NaN and Infinity, so that row cannot exist there.
    edges = {
        case: edge
        for case, edge in ENCODER_EDGES.items()
        if not (is_postgres(database) and case == "not finite")
    }
    for case, (stored, _written) in edges.items():
        ids[case] = (await submit(client, "demo.echo", delay=3600))["id"]
        sql(database, f"update tasks set metadata = '{stored}' where id = '{ids[case]}'")
    keyed = (await submit(client, "demo.echo", delay=3600))["id"]
    keys = blob(database, packb({1: "one", None: "none", 2.5: "x", False: "f"}).hex())
    sql(database, f"update tasks set status = 'completed', result = {keys} where id = '{keyed}'")
    listing = await client.get("/tasks?limit=100")
    assert listing.status_code == 200, listing.text
    listed = {task["id"]: task for task in listing.json()["tasks"]}
    for case, (_stored, written) in edges.items():
        alone = await client.get(f"/tasks/{ids[case]}")
        assert alone.status_code == 200, alone.text
        assert written in alone.content, (case, alone.content)
        assert written in listing.content, case
        assert listed[ids[case]] == alone.json()
        assert "render_errors" not in alone.json()
    assert listed[ids["lone surrogate"]]["metadata"] == {"note": "a\ud800b"}
    assert listed[keyed]["result"] == {"1": "one", "null": "none", "2.5": "x", "false": "f"}
    assert listed[plain]["args"] == [1]


async def test_a_page_the_fast_encoder_takes_whole_reads_as_each_task_alone(
    client: httpx.AsyncClient, fresh_database_url: str
) -> None:
    """Decoded values that orjson writes itself (UUIDs, tuples, non-finite floats, the 64-bit
    edges, minus zero) come out as the single-task read's encoder makes them."""
    values = {
        "id": uuid.UUID(int=7),
        "pair": (1, (2, "é")),
        "nan": float("nan"),
        "inf": float("-inf"),
        "u64": 2**64 - 1,
        "i64": -(2**63),
        "zero": -0.0,
        "tiny": 5e-324,
    }
    ids = [(await submit(client, "demo.echo", delay=3600))["id"] for _ in range(2)]
    database = fresh_database_url
    result, args = (blob(database, packb(v).hex()) for v in (values, [values]))
    sql(database, f"update tasks set result = {result} where id = '{ids[0]}'")
    sql(database, f"update tasks set args = {args} where id = '{ids[1]}'")
    listing = await client.get("/tasks")
    assert listing.status_code == 200, listing.text
    listed = {task["id"]: task for task in listing.json()["tasks"]}
    expected = {
        "id": "00000000-0000-0000-0000-000000000007",
        "pair": [1, [2, "é"]],
        "nan": None,
        "inf": None,
        "u64": 2**64 - 1,
        "i64": -(2**63),
        "zero": -0.0,
        "tiny": 5e-324,
    }
    assert listed[ids[0]]["result"] == expected
    assert listed[ids[1]]["args"] == [expected]
    for task_id in ids:
        alone = await client.get(f"/tasks/{task_id}")
        assert listed[task_id] == alone.json()
        assert "render_errors" not in listed[task_id]
    assert b'"zero":-0.0' in listing.content
