"""Session cookies: strict parsing, Secure and __Host- off loopback or over https (also
behind a trusted proxy), and revocation that survives a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem

TOKEN = "sessions-test-token-0123456789abcdef"
PLAIN_NAME = "litetask_session"
SECURE_NAME = "__Host-litetask_session"
JSON = {"content-type": b"application/json"}


@pytest.fixture
async def secured(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(api_token=TOKEN) as client:
        yield client


async def login(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    response = await client.post("/auth/session", json={"token": TOKEN}, headers=headers)
    assert response.status_code == 200, response.text
    return response


def cookie_value(response: httpx.Response) -> str:
    """The session cookie's value, read from the Set-Cookie header as a browser reads it."""
    name, _, rest = response.headers["set-cookie"].partition("=")
    assert name in (PLAIN_NAME, SECURE_NAME)
    return rest.split(";", 1)[0]


def with_cookie(value: str, name: str = PLAIN_NAME) -> dict[str, bytes]:
    return {"cookie": f"{name}={value}".encode()}


MALFORMED: list[bytes] = [
    "١٢٣.nonce.signature".encode(),  # Arabic-Indic digits: str.isdigit() says yes
    b"\xb2\xb3.nonce.signature",  # superscript two, three (latin-1): isdigit(), not int()
    b"9" * 5000 + b".nonce.signature",  # more digits than int() converts
    b"1." + b"9" * 5000 + b".nonce.signature",
    b"",
    b".",
    b"...",
    b"1..",
    b"..x",
    b"garbage",
    b"1.2.3",
    b"a.b.c.d.e.f",
    b"\xff\xfe.\x00.x",
    b"9" * 20 + b".AAAA." + b"A" * 43,
]


@pytest.mark.parametrize("raw", MALFORMED, ids=range(len(MALFORMED)))
async def test_malformed_cookies_are_401_never_500(secured: httpx.AsyncClient, raw: bytes) -> None:
    response = await secured.get("/tasks", headers={"cookie": PLAIN_NAME.encode() + b"=" + raw})
    assert_problem(response, 401)


async def test_a_tampered_real_cookie_is_401(secured: httpx.AsyncClient) -> None:
    value = cookie_value(await login(secured))
    secured.cookies.clear()
    parts = value.split(".")
    for i in range(len(parts)):
        for replacement in ("9" * 5000, "١٢٣", "", "07"):
            forged = ".".join([*parts[:i], replacement, *parts[i + 1 :]])
            assert_problem(await secured.get("/tasks", headers=with_cookie(forged)), 401)
    assert (await secured.get("/tasks", headers=with_cookie(value))).status_code == 200


def attributes(response: httpx.Response) -> set[str]:
    header = response.headers["set-cookie"]
    return {part.strip().split("=", 1)[0].lower() for part in header.split(";")[1:]}


async def test_plain_http_on_loopback_gets_a_plain_cookie(secured: httpx.AsyncClient) -> None:
    response = await login(secured)
    assert response.headers["set-cookie"].startswith(PLAIN_NAME + "=")
    assert "secure" not in attributes(response)
    assert {"httponly", "samesite", "path"} <= attributes(response)


async def test_https_gets_a_secure_host_prefixed_cookie(make_client: ClientFactory) -> None:
    async with make_client(base_url="https://localhost", api_token=TOKEN) as client:
        response = await login(client)
        assert response.headers["set-cookie"].startswith(SECURE_NAME + "=")
        assert {"secure", "httponly", "path"} <= attributes(response)
        assert "domain" not in attributes(response)
        assert "Path=/;" in response.headers["set-cookie"] + ";"
        assert (await client.get("/tasks")).status_code == 200  # the client sends it back
        # The plain name is not read where the cookie must be Secure.
        client.cookies.clear()
        plain = with_cookie(cookie_value(response), PLAIN_NAME)
        assert_problem(await client.get("/tasks", headers=plain), 401)


