"""One idempotency key (or one webhook delivery) sent to two `litetask serve` processes on one
PostgreSQL database at once: every answer is a success naming the same task, and the database
holds one row for the key (issue 14). The test holds the event log's lock, as a slow
transaction would, until both processes' transactions have their rows inserted, so the two
always meet in the key's unique index (the delivery's primary key)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, free_loopback_port
from tests.pg_server import PostgresServer, commits_held, postgres_sql
from tests.waiting import until
from tests.web.webhook_signing import BODY, SECRET, github_headers, standard_headers

pytestmark = pytest.mark.timeout(180)  # real servers on a loaded machine
Servers = tuple[str, list[ServerProcess]]
WEBHOOKS = {  # a signed endpoint per scheme: deduplicated by delivery id, and by body
    "demo.echo": {"scheme": "standard", "secret": SECRET},
    "hook.github": {"scheme": "github", "secret": "gh-secret", "headers": ["X-GitHub-Event"]},
}


@pytest.fixture(scope="module")
def servers(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    """Two processes on one new database, and its URL."""
    url = postgres.create_database()
    directory = tmp_path_factory.mktemp("idempotency")
    started = [
        ServerProcess(
            directory / "unused.db",
            free_loopback_port(),
            LITETASK_DATABASE_URL=url,
            LITETASK_WEBHOOKS=json.dumps(WEBHOOKS),
            LITETASK_TASK_MODULES="tests.web.webhook_tasks",
        )
        for _ in range(2)
    ]
    try:
        for server in started:
            server.wait_ready(timeout=60)
        yield url, started
    finally:
        for server in started:
            server.close()


async def race(url: str, sends: list[Any]) -> list[httpx.Response]:
    """Send every request at once while commits are held, until two transactions wait."""
    with commits_held(url) as waiting:
        sent = [asyncio.create_task(send) for send in sends]
        await until(lambda: waiting(2), timeout=30, what="both processes' writers to wait")
    return list(await asyncio.gather(*sent))


async def test_one_key_posted_to_two_processes_at_once_names_one_task(servers: Servers) -> None:
    url, (a, b) = servers
    async with httpx.AsyncClient(timeout=60) as client:
        for round_ in range(3):  # one, two, then three requests to each process
            key, body = f"key-{round_}", {"task_type": "demo.add", "args": [round_, 1]}
            headers = {"Idempotency-Key": key}
            each = (a, b) * (round_ + 1)
            posts = [client.post(s.url + "/tasks", json=body, headers=headers) for s in each]
            responses = await race(url, posts)
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200] * (len(each) - 1) + [202], [r.text for r in responses]
            assert len({r.json()["id"] for r in responses}) == 1
            rows = postgres_sql(url, f"SELECT count(*) FROM tasks WHERE idempotency_key = '{key}'")
            assert rows == [(1,)]


async def test_one_key_in_batches_posted_to_two_processes_at_once(servers: Servers) -> None:
    url, (a, b) = servers

    def batch(own: str) -> dict[str, Any]:
        shared = {"task_type": "demo.add", "args": [1, 1], "idempotency_key": "batch-shared"}
        return {
            "tasks": [shared, {"task_type": "demo.add", "args": [2, 2], "idempotency_key": own}]
        }

    async with httpx.AsyncClient(timeout=60) as client:
        posts = [client.post(s.url + "/tasks/batch", json=batch(f"own-{s.url}")) for s in (a, b)]
        responses = await race(url, posts)
    assert [r.status_code for r in responses] == [202, 202], [r.text for r in responses]
    answers = [r.json()["tasks"] for r in responses]
    assert len({tasks[0]["id"] for tasks in answers}) == 1
    assert sorted(tasks[0]["created"] for tasks in answers) == [False, True]
    assert all(tasks[1]["created"] for tasks in answers)
    rows = postgres_sql(url, "SELECT count(*) FROM tasks WHERE idempotency_key LIKE '%shared'")
    assert rows == [(1,)]


def assert_one_task(responses: list[httpx.Response]) -> str:
    """One 202 (the winner) and 200s naming its task; never a 500. The task's id."""
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (len(responses) - 1) + [202], [r.text for r in responses]
    answers = [r.json() for r in responses]
    assert sorted(a["created"] for a in answers) == [False] * (len(answers) - 1) + [True]
    (task_id,) = {a["task_id"] for a in answers}
    return str(task_id)


def rows_of(url: str, endpoint: str) -> tuple[object, object]:
    """Tasks of webhook endpoint `endpoint`, and its delivery rows (key, task id)."""
    tasks = postgres_sql(url, f"SELECT id FROM tasks WHERE task_type = '{endpoint}'")
    deliveries = postgres_sql(
        url,
        "SELECT delivery_id, task_id FROM webhook_deliveries "
        f"WHERE endpoint = '{endpoint}' ORDER BY delivery_id",
    )
    return tasks, deliveries


async def test_one_delivery_posted_to_two_processes_at_once_names_one_task(
    servers: Servers,
) -> None:
    url, (a, b) = servers
    async with httpx.AsyncClient(timeout=60) as client:
        headers = standard_headers(BODY, msg_id="msg_race")
        posts = [
            client.post(s.url + "/webhooks/demo.echo", content=BODY, headers=headers)
            for s in (a, b)
        ]
        task_id = assert_one_task(await race(url, posts))
        again = await client.post(b.url + "/webhooks/demo.echo", content=BODY, headers=headers)
    assert (again.status_code, again.json()["task_id"]) == (200, task_id)
    assert rows_of(url, "demo.echo") == ([(task_id,)], [("msg_race", task_id)])


async def test_one_github_body_posted_to_two_processes_at_once_names_one_task(
    servers: Servers,
) -> None:
    """A replay under a fresh delivery id (GitHub signs only the body) racing the original:
    they meet on the body's row, and the replay records nothing of its own."""
    url, (a, b) = servers
    body = json.dumps({"ref": "refs/heads/main", "after": "abc"}).encode()
    async with httpx.AsyncClient(timeout=60) as client:
        posts = [
            client.post(
                s.url + "/webhooks/hook.github",
                content=body,
                headers=github_headers(body, delivery=f"gh-{n}"),
            )
            for n, s in enumerate((a, b))
        ]
        task_id = assert_one_task(await race(url, posts))
    tasks, deliveries = rows_of(url, "hook.github")
    assert tasks == [(task_id,)]
    assert isinstance(deliveries, list) and len(deliveries) == 2  # its id and its body
    assert {row[1] for row in deliveries} == {task_id}
