"""Retention on the real app: finished tasks go (with their attempts, events and webhook
deliveries) once they are older than their status's retention; active tasks never do; the
pruner works in small transactions that leave the writer free for submits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from app.webhook_config import parse_webhooks
from tests.conftest import ClientFactory
from tests.history import add_finished, count_rows
from tests.waiting import until
from tests.web.helpers import submit, wait_done, wait_status

QUICK = {"task_retention_seconds": 1.0, "prune_interval": 0.1, "retry_backoff": 0.01}
HOOKS = parse_webhooks(json.dumps({"demo.echo": {"scheme": "none"}}))
KEPT_BY_ID = {
    "tasks": "id",
    "task_attempts": "task_id",
    "events": "task_id",
    "webhook_deliveries": "task_id",
}


def rows_of(database: str, task_id: str) -> dict[str, int]:
    """How many rows of each table belong to `task_id` (read as another program would)."""
    return {
        table: count_rows(database, table, f"{column} = '{task_id}'")
        for table, column in KEPT_BY_ID.items()
    }


async def wait_gone(client: httpx.AsyncClient, task_id: str, timeout: float = 30) -> None:
    """Return once GET /tasks/{task_id} answers 404."""
    async with asyncio.timeout(timeout):
        while (await client.get(f"/tasks/{task_id}")).status_code != 404:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.fixture
def database(fresh_database_url: str) -> str:
    """The URL of the test's database (the one make_client serves), on either backend."""
    return fresh_database_url


