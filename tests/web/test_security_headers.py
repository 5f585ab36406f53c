"""Every response says `X-Content-Type-Options: nosniff`, whoever produced it (a route, an
error handler, the auth middleware, static files, a crash); `Strict-Transport-Security` is
sent only on requests that arrived over https."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.main import create_app
from tests.conftest import (
    ClientFactory,
    ServerProcess,
    free_loopback_port,
    lifespan,
    settings_for,
)

TOKEN = "header-test-token-" + "x" * 20
HSTS = "strict-transport-security"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/task-types", 200),
        ("GET", "/tasks", 200),
        ("GET", "/", 200),
        ("GET", "/static/dashboard.js", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/no/such/page", 404),
        ("GET", "/tasks/unknown", 404),
        ("POST", "/tasks", 422),
        ("PUT", "/tasks", 405),
    ],
)
async def test_every_response_says_nosniff(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    assert HSTS not in response.headers  # plain http


async def test_the_401_of_the_auth_middleware_says_nosniff(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, api_token=TOKEN))
    async with lifespan(app) as running, running.client() as client:
        response = await client.get("/tasks")
    assert response.status_code == 401
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_crash_says_nosniff(tmp_path: Path) -> None:
    async def boom(_request: Request) -> Response:
        raise RuntimeError("a bug in a route")

    app = create_app(settings_for(tmp_path))
    app.router.routes.append(Route("/boom", boom))
    async with lifespan(app) as running:
        transport = httpx.ASGITransport(app=running.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_https_requests_get_hsts(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))
    async with lifespan(app) as running:
        transport = httpx.ASGITransport(app=running.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
            for path in ("/health", "/no/such/page"):
                response = await client.get(path)
                assert response.headers[HSTS].startswith("max-age=31536000"), path
                assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("trusted", "sent"), [(("127.0.0.1",), True), (("10.0.0.0/8",), False)])
async def test_https_at_a_trusted_proxy_gets_hsts(
    make_client: ClientFactory, trusted: tuple[str, ...], sent: bool
) -> None:
    """Behind Fly, Caddy or nginx the request arrived over https at the proxy: HSTS is sent
    when the proxy is trusted (the test client connects from 127.0.0.1), never on the word
    of a client that is not."""
    async with make_client(trusted_proxies=trusted) as client:
        response = await client.get("/health", headers={"x-forwarded-proto": "https"})
    assert response.status_code == 200
    assert (HSTS in response.headers) is sent
    assert response.headers["x-content-type-options"] == "nosniff"


def test_event_streams_say_nosniff(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "litetask.db", free_loopback_port())
    try:
        server.wait_ready()
        with httpx.stream("GET", server.url + "/events", timeout=10) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-content-type-options"] == "nosniff"
    finally:
        server.close()
