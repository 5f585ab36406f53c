"""The dashboard's event stream in a real browser (headless Chromium, tests/e2e/browser.py)
against real `litetask serve` processes: it comes back after a proxy's 502, shares one
stream across tabs, resumes from its cursor after a restart, takes no status from a
progress event, and survives resets while its task list is still loading."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.events.epoch import rotate_epoch
from tests.conftest import ServerProcess
from tests.e2e.browser import (
    Browser,
    Locator,
    Page,
    Route,
    browser,
    expect,
    fresh_context,
    page,
    submit,
    watch_errors,
)
from tests.e2e.proxy import Proxy

__all__ = ["browser", "page"]  # fixtures
pytestmark = pytest.mark.timeout(180)  # restarts of real servers, under a loaded machine
Start = Callable[..., ServerProcess]
TABS = 7  # one more than a browser opens to one server over HTTP/1.1


def status_of(page: Page, task_id: str) -> Locator:
    return page.locator(f'tr[data-task-id="{task_id}"] td.status')


def wait_until(page: Page, condition: Callable[[], bool], timeout: float = 20) -> None:
    """Let the page run (its events and routes are handled meanwhile) until `condition()`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)


def test_the_dashboard_comes_back_after_a_proxy_answered_502(
    start_server: Start, free_port: int, page: Page
) -> None:
    server = start_server(free_port)
    with Proxy(free_port) as proxy:
        page.goto(proxy.url + "/")
        live = page.locator("#live")
        expect(live).to_have_text("live")
        server.signal(signal.SIGKILL)
        server.wait()
        expect(live).to_have_text("offline")  # its stream got a 502: EventSource gave up
        wait_until(page, lambda: any("/task-types" in line for line in proxy.refused))
        start_server(free_port)
        expect(live).to_have_text("live", timeout=30_000)
        task_id = submit(proxy.url, {"task_type": "demo.add", "args": [2, 3]})
        expect(status_of(page, task_id)).to_have_text("completed")


def test_seven_tabs_share_one_event_stream(
    start_server: Start, free_port: int, browser: Browser
) -> None:
    server = start_server(free_port)
    context = fresh_context(browser)
    errors: list[str] = []
    try:
        tabs = []
        for _ in range(TABS):
            tab = watch_errors(context.new_page(), errors)
            tab.goto(server.url + "/")
            expect(tab.locator("#live")).to_have_text("live")
            tabs.append(tab)
        task_id = submit(server.url, {"task_type": "demo.add", "args": [4, 5]})
        for tab in tabs:
            expect(status_of(tab, task_id)).to_have_text("completed")
            expect(tab.locator(f'tr[data-task-id="{task_id}"] td.summary')).to_have_text("9")
    finally:
        context.close()
    assert errors == []


def test_after_a_kill_9_the_dashboard_shows_what_happened_meanwhile(
    start_server: Start, free_port: int, page: Page
) -> None:
    """The page saw no event before the crash (only its stream's opening cursor): it still
    resumes from there and shows the task recovered and started again (attempt 2)."""
    server = start_server(free_port)
    task_id = submit(server.url, {"task_type": "demo.sleep", "kwargs": {"seconds": 600}})
    page.goto(server.url + "/")
    row = page.locator(f'tr[data-task-id="{task_id}"]')
    expect(row.locator("td.status")).to_have_text("running")
    expect(row.locator("td.attempts")).to_have_text("1")
    expect(page.locator("#live")).to_have_text("live")
    server.signal(signal.SIGKILL)
    server.wait()
    start_server(free_port)
    expect(row.locator("td.attempts")).to_have_text("2", timeout=30_000)
    expect(row.locator("td.status")).to_have_text("running")


RECORD_STATUSES = """(id) => {
  const cell = document.querySelector(`tr[data-task-id="${id}"] td.status`);
  window.seenStatuses = [cell.textContent];
  new MutationObserver(() => window.seenStatuses.push(cell.textContent))
    .observe(cell, {childList: true, characterData: true, subtree: true});
}"""


def test_progress_never_sets_a_status_and_nothing_follows_a_cancel(
    start_server: Start, free_port: int, page: Page
) -> None:
    server = start_server(free_port)
    page.goto(server.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    body = {"task_type": "demo.sleep", "kwargs": {"seconds": 60, "steps": 1200}}
    task_id = submit(server.url, body)
    row = page.locator(f'tr[data-task-id="{task_id}"]')
    expect(row.locator("td.status")).to_have_text("running")
    page.evaluate(RECORD_STATUSES, task_id)
    expect(row.locator("td.progress span")).not_to_have_text(" 0%")  # progress arrives
    row.get_by_role("button", name="Cancel").click()
    expect(row.locator("td.status")).to_have_text("cancelled")
    page.wait_for_timeout(1000)  # longer than the progress interval: anything late shows
    seen = page.evaluate("window.seenStatuses")
    assert set(seen) <= {"running", "cancelled"}, seen
    assert seen[seen.index("cancelled") :] == ["cancelled"] * len(seen[seen.index("cancelled") :])
    expect(row.get_by_role("button", name="Retry")).to_be_visible()


def test_resets_while_the_task_list_is_still_loading(
    start_server: Start, free_port: int, page: Page, tmp_path: Path
) -> None:
    """The service restarts twice with a new log epoch (as after two restores) while the
    page's reload of the task list, asked for by the first reset, is still pending."""
    server = start_server(free_port)
    page.goto(server.url + "/")
    live = page.locator("#live")
    expect(live).to_have_text("live")
    first = submit(server.url, {"task_type": "demo.add", "args": [1, 2]})
    expect(status_of(page, first)).to_have_text("completed")
    held: list[Route] = []
    page.route("**/tasks?limit=*", lambda route: held.append(route))
    for _ in range(2):
        server.signal(signal.SIGTERM)
        assert server.wait() == 0
        expect(live).not_to_have_text("live")
        rotate_epoch(f"sqlite+aiosqlite:///{tmp_path / 'litetask.db'}")
        server = start_server(free_port)
        expect(live).to_have_text("live", timeout=30_000)  # its first message: a reset
        wait_until(page, lambda: len(held) >= 1)
    for route in held:
        route.continue_()
    page.unroute("**/tasks?limit=*")
    later = submit(server.url, {"task_type": "demo.add", "args": [3, 4]})
    expect(status_of(page, later)).to_have_text("completed")
    expect(status_of(page, first)).to_have_text("completed")