@pytest.fixture
async def quick(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The app pruning every 0.1 s, finished tasks and webhook deliveries kept 1 s."""
    settings: dict[str, Any] = {
        **QUICK,
        "webhooks": HOOKS,
        "webhook_dedupe_seconds": 1.0,
        "webhook_replay_window": 1,
    }
    async with make_client(**settings) as client:
        yield client


async def finished_tasks(client: httpx.AsyncClient) -> dict[str, str]:
    """One task of each kind that retention deletes, finished: name -> id."""
    completed = await submit(client, "demo.add", args=[1, 2])
    failed = await submit(client, "demo.fail", max_attempts=2)
    cancelled = await submit(client, "demo.add", args=[1, 2], delay=3600)
    assert (await client.delete(f"/tasks/{cancelled['id']}")).status_code == 200
    hook = await client.post("/webhooks/demo.echo", json={"n": 1}, headers={"webhook-id": "d1"})
    assert hook.status_code == 202, hook.text
    ids = {
        "completed": completed["id"],
        "failed": failed["id"],
        "cancelled": cancelled["id"],
        "webhook": hook.json()["task_id"],
    }
    for task_id in ids.values():
        await wait_done(client, task_id)
    return ids


async def test_finished_tasks_and_their_rows_are_pruned_active_ones_stay(
    quick: httpx.AsyncClient, database: str
) -> None:
    running = await submit(quick, "demo.sleep", kwargs={"seconds": 60})
    await wait_status(quick, running["id"], "running")
    ids = await finished_tasks(quick)
    # The newest event stays in the log (its id is never handed out again): make it this one.
    pending = await submit(quick, "demo.add", args=[1, 2], delay=3600)
    assert rows_of(database, ids["failed"])["task_attempts"] == 2
    assert rows_of(database, ids["webhook"])["webhook_deliveries"] == 1
    for task_id in ids.values():
        await wait_gone(quick, task_id)
    for task_id in ids.values():
        assert rows_of(database, task_id) == dict.fromkeys(KEPT_BY_ID, 0)
    assert (await quick.get(f"/tasks/{pending['id']}")).json()["status"] == "scheduled"
    assert (await quick.get(f"/tasks/{running['id']}")).json()["status"] == "running"
    queue = (await quick.get("/health")).json()["queue"]
    assert queue["scheduled"] == 1 and queue["running"] == 1
    assert queue["completed"] == queue["failed"] == queue["cancelled"] == 0


async def test_a_pruned_task_is_404_and_its_idempotency_key_makes_a_new_task(
    quick: httpx.AsyncClient,
) -> None:
    body = {"task_type": "demo.add", "args": [2, 3]}
    first = await quick.post("/tasks", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202
    await wait_done(quick, first.json()["id"])
    again = await quick.post("/tasks", json=body, headers={"Idempotency-Key": "k-1"})
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    await wait_gone(quick, first.json()["id"])
    response = await quick.get(f"/tasks/{first.json()['id']}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    reused = await quick.post("/tasks", json=body, headers={"Idempotency-Key": "k-1"})
    assert reused.status_code == 202
    assert reused.json()["id"] != first.json()["id"]


async def test_a_webhook_delivery_id_is_remembered_for_the_dedupe_window(
    make_client: ClientFactory, database: str
) -> None:
    """The task goes after 1 s, its delivery id is kept for the dedupe window: the same
    delivery again still answers with the (pruned) original instead of a new task."""
    settings = {**QUICK, "webhooks": HOOKS, "webhook_dedupe_seconds": 86400.0}
    async with make_client(**settings) as client:
        headers = {"webhook-id": "d-kept"}
        first = await client.post("/webhooks/demo.echo", json={"n": 1}, headers=headers)
        task_id = first.json()["task_id"]
        await wait_done(client, task_id)
        await wait_gone(client, task_id)
        again = await client.post("/webhooks/demo.echo", json={"n": 1}, headers=headers)
        assert (again.status_code, again.json()["task_id"]) == (200, task_id)
        assert rows_of(database, task_id)["webhook_deliveries"] == 1


async def test_each_status_keeps_its_own_retention(make_client: ClientFactory) -> None:
    settings = {**QUICK, "failed_retention_seconds": 3600.0}
    async with make_client(**settings) as client:
        completed = await submit(client, "demo.add", args=[1, 2])
        failed = await submit(client, "demo.fail")
        await wait_done(client, failed["id"])
        await wait_gone(client, completed["id"])
        assert (await client.get(f"/tasks/{failed['id']}")).json()["status"] == "failed"


async def test_zero_keeps_finished_tasks_forever(make_client: ClientFactory) -> None:
    settings = {**QUICK, "task_retention_seconds": 0.0, "cancelled_retention_seconds": 1.0}
    async with make_client(**settings) as client:
        completed = await submit(client, "demo.add", args=[1, 2])
        cancelled = await submit(client, "demo.add", args=[1, 2], delay=3600)
        await client.delete(f"/tasks/{cancelled['id']}")
        await wait_done(client, completed["id"])
        await wait_gone(client, cancelled["id"])
        assert (await client.get(f"/tasks/{completed['id']}")).json()["status"] == "completed"


def longest_commit(metrics: str) -> float:
    """The smallest bucket bound of litetask_writer_commit_seconds holding every commit."""
    buckets: list[tuple[float, float]] = []
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("litetask_writer_commit_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
        elif line.startswith("litetask_writer_commit_seconds_count"):
            total = float(line.rsplit(" ", 1)[1])
    return min(bound for bound, seen in buckets if seen == total)


async def test_a_large_prune_goes_in_small_transactions_between_submits(
    make_client: ClientFactory, database: str
) -> None:
    """80,000 finished tasks go in transactions of 500 (~20 ms each here; one transaction
    for all of them holds the lock ~0.6 s): a submit made once the prune has started
    completes while most of the history is still there."""
    rows = 80_000
    async with make_client(prune_interval=3600.0):
        pass  # the schema, migrated

    def history() -> int:
        return count_rows(database, "tasks", "id LIKE 'completed-%'")

    add_finished(database, rows)
    async with make_client(**QUICK) as client:
        await until(lambda: history() < rows, timeout=30, what="the prune to start")
        task = await submit(client, "demo.add", args=[1, 2])
        done = await wait_done(client, task["id"], timeout=30)
        assert done["status"] == "completed"
        assert history() > 0, "the prune ended before the submit: make `rows` larger"
        await until(lambda: history() == 0, timeout=120, what="the whole prune")
        assert longest_commit((await client.get("/metrics")).text) <= 0.25


def lock_waiters(database: str) -> int:
    """Statements of this database waiting for a lock another transaction holds."""
    where = "datname = current_database() AND wait_event_type = 'Lock'"
    return count_rows(database, "pg_stat_activity", where)


async def test_a_task_retried_while_it_is_pruned_is_kept_whole(
    make_client: ClientFactory, database: str, backend: str
) -> None:
    """Another process retries a failed task just as its retention ends (PostgreSQL: many
    processes write at once). The pruner must take the task whole or leave it whole: here
    the retry's transaction holds the row, so the pruner passes it over (the task stays,
    with its attempts) and prunes the others. (Its events go by age either way: events are
    kept no longer than the shortest task retention.)"""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: no other transaction can hold a row meanwhile")
    async with make_client(**QUICK) as client:
        retried = await submit(client, "demo.fail", max_attempts=1)
        await wait_done(client, retried["id"])
        other = await submit(client, "demo.fail", max_attempts=1)
        await wait_done(client, other["id"])
        conninfo = database.replace("postgresql+asyncpg://", "postgresql://", 1)
        with psycopg.connect(conninfo) as conn:  # a retry on another process, in progress
            conn.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (retried["id"],))
            await until(
                lambda: lock_waiters(database) > 0 or rows_of(database, other["id"])["tasks"] == 0,
                timeout=30,
                what="the pruner to pass the retried task by, or to wait for it",
            )
            conn.execute(
                "UPDATE tasks SET status = 'pending', max_attempts = 2, run_at = 0, "
                "completed_at = NULL WHERE id = %s",
                (retried["id"],),
            )
        await wait_gone(client, other["id"])
        task = (await client.get(f"/tasks/{retried['id']}")).json()
        assert task["status"] in ("pending", "claimed", "running", "failed"), task
        kept = rows_of(database, retried["id"])
        assert kept["tasks"] == 1 and kept["task_attempts"] >= 1, kept  # its errors kept
