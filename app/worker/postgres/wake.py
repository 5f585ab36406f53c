"""Waking an idle pool on PostgreSQL: work put by another process, or rescued from a dead
one, never sets this process's `new_work` event. So each process LISTENs on
`litetask_work` (the writer NOTIFYs it in every transaction that makes work runnable,
delivered at commit: app/db/postgres/writer.py) on a connection of its own, and an idle
process makes no query until told. The same connection hears `litetask_events` (the log
follower reads on) and `litetask_cancel` (another process cancelled attempts that may run
here: app/worker/postgres/cancels.py). A slow fallback poll (`poll_seconds`) wakes the pool
and sweeps its running attempts all the same, for a notification lost while the listening
connection was being replaced; a lost connection is reopened with backoff, and the pool
woken and swept once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.cancelling import cancel_and_wait
from app.db.postgres.writer import EVENTS_CHANNEL, SUSPECTS_PAYLOAD, WORK_CHANNEL
from app.worker.pool import WorkerPool
from app.worker.postgres import cancels
from app.worker.postgres.follower import LogFollower

logger = logging.getLogger(__name__)
POLL_SECONDS = 30.0
RECONNECT_SECONDS = (0.1, 5.0)  # first and longest wait before reopening the connection
# The listening connection's name in pg_stat_activity.
APPLICATION_NAME = "litetask-listen"


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy URL (postgresql+asyncpg://...) as asyncpg's own DSN."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Wake:
    """The LISTEN connection of this process: wakes the pool on `litetask_work`, pokes the
    log follower on `litetask_events`, cancels attempts on `litetask_cancel`."""

    def __init__(
        self, url: str, pool: WorkerPool, follower: LogFollower, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.url, self.pool, self.poll_seconds = url, pool, poll_seconds
        self.follower = follower
        self._loops: list[asyncio.Task[None]] = []
        self._lost = asyncio.Event()
        self._connection: asyncpg.Connection | None = None
        self._sweeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._listen()  # the first: a failure here fails the start
        try:
            await self.follower.start()
        except BaseException:
            await self._close()
            raise
        self._loops = [
            asyncio.create_task(self._poll(), name="litetask-wake-poll"),
            asyncio.create_task(self._keep(), name="litetask-listener"),
        ]

    def wake(self, suspects: bool = False) -> None:
        """Another process may have made work: claim (and look for suspects) again."""
        if suspects:
            self.pool.suspects_waiting = True
        self.pool.queue.new_work.set()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.wake(suspects=payload == SUSPECTS_PAYLOAD)

    def _logged(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self.follower.poke()

    def _cancelled(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        cancels.cancel_here(self.pool, cancels.parse(payload))

    def _sweep(self) -> None:
        """Look for attempts cancelled unheard (one sweep at a time, in the background)."""
        if self._sweeping is None or self._sweeping.done():
            sweep = cancels.sweep(self.follower.reader, self.pool)
            self._sweeping = asyncio.create_task(sweep, name="litetask-cancel-sweep")
            self._sweeping.add_done_callback(_log_failure)

    async def _listen(self) -> None:
        self._lost.clear()
        settings = {"application_name": APPLICATION_NAME}
        connection = await asyncpg.connect(asyncpg_dsn(self.url), server_settings=settings)
        self._connection = connection
        connection.add_termination_listener(lambda _conn: self._lost.set())
        await connection.add_listener(WORK_CHANNEL, self._notified)
        await connection.add_listener(EVENTS_CHANNEL, self._logged)
        await connection.add_listener(cancels.CANCEL_CHANNEL, self._cancelled)

    async def _keep(self) -> None:
        """Reopen the listening connection when lost, then wake the pool and the follower
        and sweep (what was said meanwhile is lost)."""
        while True:
            await self._lost.wait()
            await self._close()
            await self._reopen()
            self._catch_up()

    def _catch_up(self) -> None:
        """Act on whatever a lost notification would have said."""
        self.wake(suspects=True)
        self.follower.poke()
        self._sweep()

    async def _reopen(self) -> None:
        delay, longest = RECONNECT_SECONDS
        while True:
            try:
                await self._listen()
                return
            except (OSError, asyncpg.PostgresError) as exc:
                logger.warning("LISTEN connection lost (%s); trying again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            self._catch_up()

    async def stop(self) -> None:
        loops, self._loops = self._loops, []
        if self._sweeping is not None and not self._sweeping.done():
            loops.append(self._sweeping)
        await cancel_and_wait(*loops)
        await self.follower.stop()
        await self._close()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)


def _log_failure(sweep: asyncio.Task[None]) -> None:
    if not sweep.cancelled() and sweep.exception() is not None:
        logger.warning("looking for attempts cancelled elsewhere failed: %s", sweep.exception())
