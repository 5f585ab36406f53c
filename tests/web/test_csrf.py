"""Cross-site request forgery: what a browser on another site can make a logged-in (or a
token-less loopback) service do. Bearer-token callers are never affected."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem, submit, task_count

TOKEN = "csrf-test-token-0123456789abcdefghij"
BEARER = {"authorization": f"Bearer {TOKEN}"}
TASK = {"task_type": "demo.add", "args": [1, 2], "delay": 600}


@pytest.fixture
async def browser(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a session cookie, as the dashboard's browser does."""
    async with make_client(api_token=TOKEN) as client:
        response = await client.post("/auth/session", json={"token": TOKEN})
        assert response.status_code == 200
        yield client


CROSS_SITE = [
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"origin": "https://localhost"},  # another scheme is another origin
    {"origin": "http://localhost:8080"},  # another port too
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
    {"sec-fetch-site": "cross-site", "origin": "http://localhost"},
]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=[str(h) for h in CROSS_SITE])
async def test_cross_site_writes_with_the_cookie_are_403(
    browser: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    body = assert_problem(await browser.post("/tasks", json=TASK, headers=headers), 403)
    assert body["type"].endswith(":cross-site-request")
    task = (await browser.post("/tasks", json=TASK, headers=BEARER)).json()
    assert_problem(await browser.delete(f"/tasks/{task['id']}", headers=headers), 403)
    assert (await browser.get(f"/tasks/{task['id']}")).json()["status"] == "scheduled"
    assert await task_count(browser) == 1


SAME_ORIGIN = [
    {},
    {"origin": "http://localhost"},
    {"sec-fetch-site": "same-origin"},
    {"sec-fetch-site": "none"},
    {"sec-fetch-site": "same-origin", "origin": "http://localhost"},
]


@pytest.mark.parametrize("headers", SAME_ORIGIN, ids=[str(h) for h in SAME_ORIGIN])
async def test_same_origin_writes_with_the_cookie_pass(
    browser: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert (await browser.post("/tasks", json=TASK, headers=headers)).status_code == 202


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_cookie_writes_must_be_json(
    browser: httpx.AsyncClient, content_type: str | None
) -> None:
    """A form or text/plain request needs no CORS preflight, so a page anywhere could send
    one; only JSON is accepted from a cookie. Bodyless writes need the header too."""
    task = (await browser.post("/tasks", json=TASK, headers=BEARER)).json()
    headers = {"content-type": content_type} if content_type else {}
    assert_problem(await browser.delete(f"/tasks/{task['id']}", headers=headers), 415)
    retry = await browser.post(f"/tasks/{task['id']}/retry", headers=headers)
    assert_problem(retry, 415)
    assert (await browser.get(f"/tasks/{task['id']}")).json()["status"] == "scheduled"
    json_header = {"content-type": "application/json"}
    assert (await browser.delete(f"/tasks/{task['id']}", headers=json_header)).status_code == 200


async def test_bearer_requests_are_unaffected(browser: httpx.AsyncClient) -> None:
    browser.cookies.clear()
    evil = {"origin": "https://evil.example", "sec-fetch-site": "cross-site", **BEARER}
    task = await browser.post("/tasks", json=TASK, headers=evil)
    assert task.status_code == 202
    cancelled = await browser.delete(f"/tasks/{task.json()['id']}", headers=evil)
    assert cancelled.status_code == 200


@pytest.mark.parametrize("headers", CROSS_SITE[:2] + CROSS_SITE[4:6])
async def test_login_from_another_site_is_403(
    make_client: ClientFactory, headers: dict[str, str]
) -> None:
    """Login CSRF: another site must not log a browser in (with the attacker's token)."""
    async with make_client(api_token=TOKEN) as client:
        response = await client.post("/auth/session", json={"token": TOKEN}, headers=headers)
        assert_problem(response, 403)
        assert "set-cookie" not in response.headers
        form = await client.post("/auth/session", data={"token": TOKEN}, headers=headers)
        assert_problem(form, 403)


async def test_without_a_token_cross_site_writes_are_403(client: httpx.AsyncClient) -> None:
    """A token-less service on loopback trusts whoever reaches it; a web page in the local
    browser reaches it too, so its cross-site writes are refused. Tools send no Origin."""
    evil = {"origin": "https://evil.example"}
    assert_problem(await client.post("/tasks", json=TASK, headers=evil), 403)
    task = await submit(client, "demo.add", args=[1, 2], delay=600)
    assert_problem(await client.delete(f"/tasks/{task['id']}", headers=evil), 403)
    assert (await client.delete(f"/tasks/{task['id']}")).status_code == 200
