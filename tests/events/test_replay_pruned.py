"""A long replay racing retention, over HTTP: a client resuming from the start of a big log
reads slowly; retention deletes the rows its replay has not reached yet. It gets a
`reset: expired` naming the last id it received, never a silent jump over the pruned ids,
and then goes on live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from httpx_sse import ServerSentEvent

from app.events.log import REPLAY_PAGE
from app.events.retention import Retention, prune_events
from app.worker.core import AsyncTaskWorker
from tests.events.conftest import Server
from tests.events.sse_reader import Got, open_stream, to_got
from tests.events.test_log import log, rec

# 20 pages of ~4 KB events (~40 MB): far more than the socket buffers between server and
# client hold (a few MB), so a client that stops reading holds the server mid-replay.
PAGES = 20
FILLER = "x" * 4000


async def read_to(messages: AsyncIterator[ServerSentEvent], last: str, into: list[Got]) -> None:
    """Messages (cursors included) into `into` until the event of task `last`, or a reset
    when `last` is "reset"."""
    async for sse in messages:
        item = to_got(sse, cursors=True)
        if item is not None:
            into.append(item)
            if last in (item.event, item.data.get("task_id")):
                return


async def test_a_prune_during_a_slow_replay_is_a_reset_not_a_gap(
    server: Server, worker: AsyncTaskWorker
) -> None:
    for page in range(PAGES):
        await log(worker, *(rec(f"old{page}-{i}", error=FILLER) for i in range(REPLAY_PAGE)))
    newest = PAGES * REPLAY_PAGE
    epoch = worker.log_epoch
    got: list[Got] = []
    async with (
        httpx.AsyncClient(timeout=60) as client,
        open_stream(client, server.url + "/events", {"Last-Event-ID": f"{epoch}-0"}) as source,
    ):
        messages = source.aiter_sse()
        await asyncio.wait_for(read_to(messages, "old0-0", got), 30)  # the replay has begun
        await asyncio.sleep(1.0)  # not reading: the server fills the buffers and waits
        await prune_events(worker.writer, Retention(max_age=None, max_count=REPLAY_PAGE))
        with contextlib.suppress(TimeoutError):  # none: the assertions below say what came
            await asyncio.wait_for(read_to(messages, "reset", got), 20)
        await log(worker, rec("live"))
        await asyncio.wait_for(read_to(messages, "live", got), 20)
    numbers = [int(g.sse_id.rpartition("-")[2]) for g in got if g.event != "cursor"]
    kinds = [g.event for g in got if g.event != "cursor"]
    assert kinds.count("reset") == 1, "the pruned rows were skipped without a reset"
    at = kinds.index("reset")
    received = numbers[:at]
    assert received == list(range(1, len(received) + 1)), "a gap before the reset"
    assert len(received) < newest - REPLAY_PAGE, "the replay was not held back: no race"
    reset = got[[g.event for g in got].index("reset")].data
    assert reset["reason"] == "expired"
    assert reset["last_event_id"] == f"{epoch}-{received[-1]}"
    assert reset["id"] == newest
    assert numbers[at + 1 :] == [newest + 1] and got[-1].data["task_id"] == "live"
