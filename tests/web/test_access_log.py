"""The access log: off by default; on, one record per request with its method, path, status,
duration and client, and never a header or the query string."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import ClientFactory

TOKEN = "access-log-token-" + "x" * 20


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "litetask.access"]


async def test_no_access_log_unless_asked(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with make_client() as client:
        assert (await client.get("/tasks")).status_code == 200
    assert access_records(caplog) == []


async def test_each_request_is_one_record_without_secrets(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with make_client(api_token=TOKEN, access_log=True) as client:
        headers = {"Authorization": f"Bearer {TOKEN}", "Cookie": "litetask_session=COOKIE"}
        assert (await client.get("/tasks?limit=5&token=QUERY", headers=headers)).is_error
        assert (await client.get("/tasks/nope")).status_code == 401
        assert (await client.get("/health/live")).status_code == 200
    records = access_records(caplog)
    logged = [vars(r) for r in records]
    fields = [(f["method"], f["path"], f["status"], f["client"]) for f in logged]
    assert fields == [
        ("GET", "/tasks", 422, "127.0.0.1"),
        ("GET", "/tasks/nope", 401, "127.0.0.1"),
        ("GET", "/health/live", 200, "127.0.0.1"),
    ]
    assert all(0 <= f["duration"] < 5 for f in logged)
    assert records[0].getMessage().startswith("GET /tasks 422 ")
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in records)
    for secret in (TOKEN, "COOKIE", "QUERY"):
        assert secret not in text
