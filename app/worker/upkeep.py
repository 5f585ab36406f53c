"""Upkeep while the process lives: the owner heartbeat, the reconciler, the stager (tasks
for later become pending at their time: app/worker/stager.py) and the scheduler (periodic
task types queue their slots: app/worker/scheduler.py).

The heartbeat keeps this process's owner row alive (app/db/owner.py); if the row is gone,
another process has taken the database over, and this one stops working at once. The
reconciler puts back rows this boot holds (`claimed` or `running`) that no live attempt owns:
whatever lost them (a start or outcome write that never committed, another program's
UPDATE), a task must not stay taken forever while the process lives. A row is put back only
when two rounds in a row saw it orphaned, so a claim committed but not yet registered in the
pool (a matter of milliseconds) is never mistaken for one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from app.cancelling import cancel_and_wait
from app.db.owner import Heartbeat, Owner, ReleaseOwnership
from app.db.writer import GroupCommitWriter
from app.worker.pool import WorkerPool
from app.worker.records import AttemptKey
from app.worker.recovery import PutBack, RecoverInterrupted
from app.worker.scheduler import Scheduler
from app.worker.stager import Stager
from app.worker.status import TaskStatus
from app.worker.store import TaskStore

logger = logging.getLogger(__name__)
Held = tuple[str, TaskStatus, AttemptKey]


class Upkeep:
    def __init__(
        self,
        writer: GroupCommitWriter,
        store: TaskStore,
        pool: WorkerPool,
        owner: Owner,
        *,
        reconcile_interval: float,
        on_lost: Callable[[], None],
        scheduler: Scheduler | None = None,
    ) -> None:
        self.writer, self.store, self.pool, self.owner = writer, store, pool, owner
        self.scheduler = scheduler
        self.reconcile_interval = reconcile_interval
        self._on_lost = on_lost
        self._seen: set[Held] = set()
        self._loops: list[asyncio.Task[None]] = []
        # PostgreSQL: how far the log follower has read, reported at each heartbeat.
        self._events_seen: Callable[[], int] | None = None

    def report_events_seen(self, position: Callable[[], int]) -> None:
        """Report `position()` (the log follower's) with every heartbeat from now on: the
        pruner keeps the events after it (app/events/retention.py)."""
        self._events_seen = position

    def start(self) -> None:
        stager = Stager(self.pool.queue, self.store)
        self._loops = [
            asyncio.create_task(self._beat(), name="litetask-heartbeat"),
            asyncio.create_task(self._reconcile(), name="litetask-reconciler"),
            asyncio.create_task(stager.run(), name="litetask-stager"),
        ]
        if self.scheduler is not None and self.scheduler.periodic:
            self._loops.append(asyncio.create_task(self.scheduler.run(), name="litetask-scheduler"))

    async def stop(self) -> None:
        loops, self._loops = self._loops, []
        await cancel_and_wait(*loops)

    async def release(self) -> None:
        """After a stop: drop our owner row, so the next start need not judge whether this
        process still lives (through a connection of its own if the writer died)."""
        release = ReleaseOwnership(self.owner.boot_id)
        try:
            async with asyncio.timeout(self.writer.longest_wait()):
                if self.writer.failure is None:
                    await self.writer.run(release)
                else:
                    await asyncio.to_thread(self.writer.run_aside, release)
        except Exception:
            logger.exception("could not release the database's owner row")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.owner.heartbeat_seconds)
            seen = self._events_seen() if self._events_seen is not None else None
            beat = Heartbeat(self.owner, seen)
            if not await _guarded("heartbeat", self.writer.run(beat), True):
                logger.error("another process has taken this database over; stopping the workers")
                self._on_lost()
                for loop in self._loops:  # nothing here is ours to reconcile any more
                    if loop is not asyncio.current_task():
                        loop.cancel()
                return

    async def _reconcile(self) -> None:
        while True:
            await asyncio.sleep(self.reconcile_interval)
            await _guarded("reconciling", self.reconcile_once(), 0)

    async def reconcile_once(self) -> int:
        """One round: put back the rows seen orphaned in this round and the last one."""
        boot = self.owner.boot_id
        held = [(i, status, _key(i, status, n)) for i, status, n in await self.store.held_by(boot)]
        live = self.pool.live_attempts()
        orphans = {h for h in held if h[2] not in live}
        confirmed, self._seen = orphans & self._seen, orphans
        if not confirmed:
            return 0
        claimed = [i for i, status, _ in confirmed if status is TaskStatus.CLAIMED]
        running = [key for _, status, key in confirmed if status is TaskStatus.RUNNING]
        put_back = await self.writer.run(PutBack(boot, claimed, running, reason="orphaned"))
        logger.warning("reconciler: %s tasks held by no live attempt put back", put_back)
        self.pool.queue.new_work.set()
        return put_back


async def start_pool(
    pool: WorkerPool,
    recovery: RecoverInterrupted,
    reconcile: float,
    scheduler: Scheduler | None = None,
) -> Upkeep:
    """Take ownership of the database and put interrupted work back (one transaction), then
    start the pool and its upkeep (with the scheduler, when given); DatabaseInUseError when
    another process owns it."""
    writer = pool.queue.writer
    recovered = await writer.run(recovery)
    if recovered.requeued or recovered.failed or recovered.returned:
        logger.warning("recovered interrupted tasks: %s", recovered)
    pool.suspects_waiting = recovered.suspects
    upkeep = Upkeep(
        writer,
        pool.store,
        pool,
        recovery.me,
        reconcile_interval=reconcile,
        on_lost=pool.halt,
        scheduler=scheduler,
    )
    upkeep.start()
    await pool.start()
    return upkeep


def _key(task_id: str, status: TaskStatus, attempts: int) -> AttemptKey:
    """A held row's attempt: a claimed row's is the one it will start as."""
    return (task_id, attempts + 1 if status is TaskStatus.CLAIMED else attempts)


async def _guarded(what: str, work: Coroutine[Any, Any, Any], fallback: Any) -> Any:
    """Run one round; a failure is logged and the loop goes on."""
    try:
        return await work
    except Exception:
        logger.exception("%s failed; trying again next round", what)
        return fallback
