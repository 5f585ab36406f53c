"""The delivery guarantee, as a property: whatever sequence of submits, cancels, restarts
(worker and server) and prunes happens, a client following /events with resume sees every
committed event exactly once and in order, and nothing that was not committed, except the
events a `reset` tells it it missed. One client follows everything, one a single group
(which relies on cursors to resume while its group is quiet)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.db.tables import events
from app.events.client import SSEClient, SSEEvent
from app.events.manager import EventManager
from app.events.retention import Retention, prune_events
from app.web.streams import StreamLimits
from app.worker.core import AsyncTaskWorker
from tests.conftest import free_loopback_port
from tests.events.conftest import Gates, build_app, make_registry, running_server
from tests.waiting import until

GROUPS = ("g1", "g2")
Logged = dict[int, tuple[str, str, str | None]]  # id -> (type, task_id, group)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.integers(1, 4), st.sampled_from(GROUPS)),
        st.tuples(st.just("cancel"), st.sampled_from(GROUPS)),
        st.tuples(st.just("hold"), st.sampled_from(GROUPS)),
        st.tuples(st.just("restart"), st.integers(0, 3)),
        st.tuples(st.just("prune"), st.integers(1, 8)),
    ),
    min_size=1,
    max_size=7,
)


@dataclass
class Follower:
    client: SSEClient
    received: list[SSEEvent] = field(default_factory=list)

    async def run(self) -> None:
        async for event in self.client:
            self.received.append(event)

    @property
    def position(self) -> int:
        return int((self.client.last_event_id or "-0").rpartition("-")[2])


@dataclass
class Service:
    """A worker and the SSE routes on one port, stopped and started like a restart."""

    url: str
    port: int
    logged: Logged = field(default_factory=dict)
    worker: AsyncTaskWorker | None = None
    stack: AsyncExitStack | None = None

    async def start(self) -> None:
        manager = EventManager()
        worker = AsyncTaskWorker(
            self.url, registry=make_registry(Gates()), event_sink=manager.publish
        )
        await worker.start()
        stack = AsyncExitStack()
        app = build_app(worker, manager, StreamLimits(cursor_interval=0.05))
        await stack.enter_async_context(running_server(app, manager, port=self.port))
        self.worker, self.stack = worker, stack

    async def stop(self) -> None:
        """Server first (streams end), then the worker: held tasks are put back at once."""
        assert self.worker is not None and self.stack is not None
        await self.stack.aclose()
        await self.worker.stop(0.05)

    async def read_log(self) -> None:
        """Note every row of the log (before a prune deletes some): what was committed."""
        assert self.worker is not None
        statement = select(events.c.id, events.c.type, events.c.task_id, events.c.payload)
        async with self.worker.engines.reader.connect() as conn:
            for row in await conn.execute(statement):
                self.logged[row.id] = (row.type, row.task_id, (row.payload or {}).get("group"))


async def apply(service: Service, step: tuple[Any, ...]) -> None:
    worker = service.worker
    assert worker is not None
    kind = step[0]
    if kind == "submit":
        ids = [
            await worker.add_task("echo", i, metadata={"group": step[2]}) for i in range(step[1])
        ]
        await worker.wait_for_tasks(ids, timeout=10)
    elif kind == "cancel":
        task_id = await worker.add_task("echo", 0, metadata={"group": step[1]}, delay=60)
        assert await worker.cancel_task(task_id)
    elif kind == "hold":  # running when a restart comes: recovered after it
        task_id = await worker.add_task("held", "never", metadata={"group": step[1]})
        for _ in range(1000):
            info = await worker.get_task_info(task_id)
            if info is not None and info.status.value == "running":
                break
            await asyncio.sleep(0.01)
    elif kind == "restart":
        await service.stop()
        await asyncio.sleep(step[1] * 0.05)
        await service.start()
    else:
        await service.read_log()
        await prune_events(worker.writer, Retention(max_age=None, max_count=step[1]))


def check(follower: Follower, logged: Logged, group: str | None, pruned: bool) -> None:
    """Every committed event of `group` exactly once, in order, nothing else, except the
    ones a reset says were missed (after the client's id, up to the reset's id). A reset
    comes only when retention pruned events (never from a restart or a filter)."""
    seen: list[int] = []
    skipped: list[tuple[int, int]] = []
    for event in follower.received:
        if event.type == "reset":
            assert pruned and event.data["reason"] == "expired", event
            since = int(event.data["last_event_id"].rpartition("-")[2])
            skipped.append((since, event.data["id"]))
            continue
        assert event.id is not None, event
        expected = (event.type, event.data["task_id"], event.data.get("group"))
        assert logged.get(event.id) == expected, event
        seen.append(event.id)
    assert seen == sorted(set(seen)), "repeated or out of order"
    wanted = [i for i, (_, _, g) in sorted(logged.items()) if group is None or g == group]
    missing = [i for i in wanted if i not in seen and not any(a < i <= b for a, b in skipped)]
    assert missing == [], (missing, skipped)


@asynccontextmanager
async def followed(service: Service) -> AsyncIterator[list[Follower]]:
    base = f"http://127.0.0.1:{service.port}/events"
    followers = [
        Follower(SSEClient(base, reconnect_delay=0.02, max_delay=0.1, max_retries=None)),
        Follower(
            SSEClient(
                base,
                params={"group": "g1"},
                reconnect_delay=0.02,
                max_delay=0.1,
                max_retries=None,
            )
        ),
    ]
    readers = [asyncio.create_task(f.run()) for f in followers]
    try:
        yield followers
    finally:
        for follower, reader in zip(followers, readers, strict=True):
            await follower.client.aclose()
            await asyncio.wait_for(reader, 5)


async def scenario(directory: Path, plan: list[tuple[Any, ...]]) -> None:
    service = Service(f"sqlite+aiosqlite:///{directory / 'p.db'}", free_loopback_port())
    await service.start()
    try:
        async with followed(service) as followers:
            await until(lambda: all(f.client.connects for f in followers))
            await asyncio.sleep(0.1)
            for step in plan:
                await apply(service, step)
            await service.read_log()
            newest = max(service.logged, default=0)
            with contextlib.suppress(AssertionError):
                await until(lambda: all(f.position >= newest for f in followers), 10)
    finally:
        await service.stop()
    pruned = any(step[0] == "prune" for step in plan)
    check(followers[0], service.logged, None, pruned)
    check(followers[1], service.logged, "g1", pruned)
    assert [f.position for f in followers] == [newest, newest]


@pytest.mark.timeout(300)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(steps)
def test_a_resuming_client_sees_every_committed_event_once_in_order(
    plan: list[tuple[Any, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(asyncio.wait_for(scenario(Path(directory), plan), 60))
