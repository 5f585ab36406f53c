"""WorkerPool: claims due tasks and runs them, at most `max_workers` at once.

One dispatcher waits on a single wake-up event (set by a committed insert, a freed slot, a
retry being scheduled, or stop) with a deadline at the next due time, so an idle pool makes
no queries at all. Claims take as many rows as there are free slots, in one statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from dataclasses import dataclass

from app.clock import now_us
from app.errors import DatabaseUnavailableError, TaskDefinitionError
from app.worker.executor import TaskExecutor
from app.worker.outcomes import OutcomeKeeper, not_stored
from app.worker.progress import ProgressPublisher, ProgressReporter
from app.worker.queue import WAKE_ALWAYS, WAKE_NEVER, TaskQueue
from app.worker.records import ClaimedTask, Failed, Outcome
from app.worker.recovery import RequeueRunning
from app.worker.registry import TaskRegistry
from app.worker.store import TaskStore

logger = logging.getLogger(__name__)
PREFETCH_FACTOR = 4
SHORT_TASK_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class PoolSettings:
    max_workers: int = 10
    owner: str = ""
    lease_seconds: float = 300.0
    progress_interval: float = 0.25


class WorkerPool:
    def __init__(
        self,
        queue: TaskQueue,
        store: TaskStore,
        executor: TaskExecutor,
        registry: TaskRegistry,
        settings: PoolSettings,
        publish_progress: ProgressPublisher | None = None,
    ) -> None:
        self.queue, self.store, self.executor, self.registry = queue, store, executor, registry
        self.settings = settings
        self._publish_progress = publish_progress
        self.outcomes = OutcomeKeeper(queue)
        # Attempts until their outcome is committed; `_executing` counts only those whose
        # function still runs, so a slot frees as soon as the function returns and the next
        # claim can share a transaction with the outcome writes.
        self._running: dict[str, asyncio.Task[None]] = {}
        self._executing: set[str] = set()
        # Claimed (so `running` in the database) but not started yet: see _claim_size.
        self._ready: deque[ClaimedTask] = deque()
        self._mean_seconds: float | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def worker_count(self) -> int:
        return self.settings.max_workers

    @property
    def active_count(self) -> int:
        return len(self._executing)

    @property
    def is_running(self) -> bool:
        return self._dispatcher is not None and not self._stopping

    async def start(self) -> None:
        if self._dispatcher is None:
            self._stopping = False
            self._dispatcher = asyncio.create_task(self._dispatch(), name="litetask-dispatcher")

    def cancel_local(self, task_id: str) -> bool:
        """Cancel the attempt running here, if any (its row was already marked cancelled)."""
        for claimed in self._ready:
            if claimed.id == task_id:
                self._ready.remove(claimed)
                return True
        running = self._running.get(task_id)
        if running is None:
            return False
        running.cancel()
        return True

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; let running attempts finish within `timeout`, then cancel the rest
        and put them back to `pending` so they run again after a restart."""
        if self._dispatcher is None:
            return
        self._stopping = True
        self.outcomes.stopping = True
        self.queue.new_work.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._dispatcher
        self._dispatcher = None
        unstarted = [claimed.id for claimed in self._ready]
        self._ready.clear()
        cut = await self._finish_or_cut(timeout)
        # Attempts cut while their outcome waited for the database get one last try at it;
        # the others, and those the database still refuses, are put back to run again.
        unsaved = self.outcomes.take_unsaved()
        known = {claimed.id for claimed, _ in unsaved}
        lost = await self.outcomes.last_try(unsaved) if unsaved else []
        await self._put_back(unstarted + [i for i in cut if i not in known] + lost)

    async def _put_back(self, task_ids: list[str]) -> None:
        if not task_ids:
            return
        try:
            requeued = await self.queue.writer.run(RequeueRunning(self.settings.owner, task_ids))
        except DatabaseUnavailableError as exc:
            logger.error(
                "stop: %s claimed tasks could not be put back (%s); the next start recovers them",
                len(task_ids),
                exc,
            )
        else:
            logger.info("stop: %s claimed tasks put back to pending", requeued)

    async def _finish_or_cut(self, timeout: float) -> list[str]:
        """Wait up to `timeout` for running attempts; cancel the rest and return their ids."""
        running = dict(self._running)
        if not running:
            return []
        _done, late = await asyncio.wait(running.values(), timeout=timeout)
        for attempt in late:
            attempt.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return [task_id for task_id, t in running.items() if t in late]

    async def _dispatch(self) -> None:
        wake = self.queue.new_work
        while not self._stopping:
            try:
                delay = await self._fill_slots()
            except Exception:
                logger.exception("claiming tasks failed; trying again in 1 s")
                self.queue.wake_before = WAKE_ALWAYS
                delay = 1.0
            if self._stopping:
                break
            if delay == 0:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

    async def _fill_slots(self) -> float | None:
        """Start claimed work in free slots and claim more; return how long to sleep
        (None: until woken).

        While it claims, puts do not wake the pool (each would cost one more claim and
        next-due query): they are noted in `queue.earliest_put`, and the sleep that follows
        ends by the earliest of those and the next due row."""
        queue = self.queue
        queue.new_work.clear()
        queue.wake_before = WAKE_NEVER
        queue.earliest_put = WAKE_ALWAYS
        self._start_ready()
        want = self._claim_size()
        if want <= 0:  # slots are full: a finishing task wakes us
            return None
        claimed = await queue.claim(want, self.settings.owner, self.settings.lease_seconds)
        self._ready.extend(claimed)
        self._start_ready()
        if len(claimed) == want:
            return 0 if len(self._executing) < self.settings.max_workers else None
        next_due = await self.store.next_due()
        due = min(WAKE_ALWAYS if next_due is None else next_due, queue.earliest_put)
        queue.wake_before = due
        if due == WAKE_ALWAYS:
            return None
        return max(0.0, (due - now_us()) / 1_000_000)

    def _claim_size(self) -> int:
        """Free slots plus, while recent tasks are short, a prefetch of claimed rows, so
        a stream of quick tasks is claimed in batches instead of one transaction per slot.
        Claims wait until at least half the target is missing (or nothing is ready)."""
        prefetch = self.settings.max_workers * PREFETCH_FACTOR if self._tasks_are_short() else 0
        target = self.settings.max_workers + prefetch
        want = target - len(self._executing) - len(self._ready)
        if self._ready and want < target // 2:
            return 0
        return want

    def _tasks_are_short(self) -> bool:
        return self._mean_seconds is not None and self._mean_seconds < SHORT_TASK_SECONDS

    def _start_ready(self) -> None:
        while self._ready and len(self._executing) < self.settings.max_workers:
            self._launch(self._ready.popleft())

    def _launch(self, claimed: ClaimedTask) -> None:
        attempt = asyncio.create_task(self._run(claimed), name=f"litetask-task-{claimed.id}")
        self._running[claimed.id] = attempt
        self._executing.add(claimed.id)
        attempt.add_done_callback(functools.partial(self._forget, claimed.id))

    def _observe(self, seconds: float) -> None:
        mean = self._mean_seconds
        self._mean_seconds = seconds if mean is None else mean + (seconds - mean) * 0.1

    def _free_slot(self, task_id: str) -> None:
        if task_id in self._executing:
            self._executing.discard(task_id)
            self.queue.new_work.set()

    def _forget(self, task_id: str, _attempt: asyncio.Task[None]) -> None:
        self._running.pop(task_id, None)
        self._free_slot(task_id)

    async def _run(self, claimed: ClaimedTask) -> None:
        try:
            await self._attempt(claimed)
        except Exception:
            # A bug, not a database error (the keeper holds on to outcomes): the row stays
            # `running` until recovery puts it back.
            logger.exception(
                "the attempt of task %s failed unexpectedly",
                claimed.id,
                extra=claimed.log_fields(),
            )

    async def _attempt(self, claimed: ClaimedTask) -> None:
        reporter = ProgressReporter(
            self.queue,
            claimed,
            interval=self.settings.progress_interval,
            publish=self._publish_progress,
        )
        try:
            definition = self.registry.get(claimed.task_type)
        except TaskDefinitionError as exc:
            outcome: Outcome = Failed(type(exc).__name__, str(exc), None)
        else:
            started = time.monotonic()
            try:
                outcome = await self.executor.execute(definition, claimed, reporter)
            except Exception as exc:  # not the function's error: keeping its result failed
                outcome = not_stored(claimed, exc)
            self._observe(time.monotonic() - started)
        self._free_slot(claimed.id)
        await reporter.flush()
        await self.outcomes.record(claimed, outcome)
