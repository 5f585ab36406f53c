"""Bearer-token auth and the session cookie for browsers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from app.web.sessions import PLAIN_COOKIE, SessionSigner
from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem, wait_done

TOKEN = "s3cret-token-" + "x" * 20
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def secured(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(api_token=TOKEN) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tasks"),
        ("POST", "/tasks"),
        ("GET", "/tasks/x"),
        ("DELETE", "/tasks/x"),
        ("POST", "/tasks/x/retry"),
        ("GET", "/task-types"),
        ("GET", "/openapi.json"),
        ("GET", "/events"),
        ("GET", "/tasks/x/events"),
    ],
)
async def test_endpoints_need_the_token(secured: httpx.AsyncClient, method: str, path: str) -> None:
    response = await secured.request(method, path)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    wrong = await secured.request(method, path, headers={"Authorization": "Bearer nope"})
    assert_problem(wrong, 401)


async def test_the_token_opens_everything(secured: httpx.AsyncClient) -> None:
    assert (await secured.get("/tasks", headers=BEARER)).status_code == 200
    assert (await secured.get("/task-types", headers=BEARER)).status_code == 200


async def test_health_and_webhooks_are_public(secured: httpx.AsyncClient) -> None:
    assert (await secured.get("/health")).status_code == 200
    # Webhooks authenticate by signature instead: none configured here, so 404, not 401.
    assert_problem(await secured.post("/webhooks/demo.echo", content=b"{}"), 404)


async def test_session_cookie_from_json(secured: httpx.AsyncClient) -> None:
    response = await secured.post("/auth/session", json={"token": TOKEN})
    assert response.status_code == 200 and response.json()["auth_required"] is True
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    assert (await secured.get("/tasks")).status_code == 200  # the client keeps the cookie
    ended = await secured.delete("/auth/session", headers={"content-type": "application/json"})
    assert ended.status_code == 204
    assert_problem(await secured.get("/tasks"), 401)


async def test_session_cookie_from_a_form(secured: httpx.AsyncClient) -> None:
    response = await secured.post("/auth/session", data={"token": TOKEN})
    assert response.status_code == 200
    assert (await secured.get("/tasks")).status_code == 200


async def test_bad_tokens_get_no_session(secured: httpx.AsyncClient) -> None:
    assert_problem(await secured.post("/auth/session", json={"token": "wrong"}), 401)
    assert_problem(await secured.post("/auth/session", json={"nothing": 1}), 401)
    assert_problem(await secured.post("/auth/session", content=b"{", headers={}), 400)
    assert PLAIN_COOKIE not in secured.cookies


async def test_forged_and_expired_sessions_fail(secured: httpx.AsyncClient) -> None:
    now = int(time.time())
    forged = SessionSigner("another token").issue(0, now + 60)
    expired = SessionSigner(TOKEN).issue(0, now - 10)
    other_version = SessionSigner(TOKEN).issue(1, now + 60)
    for value in (forged, expired, other_version, "garbage", "1.2.3"):
        secured.cookies.set(PLAIN_COOKIE, value)
        assert_problem(await secured.get("/tasks"), 401)
    valid = SessionSigner(TOKEN).issue(0, now + 60)
    secured.cookies.set(PLAIN_COOKIE, valid)
    assert (await secured.get("/tasks")).status_code == 200


async def test_without_a_token_configured_everything_is_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/tasks")).status_code == 200
    response = await client.post("/auth/session", json={})
    assert response.json() == {"auth_required": False, "expires_at": None}


async def test_an_event_stream_opens_with_the_session_cookie(secured: httpx.AsyncClient) -> None:
    """What a dashboard's EventSource does: no header, only the cookie from /auth/session."""
    submitted = await secured.post(
        "/tasks", json={"task_type": "demo.add", "args": [1, 2]}, headers=BEARER
    )
    task_id = submitted.json()["id"]
    assert (await secured.post("/auth/session", json={"token": TOKEN})).status_code == 200
    assert (await wait_done(secured, task_id))["status"] == "completed"
    async with asyncio.timeout(10):
        async with secured.stream("GET", f"/tasks/{task_id}/events") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            body = (await stream.aread()).decode()
    assert "event: task.snapshot" in body and '"status":"completed"' in body.replace(" ", "")
