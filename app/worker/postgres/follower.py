"""Following the event log on PostgreSQL, so a process publishes the events of every
process, in the log's order.

Each transaction that logs events NOTIFYs `litetask_events` with its newest id, and ids
follow commit order (app/db/postgres/writer.py). So when told, a follower reads the log
after the last id it delivered, page by page, and hands each page on: an SSE stream on any
process sees tasks run on any process, in order, with the log's ids (Last-Event-ID resumes
across processes and restarts). On PostgreSQL every logged event, this process's own
included, reaches subscribers this way only, so live events keep the log's order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from app.cancelling import cancel_and_wait
from app.events.log import REPLAY_PAGE, TaskEvent, newest_event_id, read_page

logger = logging.getLogger(__name__)
RETRY_SECONDS = 1.0
LAST_READ_SECONDS = 2.0  # a stop waits this long at most for the log's last events
Deliver = Callable[[list[TaskEvent]], None]


class LogFollower:
    def __init__(self, reader: AsyncEngine, deliver: Deliver) -> None:
        self.reader, self.deliver = reader, deliver
        self.after = 0  # the newest id delivered
        self._more = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Follow from the log's newest id now (what came before is for replays)."""
        self.after = await newest_event_id(self.reader) or 0
        self._loop = asyncio.create_task(self._run(), name="litetask-log-follower")

    def position(self) -> int:
        """The newest event id delivered: every event up to it has reached subscribers."""
        return self.after

    def poke(self) -> None:
        """Something was logged (or may have been, unseen): read on."""
        self._more.set()

    async def _run(self) -> None:
        while True:
            await self._more.wait()
            self._more.clear()
            try:
                await self._catch_up()
            except Exception:
                logger.exception("reading the event log failed; trying again in 1 s")
                await asyncio.sleep(RETRY_SECONDS)
                self._more.set()

    async def _catch_up(self) -> None:
        while True:
            page = await read_page(self.reader, self.after)
            if page.events:
                self.after = page.events[-1].id or self.after
                self.deliver(page.events)
            if len(page.events) < REPLAY_PAGE:
                return

    async def stop(self) -> None:
        """Stop following, once the log is read to its end: the events this process
        committed before its stop reach its subscribers, as SQLite's commits hand them on
        (bounded: a database that does not answer costs LAST_READ_SECONDS at most)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        await cancel_and_wait(loop)
        try:
            async with asyncio.timeout(LAST_READ_SECONDS):
                await self._catch_up()
        except Exception:
            logger.warning(
                "the last events of the log were not read before the stop", exc_info=True
            )