async def test_off_loopback_the_cookie_is_secure_even_over_http(
    make_client: ClientFactory,
) -> None:
    async with make_client(host="0.0.0.0", api_token=TOKEN) as client:
        response = await login(client)
        assert response.headers["set-cookie"].startswith(SECURE_NAME + "=")
        assert "secure" in attributes(response)


@pytest.mark.parametrize("trusted", [("127.0.0.1",), ("10.0.0.0/8", "127.0.0.0/8"), ("*",)])
async def test_a_trusted_proxy_says_https(
    make_client: ClientFactory, trusted: tuple[str, ...]
) -> None:
    """The test client connects from 127.0.0.1: trusted here, so its X-Forwarded-Proto counts."""
    async with make_client(api_token=TOKEN, trusted_proxies=trusted) as client:
        response = await login(client, **{"x-forwarded-proto": "https"})
        assert response.headers["set-cookie"].startswith(SECURE_NAME + "=")
        assert "secure" in attributes(response)


async def test_forwarded_headers_from_others_are_ignored(make_client: ClientFactory) -> None:
    async with make_client(api_token=TOKEN, trusted_proxies=("10.0.0.0/8",)) as client:
        response = await login(client, **{"x-forwarded-proto": "https"})
        assert "secure" not in attributes(response)
    async with make_client(api_token=TOKEN) as client:  # no trusted proxy at all (default)
        response = await login(client, **{"x-forwarded-proto": "https"})
        assert "secure" not in attributes(response)


async def test_delete_ends_every_session(secured: httpx.AsyncClient) -> None:
    first = cookie_value(await login(secured))
    secured.cookies.clear()
    second = cookie_value(await login(secured))
    secured.cookies.clear()
    for value in (first, second):
        assert (await secured.get("/tasks", headers=with_cookie(value))).status_code == 200
    ended = await secured.delete("/auth/session", headers={**with_cookie(first), **JSON})
    assert ended.status_code == 204
    for value in (first, second):
        assert_problem(await secured.get("/tasks", headers=with_cookie(value)), 401)
    fresh = cookie_value(await login(secured))
    secured.cookies.clear()
    assert (await secured.get("/tasks", headers=with_cookie(fresh))).status_code == 200


async def test_ending_sessions_needs_a_session_or_the_token(secured: httpx.AsyncClient) -> None:
    value = cookie_value(await login(secured))
    secured.cookies.clear()
    assert_problem(await secured.delete("/auth/session", headers=JSON), 401)
    assert (await secured.get("/tasks", headers=with_cookie(value))).status_code == 200
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert (await secured.delete("/auth/session", headers=bearer)).status_code == 204
    assert_problem(await secured.get("/tasks", headers=with_cookie(value)), 401)


async def test_revocation_survives_a_restart(make_client: ClientFactory) -> None:
    async with make_client(api_token=TOKEN) as client:
        value = cookie_value(await login(client))
    async with make_client(api_token=TOKEN) as client:
        # A restart alone ends nothing...
        assert (await client.get("/tasks", headers=with_cookie(value))).status_code == 200
        ended = await client.delete("/auth/session", headers={**with_cookie(value), **JSON})
        assert ended.status_code == 204
    async with make_client(api_token=TOKEN) as client:
        # ...but an ended session stays ended on the same database.
        assert_problem(await client.get("/tasks", headers=with_cookie(value)), 401)
        fresh = cookie_value(await login(client))
        client.cookies.clear()
        assert (await client.get("/tasks", headers=with_cookie(fresh))).status_code == 200


async def test_a_new_token_ends_every_session(make_client: ClientFactory) -> None:
    async with make_client(api_token=TOKEN) as client:
        value = cookie_value(await login(client))
    async with make_client(api_token=TOKEN[::-1]) as client:
        assert_problem(await client.get("/tasks", headers=with_cookie(value)), 401)
