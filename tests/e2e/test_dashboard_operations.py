"""What an operator repairs with the dashboard, in headless Chromium against `litetask
serve`: the list filtered by status and type (and kept consistent with the filter as events
arrive), a failed task's attempts with tracebacks, bulk retry and cancel of the filtered set
behind a confirmation, and the throughput sparkline, live over SSE.

Skips, saying why, without /usr/bin/chromium or the playwright package (tests/e2e/browser.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.browser import Page, browser, expect, page, submit

__all__ = ["browser", "page"]  # fixtures
pytestmark = pytest.mark.timeout(120)
Start = Callable[..., ServerProcess]
TOKEN = "dashboard-ops-token-" + "x" * 20
QUICK_RETRIES = {"LITETASK_RETRY_BACKOFF": "0.01"}


def row(page: Page, task_id: str) -> Any:
    return page.locator(f'#tasks tr[data-task-id="{task_id}"]')


def api_task(url: str, task_id: str, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    task: dict[str, Any] = httpx.get(f"{url}/tasks/{task_id}", headers=headers, timeout=10).json()
    return task


def wait_status(url: str, task_id: str, status: str, token: str | None = None) -> None:
    deadline = time.monotonic() + 30
    while api_task(url, task_id, token)["status"] != status:
        assert time.monotonic() < deadline, api_task(url, task_id, token)
        time.sleep(0.05)


def failed(url: str, token: str | None = None, **body: Any) -> str:
    task_id = submit(url, {"task_type": "demo.fail", "max_attempts": 1, **body}, token)
    wait_status(url, task_id, "failed", token)
    return task_id


def test_filters_requery_and_stay_consistent_with_events(
    start_server: Start, free_port: int, page: Page
) -> None:
    server = start_server(free_port)
    url = server.url
    done = submit(url, {"task_type": "demo.add", "args": [1, 2]})
    first_failure = failed(url)
    waiting = [submit(url, {"task_type": "demo.sleep", "delay": 600}) for _ in range(2)]
    queries: list[str] = []
    page.on("request", lambda r: queries.append(r.url) if "/tasks?" in r.url else None)
    page.goto(url + "/")
    expect(page.locator("#live")).to_have_text("live")
    expect(row(page, done).locator("td.status")).to_have_text("completed")

    page.select_option("#filter-status", "failed")
    expect(page.locator("#tasks tr")).to_have_count(1)
    expect(row(page, first_failure).locator("td.status")).to_have_text("failed")
    assert any("status=failed" in q for q in queries), queries
    assert "status=failed" in page.url  # the filter is in the address: a reload keeps it

    second_failure = failed(url)  # it matches once it fails: shown without a reload
    expect(row(page, second_failure).locator("td.status")).to_have_text("failed")
    expect(page.locator("#tasks tr")).to_have_count(2)
    burst = [submit(url, {"task_type": "demo.fail", "max_attempts": 1}) for _ in range(10)]
    expect(page.locator("#tasks tr")).to_have_count(12)  # read one by one, or all again
    expect(page.locator("#tasks tr").first).to_have_attribute("data-task-id", burst[-1])
    later = submit(url, {"task_type": "demo.add", "args": [2, 2]})
    wait_status(url, later, "completed")
    page.reload()
    expect(page.locator("#tasks tr")).to_have_count(12)
    expect(page.locator("#filter-status")).to_have_value("failed")

    page.select_option("#filter-status", "pending")
    page.select_option("#filter-type", "demo.sleep")
    expect(page.locator("#tasks tr")).to_have_count(2)
    httpx.delete(f"{url}/tasks/{waiting[0]}", timeout=10)  # no longer pending: it leaves
    expect(row(page, waiting[0])).to_have_count(0)
    expect(page.locator("#tasks tr")).to_have_count(1)
    submit(url, {"task_type": "demo.add", "args": [3, 3], "delay": 600})  # another type
    newer = submit(url, {"task_type": "demo.sleep", "delay": 600})
    expect(row(page, newer).locator("td.status")).to_have_text("pending")
    expect(page.locator("#tasks tr").first).to_have_attribute("data-task-id", newer)
    expect(page.locator("#tasks tr")).to_have_count(2)

    page.select_option("#filter-status", "")
    page.select_option("#filter-type", "")
    expect(row(page, done)).to_have_count(1)


def test_a_failed_tasks_attempts_with_their_tracebacks(
    start_server: Start, free_port: int, page: Page
) -> None:
    server = start_server(free_port, **QUICK_RETRIES)
    url = server.url
    task_id = failed(url, max_attempts=2, kwargs={"message": "detail boom"})
    page.goto(url + "/")
    row(page, task_id).locator("td.id button").click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(detail.locator("[data-field=id]")).to_have_text(task_id)
    expect(detail.locator("[data-field=status]")).to_have_text("failed")
    attempts = detail.locator(".attempt")
    expect(attempts).to_have_count(2)
    for index in range(2):
        attempt = attempts.nth(index)
        expect(attempt.locator("summary")).to_contain_text(f"attempt {index + 1}")
        expect(attempt.locator("summary")).to_contain_text("DemoFailure: detail boom")
        expect(attempt.locator("pre")).to_contain_text("Traceback (most recent call last)")
        expect(attempt.locator("pre")).to_contain_text("raise DemoFailure(message)")

    sleeper = submit(url, {"task_type": "demo.sleep", "kwargs": {"seconds": 1.5, "steps": 3}})
    row(page, sleeper).locator("td.id button").click()
    expect(detail.locator("[data-field=id]")).to_have_text(sleeper)
    expect(detail.locator("[data-field=status]")).to_have_text("completed")  # live
    expect(detail.locator("[data-field=result]")).to_have_text('{"slept":1.5,"steps":3}')
    expect(detail.locator(".attempt")).to_have_count(0)
    page.click("#detail-close")
    expect(detail).to_be_hidden()


def test_snoozed_and_aborted_attempts_are_shown_as_such(
    start_server: Start, free_port: int, page: Page
) -> None:
    server = start_server(free_port, LITETASK_TASK_MODULES="tests.web.taskapi_tasks")
    url = server.url
    snoozed = submit(url, {"task_type": "taskapi.snooze", "args": [1]})
    aborted = submit(url, {"task_type": "taskapi.abort", "args": ["bad input"], "max_attempts": 5})
    wait_status(url, snoozed, "completed")
    wait_status(url, aborted, "failed")
    page.goto(url + "/")
    detail = page.locator("#detail")
    row(page, snoozed).locator("td.id button").click()
    expect(detail.locator("[data-field=snoozes]")).to_have_text("1")
    expect(detail.locator("[data-field=attempts]")).to_contain_text("1 of at most")  # spent
    expect(detail.locator(".attempt.snoozed summary")).to_contain_text("snoozed · Retry")
    row(page, aborted).locator("td.id button").click()
    expect(detail.locator("[data-field=id]")).to_have_text(aborted)
    expect(detail.locator(".attempt")).to_have_count(1)
    expect(detail.locator(".attempt.aborted summary")).to_contain_text("aborted · Abort: bad input")


def test_bulk_retry_and_cancel_of_the_filtered_set(
    start_server: Start, free_port: int, page: Page
) -> None:
    """Through the session cookie (a server with a token): JSON writes from this origin."""
    server = start_server(free_port, LITETASK_API_TOKEN=TOKEN, **QUICK_RETRIES)
    url = server.url
    fails = [failed(url, TOKEN) for _ in range(3)]
    other = submit(
        url, {"task_type": "demo.sleep", "kwargs": {"seconds": 5}, "timeout": 0.05}, TOKEN
    )
    wait_status(url, other, "failed", TOKEN)
    page.goto(url + "/")
    page.fill("#token", TOKEN)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#bulk-retry")).to_be_disabled()  # no filter: no bulk action

    page.select_option("#filter-status", "failed")
    page.select_option("#filter-type", "demo.fail")
    expect(page.locator("#tasks tr")).to_have_count(3)
    expect(page.locator("#bulk-cancel")).to_be_disabled()  # failed tasks cannot be cancelled
    page.click("#bulk-retry")
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("failed")
    expect(page.locator("#confirm-text")).to_contain_text("demo.fail")
    page.click("#confirm-yes")
    expect(page.locator("#message")).to_have_text("Retried 3 tasks.")
    for task_id in fails:  # each ran again (and failed again)
        deadline = time.monotonic() + 30
        while api_task(url, task_id, TOKEN)["attempts"] != 2 or (
            api_task(url, task_id, TOKEN)["status"] != "failed"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert api_task(url, other, TOKEN)["attempts"] == 1

    sleepers = [submit(url, {"task_type": "demo.sleep", "delay": 600}, TOKEN) for _ in range(3)]
    page.select_option("#filter-status", "pending")
    page.select_option("#filter-type", "demo.sleep")
    expect(page.locator("#tasks tr")).to_have_count(3)
    page.click("#bulk-cancel")
    page.click("#confirm-no")
    expect(page.locator("#confirm")).to_be_hidden()
    assert {api_task(url, t, TOKEN)["status"] for t in sleepers} == {"scheduled"}
    page.click("#bulk-cancel")
    expect(page.locator("#confirm-text")).to_contain_text("pending")
    page.click("#confirm-yes")
    expect(page.locator("#message")).to_have_text("Cancelled 3 tasks.")
    expect(page.locator("#tasks tr")).to_have_count(0)  # none is pending any more
    assert {api_task(url, t, TOKEN)["status"] for t in sleepers} == {"cancelled"}


def test_the_throughput_sparkline_counts_live(
    start_server: Start, free_port: int, page: Page
) -> None:
    server = start_server(free_port)
    url = server.url
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if "/stats/throughput" in r.url else None)
    page.goto(url + "/")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#throughput-completed")).to_have_text("0")
    expect(page.locator("#sparkline .minute")).to_have_count(60)
    for i in range(2):
        submit(url, {"task_type": "demo.add", "args": [i, i]})
    failed(url)
    expect(page.locator("#throughput-completed")).to_have_text("2")
    expect(page.locator("#throughput-failed")).to_have_text("1")
    assert len(reads) == 1  # counted from the event stream, not read again
    titles = page.locator("#sparkline .minute title").all_text_contents()
    counted = [re.search(r": (\d+) completed, (\d+) failed$", t) for t in titles]
    assert [sum(int(m.group(k)) for m in counted if m) for k in (1, 2)] == [2, 1], titles
    page.reload()
    expect(page.locator("#throughput-completed")).to_have_text("2")
    expect(page.locator("#throughput-failed")).to_have_text("1")
