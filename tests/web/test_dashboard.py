"""The dashboard's page and assets: served without auth, holding no data, locked down."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.web.dashboard import STATIC_DIR
from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem


@pytest.fixture
async def secured(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(api_token="t0ken" * 8) as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/dashboard"])
async def test_the_page_is_public_and_locked_down(secured: httpx.AsyncClient, path: str) -> None:
    response = await secured.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert '<script src="/static/dashboard.js"' in response.text


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("dashboard.js", "text/javascript"),
        ("task-list.js", "text/javascript"),
        ("dashboard.css", "text/css"),
    ],
)
async def test_assets_are_public(secured: httpx.AsyncClient, name: str, media_type: str) -> None:
    response = await secured.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)


async def test_the_api_behind_it_still_needs_the_token(secured: httpx.AsyncClient) -> None:
    assert_problem(await secured.get("/tasks"), 401)
    assert_problem(await secured.get("/static/../tasks"), 401)


def test_the_assets_stay_small() -> None:
    """Plain files, no build step: well under 64 KB together (filters, task details, bulk
    actions and the sparkline included)."""
    assert sum(p.stat().st_size for p in STATIC_DIR.iterdir()) < 64_000
