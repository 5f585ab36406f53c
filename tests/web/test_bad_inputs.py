"""No input yields a 500 or a half-written row: a table of bad requests, each answered
with problem+json and the queue left empty."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem, task_count

OK = {"task_type": "demo.echo"}
JSON = {"content-type": "application/json"}

BAD_BODIES: list[tuple[str, Any, int]] = [
    ("array body", [1, 2], 422),
    ("string body", "demo.echo", 422),
    ("missing task_type", {"args": []}, 422),
    ("task_type not a string", {"task_type": 3}, 422),
    ("empty task_type", {"task_type": ""}, 422),
    ("unknown task_type", {"task_type": "nope"}, 422),
    ("args not a list", {**OK, "args": {"a": 1}}, 422),
    ("kwargs not an object", {**OK, "kwargs": [1]}, 422),
    ("kwargs and params", {**OK, "kwargs": {}, "params": {}}, 422),
    ("priority as text", {**OK, "priority": "1"}, 422),
    ("priority as bool", {**OK, "priority": True}, 422),
    ("priority too big", {**OK, "priority": 2**40}, 422),
    ("priority fractional", {**OK, "priority": 1.5}, 422),
    ("timeout zero", {**OK, "timeout": 0}, 422),
    ("timeout negative", {**OK, "timeout": -1}, 422),
    ("timeout enormous", {**OK, "timeout": 1e300}, 422),
    ("delay negative", {**OK, "delay": -1}, 422),
    ("delay and run_at", {**OK, "delay": 1, "run_at": "2030-01-01T00:00:00Z"}, 422),
    ("run_at not a date", {**OK, "run_at": "tomorrow"}, 422),
    ("run_at without offset", {**OK, "run_at": "2030-01-01T00:00:00"}, 422),
    ("max_attempts zero", {**OK, "max_attempts": 0}, 422),
    ("max_attempts huge", {**OK, "max_attempts": 10**6}, 422),
    ("use_cache as text", {**OK, "use_cache": "yes"}, 422),
    ("cache_ttl zero", {**OK, "cache_ttl": 0}, 422),
    ("unknown field", {**OK, "colour": "red"}, 422),
    ("empty task_id", {**OK, "task_id": ""}, 422),
    ("long task_id", {**OK, "task_id": "x" * 65}, 422),
    ("metadata a list", {**OK, "metadata": [1]}, 422),
    ("argument too big for msgpack", {**OK, "args": [2**70]}, 422),
    ("arguments do not fit", {"task_type": "demo.add", "args": [1, 2, 3]}, 422),
    ("missing argument", {"task_type": "demo.add", "kwargs": {"a": 1}}, 422),
    (
        "progress_callback given",
        {"task_type": "demo.sleep", "kwargs": {"progress_callback": 1}},
        422,
    ),
]

BAD_RAW: list[tuple[str, bytes, int]] = [
    ("empty body", b"", 400),
    ("not JSON", b"{task_type: demo.echo}", 400),
    ("truncated", b'{"task_type": "demo.echo"', 400),
    ("NaN", b'{"task_type": "demo.echo", "args": [NaN]}', 400),
    ("Infinity", b'{"task_type": "demo.echo", "args": [-Infinity]}', 400),
    ("float overflow", b'{"task_type": "demo.echo", "args": [1e400]}', 400),
    ("lone surrogate", b'{"task_type": "demo.echo", "args": ["\\ud800"]}', 400),
    ("surrogate task_type", b'{"task_type": "\\udfff"}', 400),
    ("invalid UTF-8", b'{"task_type": "demo.echo", "args": ["\xff\xfe"]}', 400),
    ("deep nesting", b'{"task_type": "demo.echo", "args": ' + b"[" * 100_000, 400),
    ("huge integer text", b'{"task_type": "demo.echo", "args": [' + b"9" * 5000 + b"]}", 400),
]


@pytest.mark.parametrize(("case", "body", "status"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_bad_bodies(client: httpx.AsyncClient, case: str, body: Any, status: int) -> None:
    assert_problem(await client.post("/tasks", json=body), status)
    assert await task_count(client) == 0


@pytest.mark.parametrize(("case", "raw", "status"), BAD_RAW, ids=[c[0] for c in BAD_RAW])
async def test_bad_raw_bodies(
    client: httpx.AsyncClient, case: str, raw: bytes, status: int
) -> None:
    assert_problem(await client.post("/tasks", content=raw, headers=JSON), status)
    assert await task_count(client) == 0


async def test_every_bad_field_is_listed(client: httpx.AsyncClient) -> None:
    body = {"task_type": 1, "priority": "x", "timeout": -1, "extra": 1}
    problem = assert_problem(await client.post("/tasks", json=body), 422)
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"task_type", "priority", "timeout", "extra"}
    assert all(e["message"] for e in problem["errors"])


async def test_idempotency_key_too_long(client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", json=OK, headers={"Idempotency-Key": "k" * 300})
    assert_problem(response, 422)
    assert await task_count(client) == 0


async def test_other_media_types_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", content=b"{}", headers={"content-type": "text/plain"})
    assert_problem(response, 415)


async def test_oversized_body_with_content_length(make_client: ClientFactory) -> None:
    async with make_client(max_body_bytes=2048) as client:
        body = {**OK, "args": ["x" * 4096]}
        problem = assert_problem(await client.post("/tasks", json=body), 413)
        assert problem["limit"] == 2048
        assert await task_count(client) == 0


async def test_oversized_chunked_body_is_not_read_whole(make_client: ClientFactory) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"task_type": "demo.echo", "args": ["'
        while sent < 100 * 1024 * 1024:
            sent += 1024
            yield b"x" * 1024

    async with make_client(max_body_bytes=4096) as client:
        response = await client.post("/tasks", content=endless(), headers=JSON)
        assert "content-length" not in response.request.headers
        assert_problem(response, 413)
    assert sent < 16 * 1024


async def test_garbage_path_ids_are_404(client: httpx.AsyncClient) -> None:
    for task_id in ("%00", "%ED%A0%80", "x" * 2000, "..%2F..%2Fetc"):
        assert_problem(await client.get(f"/tasks/{task_id}"), 404)
