"""Only committed events reach a stream: with the disk full, submits are refused and rolled
back, and a client following /events sees no `task.queued` of a task that does not exist,
and no id that later names a different event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy import select

from app.db.tables import events
from app.errors import DatabaseUnavailableError
from app.events.manager import EventManager
from app.worker.core import AsyncTaskWorker
from tests.events.conftest import Gates, build_app, make_registry, running_server
from tests.events.sse_reader import open_stream, read_until
from tests.faults import disk_full

BIG = "x" * 16_384  # every task row needs new pages: a full disk refuses it
# Rewriting a finished row frees its old overflow pages, so a full file still has a few
# free: a task four times as big fits in none of them, even alone in its transaction.
BIGGER = BIG * 4


async def submit_all(
    worker: AsyncTaskWorker, count: int, tag: str, payload: str = BIG
) -> list[str | None]:
    async def one(i: int) -> str | None:
        try:
            return await worker.add_task("echo", f"{tag}{i}{payload}")
        except DatabaseUnavailableError:
            return None

    return await asyncio.gather(*(one(i) for i in range(count)))


async def test_a_full_disk_publishes_only_what_committed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'full.db'}"
    manager = EventManager()
    async with (
        AsyncTaskWorker(
            url,
            registry=make_registry(Gates()),
            event_sink=manager.publish,
            write_retry_seconds=0.5,
        ) as worker,
        running_server(build_app(worker, manager), manager) as server,
        httpx.AsyncClient(timeout=30) as client,
        open_stream(client, server.url + "/events") as source,
    ):
        ok = [i for i in await submit_all(worker, 5, "before") if i]
        await worker.wait_for_tasks(ok, timeout=10)
        with disk_full(tmp_path / "full.db") as disk:
            refused = await submit_all(worker, 20, "refused", BIGGER)
            pending = asyncio.create_task(submit_all(worker, 20, "late"))
            await asyncio.sleep(0.2)
            disk.free()
            late = await pending
        assert refused == [None] * 20 and all(late)
        after = [i for i in await submit_all(worker, 5, "after") if i]
        done = [*ok, *[i for i in late if i], *after]
        await worker.wait_for_tasks(done, timeout=20)
        logged = await all_logged(worker)
        newest = max(logged)
        got = await read_until(source, lambda g: g[-1].data["id"] == newest, timeout=20)
        streamed = [g for g in got if g.event.startswith("task.")]
        exist = {g.data["task_id"]: await worker.get_task_info(g.data["task_id"]) for g in streamed}
    assert all(exist.values()), [t for t, info in exist.items() if info is None]
    ids = [g.data["id"] for g in streamed]
    assert None not in ids and ids == sorted(set(ids)), "ids missing, repeated or backwards"
    for g in streamed:
        assert logged.get(g.data["id"]) == (g.event, g.data["task_id"]), g
    queued = {g.data["task_id"] for g in streamed if g.event == "task.queued"}
    assert queued == set(done)


async def all_logged(worker: AsyncTaskWorker) -> dict[int, tuple[str, str]]:
    async with worker.engines.reader.connect() as conn:
        rows = (await conn.execute(select(events.c.id, events.c.type, events.c.task_id))).all()
    return {row.id: (row.type, row.task_id) for row in rows}
