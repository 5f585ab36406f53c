"""No request can store what later breaks a read: every bound is checked before insert, and
a row that is broken anyway (written by another program) still renders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from app import AsyncTaskWorker, InvalidOptionError
from app.main import create_app
from app.web.openapi import document
from tests.conftest import ClientFactory, lifespan, settings_for
from tests.direct_sql import blob, is_postgres
from tests.direct_sql import run_sql as sql
from tests.web.helpers import assert_problem, submit, task_count, wait_done

OK = {"task_type": "demo.echo"}
JSON = {"content-type": "application/json"}


def nested_json(depth: int) -> str:
    """`depth` nested JSON arrays around a 0."""
    return "[" * depth + "0" + "]" * depth


async def post_raw(client: httpx.AsyncClient, raw: str | bytes) -> httpx.Response:
    return await client.post("/tasks", content=raw, headers=JSON)


async def assert_reads_work(client: httpx.AsyncClient) -> dict[str, Any]:
    """GET /tasks, every GET /tasks/{id} and /health answer 200; returns the tasks by id."""
    listing = await client.get("/tasks")
    assert listing.status_code == 200, listing.text
    tasks = {t["id"]: t for t in listing.json()["tasks"]}
    for task_id in tasks:
        assert (await client.get(f"/tasks/{task_id}")).status_code == 200
    assert (await client.get("/health")).status_code == 200
    return tasks


OUT_OF_RANGE_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-30T00:00:00.000001Z",
]


@pytest.mark.parametrize("run_at", OUT_OF_RANGE_TIMES)
async def test_run_at_out_of_range_is_422_and_stores_nothing(
    client: httpx.AsyncClient, run_at: str
) -> None:
    problem = assert_problem(await client.post("/tasks", json={**OK, "run_at": run_at}), 422)
    assert [e["field"] for e in problem["errors"]] == ["run_at"]
    assert await task_count(client) == 0
    await assert_reads_work(client)


async def test_run_at_at_the_edges_is_accepted(client: httpx.AsyncClient) -> None:
    late = await submit(client, "demo.echo", run_at="9999-12-30T00:00:00Z")
    early = await submit(client, "demo.echo", run_at="1970-01-01T14:00:00+14:00")
    assert late["run_at"] == "9999-12-30T00:00:00.000000Z"
    assert early["run_at"] == "1970-01-01T00:00:00.000000Z"
    assert (await wait_done(client, early["id"]))["status"] == "completed"
    tasks = await assert_reads_work(client)
    assert tasks[late["id"]]["status"] == "scheduled"


@pytest.mark.parametrize("depth", [65, 100, 600, 990])
async def test_bodies_nested_past_64_are_400(client: httpx.AsyncClient, depth: int) -> None:
    # The body object and the args array are two of the levels.
    body = '{"task_type": "demo.echo", "args": ' + nested_json(depth - 1) + "}"
    problem = assert_problem(await post_raw(client, body), 400)
    assert "64" in problem["detail"]
    assert await task_count(client) == 0
    await assert_reads_work(client)


async def test_a_body_nested_64_deep_runs_and_reads_back(client: httpx.AsyncClient) -> None:
    body = '{"task_type": "demo.echo", "args": ' + nested_json(63) + "}"
    response = await post_raw(client, body)
    assert response.status_code == 202, response.text
    done = await wait_done(client, response.json()["id"])
    assert done["status"] == "completed"
    assert done["result"] == {"args": json.loads(nested_json(63)), "kwargs": {}}
    await assert_reads_work(client)


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"]
)
async def test_only_utf8_bodies_are_json(client: httpx.AsyncClient, encoding: str) -> None:
    raw = json.dumps(OK).encode(encoding)
    problem = assert_problem(await post_raw(client, raw), 400)
    assert problem["type"].endswith(":malformed-json")
    assert await task_count(client) == 0


BAD_NUMBERS: list[tuple[str, dict[str, Any], str]] = [
    ("priority int64", {"priority": 2**63}, "priority"),
    ("cache_ttl enormous", {"cache_ttl": 1e300}, "cache_ttl"),
    ("delay enormous", {"delay": 1e300}, "delay"),
    ("max_attempts int64", {"max_attempts": 2**63}, "max_attempts"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_NUMBERS, ids=[c[0] for c in BAD_NUMBERS])
async def test_numbers_out_of_range_name_the_field(
    client: httpx.AsyncClient, case: str, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await client.post("/tasks", json={**OK, **body}), 422)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert await task_count(client) == 0


async def test_metadata_over_its_size_is_422(client: httpx.AsyncClient) -> None:
    body = {**OK, "metadata": {"note": "x" * (64 * 1024)}}
    problem = assert_problem(await client.post("/tasks", json=body), 422)
    assert [e["field"] for e in problem["errors"]] == ["metadata"]
    assert await task_count(client) == 0


# Two bodies of 4 MiB encoded, read, parsed and packed, plus a whole app's start and stop:
# alone well under a second, but CPU work that a starved process stretches past 60 s.
@pytest.mark.timeout(240)
async def test_arguments_over_their_size_are_422(make_client: ClientFactory) -> None:
    async with make_client(max_body_bytes=16 * 1024 * 1024) as client:
        for field, value in (("args", ["x" * (4 * 1024 * 1024)]), ("kwargs", {"a": "y" * 2**22})):
            body = {**OK, field: value}
            problem = assert_problem(await client.post("/tasks", json=body), 422)
            assert [e["field"] for e in problem["errors"]] == [field]
        assert await task_count(client) == 0


async def test_same_idempotency_key_with_another_body_is_422(client: httpx.AsyncClient) -> None:
    body = {"task_type": "demo.add", "args": [1, 2], "delay": 60}
    key = {"Idempotency-Key": "order-1"}
    first = await client.post("/tasks", json=body, headers=key)
    assert first.status_code == 202
    same = await client.post("/tasks", json={**body, "priority": None}, headers=key)
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    for other in (
        {**body, "args": [1, 3]},
        {**body, "priority": 1},
        {**body, "delay": 61},
        {"task_type": "demo.echo", "args": [1, 2], "delay": 60},
    ):
        problem = assert_problem(await client.post("/tasks", json=other, headers=key), 422)
        assert problem["type"].endswith(":idempotency-key-reused")
    assert await task_count(client) == 1


# One value per bound, as JSON carries it: (field, value).
OUT_OF_BOUNDS: list[tuple[str, Any]] = [
    ("priority", 2**31),
    ("priority", -(2**31) - 1),
    ("max_attempts", 0),
    ("max_attempts", 1001),
    ("timeout", 0),
    ("timeout", 315360001),
    ("delay", -1),
    ("cache_ttl", 1e300),
    ("task_id", "x" * 65),
    ("metadata", {"a": "x" * (64 * 1024)}),
    ("args", ["x" * (4 * 1024 * 1024)]),
    ("kwargs", {"a": "y" * 2**22}),
]
# (Depth is a bound of each value too, but over HTTP the body's own depth bound comes first.)


@pytest.mark.parametrize(("field", "value"), OUT_OF_BOUNDS, ids=[f for f, _ in OUT_OF_BOUNDS])
async def test_http_and_python_refuse_with_the_same_check(
    tmp_path: Path, field: str, value: Any
) -> None:
    """One bounds module serves both: each value out of bounds is refused over HTTP and by
    add_task with the same reason, word for word, and nothing is stored either way."""
    app = create_app(settings_for(tmp_path, max_body_bytes=16 * 1024 * 1024))
    async with lifespan(app) as running, running.client() as client:
        problem = assert_problem(await client.post("/tasks", json={**OK, field: value}), 422)
        worker: AsyncTaskWorker = running.state["worker"]
        call: dict[str, Any] = {"kwargs": value} if field == "kwargs" else {field: value}
        args = call.pop("args", [])
        with pytest.raises(InvalidOptionError) as raised:
            await worker.add_task("demo.echo", *args, **call.pop("kwargs", {}), **call)
        assert problem["errors"] == [{"field": field, "message": raised.value.reason}]
        assert raised.value.option == field
        assert await task_count(client) == 0


AT_THE_BOUNDS: list[tuple[str, Any]] = [
    ("priority", 2**31 - 1),
    ("priority", -(2**31)),
    ("max_attempts", 1),
    ("max_attempts", 1000),
    ("timeout", 315360000),
    ("delay", 315360000),
    ("cache_ttl", 315360000),
    ("task_id", "x" * 64),
    ("metadata", {"a": "x" * (63 * 1024)}),
]


@pytest.mark.parametrize(("field", "value"), AT_THE_BOUNDS, ids=[f for f, _ in AT_THE_BOUNDS])
async def test_http_and_python_take_the_same_edges(tmp_path: Path, field: str, value: Any) -> None:
    async with lifespan(create_app(settings_for(tmp_path))) as running, running.client() as client:
        answer = await client.post("/tasks", json={**OK, "delay": 3600, field: value})
        assert answer.status_code == 202, answer.text
        worker: AsyncTaskWorker = running.state["worker"]
        call = {"delay": 3600, field: value if field != "task_id" else "y" * 64}
        assert await worker.add_task("demo.echo", **call)
        assert await task_count(client) == 2


async def test_broken_rows_still_render(client: httpx.AsyncClient, fresh_database_url: str) -> None:
    """Rows litetask would never store, written into the database as another program would
    (every value here fits its column's type on either backend): every read still answers
    200, the broken fields are null and named in render_errors."""
    ids = [(await submit(client, "demo.echo", args=[i], delay=3600))["id"] for i in range(5)]
    database = fresh_database_url
    broken = {
        ids[0]: f"args = {blob(database, 'c1')}",
        ids[1]: "run_at = 1000000000000000000",
        ids[2]: f"status = 'completed', result = {blob(database, '91' * 600 + 'c0')}",
        ids[3]: f"status = 'completed', result = {blob(database, '91' * 100_000 + 'c0')}",
    }
    for task_id, assignments in broken.items():
        sql(database, f"update tasks set {assignments} where id = '{task_id}'")
    sql(
        database,
        "insert into task_attempts (task_id, attempt, error_type, message, failed_at) "
        f"values ('{ids[4]}', 1, 'Boom', 'boom', 1000000000000000000)",
    )
    tasks = await assert_reads_work(client)
    documented = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/Task", "components": document()["components"]}
    )
    expected = {ids[0]: "args", ids[1]: "run_at", ids[2]: "result", ids[3]: "result"}
    for task_id, field in expected.items():
        for task in (tasks[task_id], (await client.get(f"/tasks/{task_id}")).json()):
            documented.validate(task)
            assert task[field] is None
            assert [e["field"] for e in task["render_errors"]] == [field]
            assert task["render_errors"][0]["message"]
    attempts = (await client.get(f"/tasks/{ids[4]}")).json()
    documented.validate(attempts)
    assert attempts["errors"][0]["failed_at"] is None
    assert attempts["errors"][0]["message"] == "boom"
    assert [e["field"] for e in attempts["render_errors"]] == ["errors[0].failed_at"]
    assert "render_errors" not in (await submit(client, "demo.echo"))
    cancelled = await client.delete(f"/tasks/{ids[1]}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


# Values of the wrong type, as SQLite lets another program (or a newer litetask) store them
# in any column: case -> (assignments, the fields render_errors names).
ODD_ROWS: dict[str, tuple[str, set[str]]] = {
    "unknown status": ("status = 'paused'", {"status"}),
    "blob where text belongs": ("error = x'fffe', idempotency_key = x'01'", set()),
    "invalid UTF-8 text": (
        "task_type = cast(x'ff' as text), metadata = cast(x'7b7d' as text)",
        set(),
    ),
    "blob and text where integers belong": (
        "priority = x'01', attempts = 'many'",
        {"priority", "attempts"},
    ),
    "infinite progress, text timeout": (
        "progress = 1e999, timeout = 'soon'",
        {"progress", "timeout"},
    ),
    "metadata not an object": ("metadata = '[1, 2]'", {"metadata"}),
}
# PostgreSQL checks every value against its column's type and the database's encoding, so
# most of the rows above cannot exist there: it refuses a blob in a text column, text or a
# blob in an integer or float column, invalid UTF-8 (the database is UTF8) and text that is
# not JSON in a json column, whoever writes them. What it can hold is an unknown status
# (status is text), JSON that is not an object (a json column checks the syntax only), and
# what SQLite cannot: NaN and ±Infinity in a float column (SQLite stores NaN as NULL), a
# number too large for a float inside JSON (1e999 is valid JSON; it reads as infinity),
# and times at the ends of a bigint.
PG_ODD_ROWS: dict[str, tuple[str, set[str]]] = {
    "unknown status": ("status = 'paused'", {"status"}),
    "non-finite floats": (
        "progress = 'NaN', timeout = '-Infinity', cache_ttl = 'Infinity'",
        {"progress", "timeout"},
    ),
    "metadata not an object": ("metadata = '[1, 2]'", {"metadata"}),
    "a number past a float in metadata": ("metadata = '{\"a\": 1e999}'", set()),
    "times at the ends of a bigint": (
        "created_at = -9223372036854775808, run_at = 9223372036854775807",
        {"created_at", "run_at"},
    ),
}
# The attempt row of the case "metadata not an object", per backend: (values, what it shows).
ODD_ATTEMPT = {
    False: ("'first', x'ff', cast(x'ff' as text), x'00', 0", "\ufffd"),
    True: ("-1, 'Boom', '', NULL, -9223372036854775808", ""),
}


async def test_values_of_any_type_still_render_and_leave_a_way_out(
    client: httpx.AsyncClient, fresh_database_url: str
) -> None:
    """Every read still answers 200 in the documented shape, each value that cannot be shown
    is null and named in render_errors, and each such task can be cancelled (or is refused
    with a problem, never a 500). The odd values are those the backend can hold at all."""
    database = fresh_database_url
    postgres = is_postgres(database)
    odd_rows = PG_ODD_ROWS if postgres else ODD_ROWS
    ids = {case: (await submit(client, "demo.echo", delay=3600))["id"] for case in odd_rows}
    for case, (assignments, _fields) in odd_rows.items():
        sql(database, f"update tasks set {assignments} where id = '{ids[case]}'")
    attempt, message = ODD_ATTEMPT[postgres]
    sql(
        database,
        "insert into task_attempts (task_id, attempt, error_type, message, traceback, failed_at) "
        f"values ('{ids['metadata not an object']}', {attempt})",
    )
    tasks = await assert_reads_work(client)
    documented = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/Task", "components": document()["components"]}
    )
    for case, (_assignments, fields) in odd_rows.items():
        for task in (tasks[ids[case]], (await client.get(f"/tasks/{ids[case]}")).json()):
            documented.validate(task)
            named = {e["field"] for e in task.get("render_errors", [])}
            assert named >= fields and all(task[f] is None for f in fields), (case, task)
    if not postgres:
        assert tasks[ids["invalid UTF-8 text"]]["task_type"] == "\ufffd"
    odd_attempt = (await client.get(f"/tasks/{ids['metadata not an object']}")).json()
    if not postgres:
        assert "errors[0].attempt" in {e["field"] for e in odd_attempt["render_errors"]}
        assert odd_attempt["errors"][0]["attempt"] is None
    assert odd_attempt["errors"][0]["message"] == message
    for case, task_id in ids.items():
        cancelled = await client.delete(f"/tasks/{task_id}")
        if case == "unknown status":
            assert_problem(cancelled, 409)
        else:
            assert cancelled.status_code == 200, (case, cancelled.text)
    await assert_reads_work(client)
