"""WorkerPool: claims due tasks and runs them, at most `max_workers` at once.

One dispatcher waits on a single wake-up event (set by a committed due insert, a freed slot,
the stager when scheduled tasks come due, or stop), so an idle pool makes no queries at all.
A claim takes rows for the free slots straight to `running` and, while tasks are short, a
prefetch as `claimed`; a prefetched task is marked `running` (one write for all tasks
started together) before its function runs. Live attempts are tracked by
(task id, attempt): an attempt that outlives its cancellation still holds its slot.

A stop is bounded whatever a task does (app/worker/stopping.py). Nothing starts once it
begins: a claim or start still in flight then takes nothing (`queue.no_new_starts`), and what
was taken before is put back, not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from typing import Any

from app.errors import DatabaseUnavailableError, TaskDefinitionError
from app.worker.claims import Claim, ClaimRequest
from app.worker.executor import TaskExecutor
from app.worker.outcomes import OutcomeKeeper, not_stored
from app.worker.progress import ProgressPublisher, ProgressReporter
from app.worker.queue import WAKE_ALWAYS, WAKE_NEVER, TaskQueue
from app.worker.ready import ReadyTasks
from app.worker.records import AttemptKey, ClaimedTask, Outcome
from app.worker.registry import TaskRegistry
from app.worker.stopping import Stragglers, end_within, write_last
from app.worker.store import TaskStore

logger = logging.getLogger(__name__)
PREFETCH_FACTOR = 4
SHORT_TASK_SECONDS = 0.02
Started = Awaitable[set[str]]


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
        stragglers: Stragglers | None = None,
    ) -> None:
        self.queue, self.store, self.executor, self.registry = queue, store, executor, registry
        self.stragglers = stragglers if stragglers is not None else Stragglers()
        self.settings = settings
        self._publish_progress = publish_progress
        self.outcomes = OutcomeKeeper(queue)
        # Attempts until their outcome is committed; `_executing` counts only those whose
        # function still runs (or is about to), so a slot frees as soon as the function
        # returns and the next claim can share a transaction with the outcome writes.
        self._running: dict[AttemptKey, asyncio.Task[None]] = {}
        self._executing: set[AttemptKey] = set()
        self._ready = ReadyTasks()  # claimed (status `claimed`), not started yet
        self._held_back: list[ClaimedTask] = []  # taken, then not run: the pool was stopping
        self._suspect: AttemptKey | None = None  # the suspect attempt running here
        # Set when recovery left suspects; cleared once a claim finds none.
        self.suspects_waiting = False
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

    def live_attempts(self) -> set[AttemptKey]:
        """Every attempt this pool holds: running, or claimed ahead and not started."""
        return set(self._running) | {c.key for c in self._ready.tasks()}

    async def start(self) -> None:
        if self._dispatcher is None:
            self._stopping = False
            self._dispatcher = asyncio.create_task(self._dispatch(), name="litetask-dispatcher")

    def executing(self) -> set[AttemptKey]:
        """The attempts whose function runs here (or is about to)."""
        return set(self._executing)

    def cancel_local(self, task_id: str, attempt: int | None = None) -> bool:
        """Cancel the attempts of this task held here (its row was already marked cancelled);
        only that running `attempt` when given (another process cancelled it). True when it
        cancelled one now (an attempt already cancelled, still unwinding, is left alone)."""
        if attempt is None and self._ready.remove(task_id):
            self._note_ready()
            return True
        running = self._running.items()
        found = [t for (i, n), t in running if i == task_id and attempt in (None, n)]
        found = [t for t in found if not t.cancelling()]
        for task in found:
            task.cancel()
        return bool(found)

    def halt(self) -> None:
        """Stop claiming and cancel every attempt now: another process owns the database
        (stop() still follows, and its writes are fenced out)."""
        self.stop_starting()
        for attempt in self._running.values():
            attempt.cancel()

    def stop_starting(self) -> None:
        """Claim and start nothing from now on (a stop follows): a claim or start the
        database has not applied yet takes nothing."""
        self._stopping = True
        self.queue.no_new_starts.set()
        self.queue.new_work.set()

    async def stop(self, timeout: float = 5.0, cut: asyncio.Event | None = None) -> None:
        """Stop claiming; let running attempts finish within `timeout` (or until `cut` is
        set), then cancel the rest and put them back to `pending` so they run again after a
        restart, with whatever was taken and not started. Returns within about `timeout` +
        2 * CUT_GRACE and the writer's budget (see the module docstring)."""
        if self._dispatcher is None:
            return
        self.stop_starting()
        self.outcomes.stopping = True
        cut = cut if cut is not None else asyncio.Event()
        deadline = asyncio.get_running_loop().time() + timeout
        dispatcher, self._dispatcher = self._dispatcher, None
        running = dict(self._running)  # complete: nothing is launched once stopping
        # The dispatcher ends at once unless the database holds its claim: it is never cut
        # (a claim it took before the stop must come back to be put back).
        late: set[asyncio.Task[None]]
        _, late = await asyncio.gather(
            end_within({dispatcher}, deadline, asyncio.Event()),
            end_within(set(running.values()), deadline, cut),
        )
        ready = self._ready.drain()
        self._note_ready()
        held, self._held_back = [*ready, *self._held_back], []
        cut_short = [key for key, attempt in running.items() if attempt in late]
        for (task_id, _), attempt in running.items():
            if not attempt.done():
                self.stragglers.add(task_id, attempt)
        await write_last(self.outcomes, self.settings.owner, held, cut_short)

    async def _dispatch(self) -> None:
        wake = self.queue.new_work
        while not self._stopping:
            try:
                delay = await self._fill_slots()
            except Exception as exc:
                self._claim_failed(exc)
                delay = 1.0
            if self._stopping:
                break
            if delay == 0:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

    def _claim_failed(self, exc: Exception) -> None:
        """Log a failed claim (one line for the database's passing state, a traceback for
        anything else); the dispatcher tries again in a second."""
        self.queue.wake_before = WAKE_ALWAYS
        if isinstance(exc, DatabaseUnavailableError):
            logger.warning("claiming tasks failed (%s); trying again in 1 s", exc.reason)
        else:
            logger.error("claiming tasks failed; trying again in 1 s", exc_info=exc)

    async def _fill_slots(self) -> float | None:
        """Start claimed work in free slots and claim more; return how long to sleep
        (0: claim again at once, None: until woken).

        While it claims, puts do not wake the pool (each would cost one more claim): they
        are noted in `queue.earliest_put`, and it claims again after. Tasks for later are
        the stager's: it wakes the pool when they come due."""
        queue = self.queue
        queue.new_work.clear()
        queue.wake_before = WAKE_NEVER
        queue.earliest_put = WAKE_ALWAYS
        if not queue.preempt:  # else what is held goes back first: a better task came
            self._start_ready()
        request = self._claim_request()
        if request is None:  # slots and prefetch are full: a finishing task wakes us
            return None
        claim = await queue.claim(request)
        if self._stopping:  # the stop began while the claim was in flight: run none of it
            self._held_back += [*claim.started, *claim.claimed]
            return None
        self._take(request, claim)
        if claim.filled(request):
            return 0 if self._free_slots() > 0 else None
        if queue.earliest_put != WAKE_ALWAYS:  # put while it claimed: due now
            return 0
        queue.wake_before = WAKE_ALWAYS
        return None

    def _free_slots(self) -> int:
        return self.settings.max_workers - len(self._executing)

    def _claim_request(self) -> ClaimRequest | None:
        """Free slots (a suspect in one of them when one may run) and, while recent tasks
        are short, a prefetch, so a stream of quick tasks is claimed in batches instead of
        one transaction per slot. A prefetch tops up once half of it is gone; a more urgent
        put (queue.preempt) gives it back to be claimed again in order."""
        preempt, self.queue.preempt = self.queue.preempt, False
        give_back = self._ready.drain() if preempt else []
        free = self._free_slots()
        prefetch = self._prefetch_size(free > 0 or preempt)
        if free <= 0 and prefetch <= 0 and not give_back:
            return None
        return ClaimRequest(
            owner=self.settings.owner,
            lease_seconds=self.settings.lease_seconds,
            start=max(free, 0),
            prefetch=prefetch,
            suspect=self.suspects_waiting and self._suspect is None,
            give_back=give_back,
        )

    def _prefetch_size(self, now: bool) -> int:
        if self._mean_seconds is None or self._mean_seconds >= SHORT_TASK_SECONDS:
            return 0
        target = self.settings.max_workers * PREFETCH_FACTOR
        missing = target - len(self._ready)
        return missing if now or missing >= target // 2 else 0

    def _take(self, request: ClaimRequest, claim: Claim) -> None:
        found_suspect = False
        for claimed in claim.started:
            if claimed.suspect:
                self._suspect, found_suspect = claimed.key, True
            self._launch(claimed, None)
        if request.suspect and request.start > 0 and not found_suspect:
            self.suspects_waiting = False  # it looked for one and found none
        self._ready.extend(claim.claimed)
        self._start_ready()

    def _start_ready(self) -> None:
        batch = [self._ready.pop() for _ in range(min(self._free_slots(), len(self._ready)))]
        self._note_ready()
        if batch:
            settings = self.settings
            started = self.queue.start(batch, settings.owner, settings.lease_seconds)
            for claimed in batch:
                self._launch(claimed, started)

    def _note_ready(self) -> None:
        self.queue.ready_floor = self._ready.worst_priority()

    def _launch(self, claimed: ClaimedTask, started: Started | None) -> None:
        key = claimed.key
        run = self._run(claimed) if started is None else self._begin(claimed, started)
        earlier = self._earlier_attempts(claimed.id)
        if earlier:
            run = _after(earlier, run)
        attempt = asyncio.create_task(run, name=f"litetask-task-{claimed.id}")
        self._running[key] = attempt
        self._executing.add(key)
        attempt.add_done_callback(functools.partial(self._forget, key))

    def _earlier_attempts(self, task_id: str) -> set[asyncio.Future[Any]]:
        """Attempts of this task still alive here: one cancelled but still unwinding (then
        retried), one that outlived an earlier stop of this worker, or a `def` function
        still in its thread after its attempt ended."""
        here: set[asyncio.Future[Any]]
        here = {t for (i, _), t in self._running.items() if i == task_id and not t.done()}
        return here | self.stragglers.of(task_id)

    async def _begin(self, claimed: ClaimedTask, started: Started) -> None:
        """Run a claimed attempt once the start write has made its row `running`."""
        try:
            ids = await started
        except Exception:
            # The row stays claimed under this boot: the reconciler puts it back.
            logger.exception("starting task %s failed", claimed.id, extra={"task_id": claimed.id})
            return
        if self._stopping:  # its start was in flight when the stop began: it does not run
            self._held_back.append(claimed)
        elif claimed.id in ids:  # else it was cancelled while claimed
            await self._run(claimed)

    def _observe(self, seconds: float) -> None:
        mean = self._mean_seconds
        self._mean_seconds = seconds if mean is None else mean + (seconds - mean) * 0.1

    def _free_slot(self, key: AttemptKey) -> None:
        if key == self._suspect:
            self._suspect = None  # it did not take the process down: the next may run
        if key in self._executing:
            self._executing.discard(key)
            self.queue.new_work.set()

    def _forget(self, key: AttemptKey, _attempt: asyncio.Task[None]) -> None:
        self._running.pop(key, None)
        self._free_slot(key)

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
            outcome: Outcome = self.executor.not_registered(claimed, exc)
        else:
            started = time.monotonic()
            try:
                outcome = await self.executor.execute(definition, claimed, reporter)
            except Exception as exc:  # not the function's error: keeping its result failed
                outcome = not_stored(claimed, exc)
            self._observe(time.monotonic() - started)
        self._free_slot(claimed.key)
        await reporter.flush()
        await self.outcomes.record(claimed, outcome)


async def _after(earlier: set[asyncio.Future[Any]], run: Coroutine[Any, Any, None]) -> None:
    """`run` once every earlier attempt of the same task has returned: one attempt of a
    task at a time in this process, even when an earlier one ignores its cancellation."""
    try:
        await asyncio.wait(earlier)
    except BaseException:
        run.close()  # never started: nothing to unwind
        raise
    await run
