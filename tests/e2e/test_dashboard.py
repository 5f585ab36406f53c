"""The dashboard in a real browser: headless Chromium (playwright) against `litetask serve`.

Skips, saying why, without /usr/bin/chromium or the playwright package (tests/e2e/browser.py).
Every wait is one of playwright's auto-waiting assertions (10 s), never a sleep.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.browser import Page, browser, expect, page, submit

__all__ = ["browser", "page"]  # fixtures
TOKEN = "dashboard-test-token-" + "x" * 20
Start = Callable[..., ServerProcess]


def test_dashboard_shows_tasks_live_and_cancels(
    start_server: Start, free_port: int, page: Page
) -> None:
    """Submit demo.add through the form and watch it complete with result 5, then cancel a
    delayed task with its button, all without reloading the page."""
    server = start_server(free_port)
    page.goto(server.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate("window.notReloaded = true")

    page.select_option("#task-type", "demo.add")
    page.fill("#args", "[2, 3]")
    page.click("#submit-form button[type=submit]")
    message = page.locator("#message")
    expect(message).to_contain_text("Submitted demo.add as ")
    added = (message.text_content() or "").rsplit(" ", 1)[-1]
    expect(page.locator(f'tr[data-task-id="{added}"] td.status')).to_have_text("completed")
    expect(page.locator(f'tr[data-task-id="{added}"] td.summary')).to_have_text("5")

    delayed = submit(server.url, {"task_type": "demo.sleep", "delay": 600})
    delayed_row = page.locator(f'tr[data-task-id="{delayed}"]')
    # Scheduled for later: shown as queued, with the time it runs.
    expect(delayed_row.locator("td.status")).to_have_text("pending")
    expect(delayed_row.locator("td.status")).to_have_attribute(
        "title", re.compile("^scheduled: runs at .+")
    )
    expect(delayed_row.locator("td.summary")).to_have_text(re.compile("^runs at .+"))
    expect(page.locator("#queue li[data-status=pending] b")).to_have_text("1")
    delayed_row.get_by_role("button", name="Cancel").click()
    expect(delayed_row.locator("td.status")).to_have_text("cancelled")
    expect(delayed_row.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.locator("#queue li[data-status=cancelled] b")).to_have_text("1")
    assert page.evaluate("window.notReloaded") is True


def test_dashboard_asks_for_the_token(start_server: Start, free_port: int, page: Page) -> None:
    """With an API token the page asks for it, rejects a wrong one with the problem's detail,
    and with the right one loads the tasks through an HttpOnly session cookie only."""
    server = start_server(free_port, LITETASK_API_TOKEN=TOKEN)
    task_id = submit(server.url, {"task_type": "demo.add", "args": [2, 3]}, TOKEN)
    page.goto(server.url + "/dashboard")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()

    page.fill("#token", "wrong")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#message")).to_have_text("the token is not valid")

    page.fill("#token", TOKEN)
    page.click("#login-form button[type=submit]")
    expect(page.locator(f'tr[data-task-id="{task_id}"] td.status')).to_have_text("completed")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#login")).to_be_hidden()

    # Writes ride on the cookie too: cancel and retry are JSON requests from this origin.
    delayed = submit(server.url, {"task_type": "demo.sleep", "delay": 600}, TOKEN)
    delayed_row = page.locator(f'tr[data-task-id="{delayed}"]')
    delayed_row.get_by_role("button", name="Cancel").click()
    expect(delayed_row.locator("td.status")).to_have_text("cancelled")
    delayed_row.get_by_role("button", name="Retry").click()  # runs now, the delay spent
    expect(delayed_row.locator("td.status")).to_have_text(re.compile("pending|running|completed"))

    cookies = page.context.cookies()
    assert [c["httpOnly"] for c in cookies] == [True]
    assert TOKEN not in page.url
    assert page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)") == (
        "{}{}"
    )


def test_claimed_tasks_show_as_pending(start_server: Start, free_port: int, page: Page) -> None:
    """Tasks the pool took ahead of its one busy slot are `claimed` in the API; the page shows
    and counts them as pending (not started), and they can be cancelled."""
    server = start_server(free_port, LITETASK_MAX_WORKERS="1")
    for i in range(20):  # quick tasks first: the pool then claims ahead of its slots
        submit(server.url, {"task_type": "demo.add", "args": [i, i]})
    submit(server.url, {"task_type": "demo.sleep", "kwargs": {"seconds": 60, "steps": 1}})
    queued = [submit(server.url, {"task_type": "demo.add", "args": [i, 1]}) for i in range(4)]
    expect_claimed(server.url, queued)
    page.goto(server.url + "/")
    expect(page.locator("#queue li[data-status=pending] b")).to_have_text("4")
    expect(page.locator("#queue li[data-status=running] b")).to_have_text("1")
    rows = [page.locator(f'tr[data-task-id="{task_id}"]') for task_id in queued]
    for row in rows:
        expect(row.locator("td.status")).to_have_text("pending")
    rows[0].get_by_role("button", name="Cancel").click()
    expect(rows[0].locator("td.status")).to_have_text("cancelled")


def expect_claimed(url: str, ids: list[str]) -> None:
    """Wait (through the API) until some of `ids` are claimed."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(500):
            found = client.get("/tasks", params={"status": "claimed"}).json()["tasks"]
            if {t["id"] for t in found} & set(ids):
                return
            time.sleep(0.02)
    pytest.fail("no task was claimed ahead")
