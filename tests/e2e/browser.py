"""Headless Chromium (playwright driving /usr/bin/chromium) for the dashboard tests: the
fixtures `browser` and `page` (import them into a test module) and a few helpers.

A module importing this skips, saying why, without /usr/bin/chromium or the playwright
package. Every wait is one of playwright's auto-waiting assertions, never a sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

try:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Locator,
        Page,
        Route,
        expect,
        sync_playwright,
    )
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip(
        "the playwright package is not installed (it is in the dev group: uv sync)",
        allow_module_level=True,
    )

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():  # pragma: no cover - depends on the environment
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 10_000
__all__ = ["Browser", "BrowserContext", "Locator", "Page", "Route", "expect"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def fresh_context(browser: Browser) -> BrowserContext:
    """A browser context (no cookies; its own connections) with the tests' default waits."""
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    return context


def watch_errors(page: Page, errors: list[str]) -> Page:
    """Errors in the page's scripts (uncaught exceptions, unhandled rejections) go to
    `errors`."""
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context with one page; errors in its scripts fail the test."""
    context = fresh_context(browser)
    errors: list[str] = []
    page = watch_errors(context.new_page(), errors)
    yield page
    context.close()
    assert errors == [], errors


def submit(url: str, body: dict[str, object], token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(url + "/tasks", json=body, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id
