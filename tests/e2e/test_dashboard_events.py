"""The dashboard's event stream in a real browser (headless Chromium, tests/e2e/browser.py)
against real `litetask serve` processes: it comes back after a proxy's 502, shares one
stream across tabs, resumes from its cursor after a restart, takes no status from a
progress event, and survives resets while its task list is still loading."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
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
from tests.web.test_metrics import parse

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
        assert sse_clients(server.url) == 1  # the server sees one stream for all of them
    finally:
        context.close()
    assert errors == []


def sse_clients(url: str) -> float:
    """The server's count of open event streams (GET /metrics)."""
    samples = parse(httpx.get(url + "/metrics", timeout=10).text)
    return samples[("litetask_sse_clients", frozenset())]


def refused_streams(page: Page) -> list[float]:
    """Answer the page's GET /events with 502 (as a proxy does while the service is down)
    until unrouted; returns the list the page clock's time of each attempt goes to."""
    attempts: list[float] = []

    def refuse(route: Route) -> None:
        attempts.append(page.evaluate("Date.now()"))
        route.fulfill(status=502, body="Bad Gateway")

    page.route(lambda url: urlsplit(url).path == "/events", refuse)
    return attempts


START = 1_800_000_000_000  # ms since the epoch: the page clock's start


def test_a_refused_stream_is_retried_with_a_capped_backoff(
    start_server: Start, free_port: int, page: Page
) -> None:
    """The stream refused over and over: after each refusal the page waits (nothing within
    0.4 s) but never longer than 15 s however many refusals came before, and the first
    attempt after the proxy heals goes live. The page's clock is playwright's and the hub
    runs in the page (no SharedWorker), so the test moves time on."""
    server = start_server(free_port)
    page.add_init_script("delete globalThis.SharedWorker;")
    page.clock.install(time=START)
    page.clock.pause_at(START + 1000)  # time moves only when the test says
    attempts = refused_streams(page)
    page.goto(server.url + "/")
    live = page.locator("#live")
    wait_until(page, lambda: len(attempts) == 1)
    expect(live).to_have_text("offline")
    for refusals in range(1, 13):  # uncapped, the 12th wait would be 2**11 s
        page.clock.run_for(400)
        page.wait_for_timeout(200)
        assert len(attempts) == refusals, "retried at once"
        page.clock.run_for(14_600)
        wait_until(page, lambda n=refusals: len(attempts) == n + 1)
    page.unroute_all()
    page.clock.run_for(15_000)
    expect(live).to_have_text("live")
    task_id = submit(server.url, {"task_type": "demo.add", "args": [2, 3]})
    expect(status_of(page, task_id)).to_have_text("completed")


def test_buffers_stay_bounded_while_the_list_loads(
    start_server: Start, free_port: int, page: Page
) -> None:
    """The list shows at most 50 rows; while a load of it is pending, more events than the
    page keeps (1000) make it load the list again rather than buffer them all, and it ends
    showing the newest tasks as they are."""
    server = start_server(free_port)
    page.goto(server.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    for i in range(60):
        submit(server.url, {"task_type": "demo.add", "args": [i, 0]})
    rows = page.locator("#tasks tr")
    expect(rows).to_have_count(50)
    loads: list[str] = []
    page.on("request", lambda r: loads.append(r.url) if "/tasks?limit=" in r.url else None)
    held: list[Route] = []  # the first load only
    page.route("**/tasks?limit=*", lambda r: r.continue_() if held else held.append(r))
    page.select_option("#filter-type", "demo.add")  # loads the list: held
    wait_until(page, lambda: len(held) == 1)
    burst = [submit(server.url, {"task_type": "demo.add", "args": [i, 1]}) for i in range(400)]
    expect(status_of(page, burst[-1])).to_have_count(0)  # not shown while the list loads
    deadline = time.monotonic() + 60
    while httpx.get(f"{server.url}/tasks/{burst[-1]}").json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    held[0].continue_()
    expect(rows.first).to_have_attribute("data-task-id", burst[-1])
    expect(status_of(page, burst[-1])).to_have_text("completed")
    expect(rows).to_have_count(50)
    assert len(loads) == 2, loads  # 1,200 events came while it loaded: loaded again


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
    held: list[Route] = []  # the first load only
    page.route("**/tasks?limit=*", lambda r: r.continue_() if held else held.append(r))
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
