"""The dashboard's schedules panel in a real browser (headless Chromium) against `litetask
serve` with periodic task types: each schedule with its last and next run, kept current
without a reload; no panel when no task type is periodic.

Skips, saying why, without /usr/bin/chromium or the playwright package (tests/e2e/browser.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from tests.conftest import ServerProcess
from tests.e2e.browser import Page, browser, expect, page

__all__ = ["browser", "page"]  # fixtures
MODULE = "tests.e2e.periodic_tasks"
Start = Callable[..., ServerProcess]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def test_the_panel_lists_each_schedule_with_its_last_and_next_run(
    start_server: Start, free_port: int, page: Page
) -> None:
    server = start_server(free_port, LITETASK_TASK_MODULES=MODULE)
    page.goto(server.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate("window.notReloaded = true")
    panel = page.locator("#schedules-panel")
    expect(panel).to_be_visible()

    tick = panel.locator('tr[data-schedule="periodic.tick"]')
    expect(tick.locator("td.schedule")).to_have_text("every 1 s")
    expect(tick.locator("td.missed")).to_have_text("all")
    expect(tick.locator("td.last")).to_have_attribute("data-time", ISO)
    expect(tick.locator("td.status")).to_have_text(re.compile("pending|running|completed"))
    first = tick.locator("td.last").get_attribute("data-time")
    # The next slot comes and is queued: the row follows without a reload.
    expect(tick.locator("td.last")).not_to_have_attribute("data-time", first or "")
    last = datetime.fromisoformat(tick.locator("td.last").get_attribute("data-time") or "")
    after = datetime.fromisoformat(tick.locator("td.next").get_attribute("data-time") or "")
    assert after > last

    report = panel.locator('tr[data-schedule="periodic.report"]')
    expect(report.locator("td.schedule")).to_have_text("cron 30 9 * * MON-FRI (America/New_York)")
    expect(report.locator("td.missed")).to_have_text("one")
    expect(report.locator("td.last")).to_have_text("never")
    expect(report.locator("td.next")).to_have_attribute("data-time", ISO)
    following = datetime.fromisoformat(report.locator("td.next").get_attribute("data-time") or "")
    local = following.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 30)
    shown = httpx.get(server.url + "/schedules", timeout=10).json()["schedules"]
    assert [s["name"] for s in shown] == [
        row.get_attribute("data-schedule") for row in panel.locator("tbody tr").all()
    ]
    assert page.evaluate("window.notReloaded") is True


def test_no_panel_without_periodic_task_types(
    start_server: Start, free_port: int, page: Page
) -> None:
    server = start_server(free_port)
    page.goto(server.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    panel = page.locator("#schedules-panel")
    expect(panel).to_have_attribute("data-count", "0")  # read: no periodic task type
    expect(panel).to_be_hidden()
