"""Where a worker's committed events go: to the event sink (the streams), to the commit
sink (this process's metrics), and to the waiters of the tasks they finished. Kept apart
from AsyncTaskWorker so the coordinator reads as lifecycle plus public API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from app.errors import WriterFailedError
from app.events.log import TERMINAL_EVENT_TYPES, EventType, TaskEvent
from app.worker.progress import ProgressGate
from app.worker.records import ClaimedTask, task_event
from app.worker.store import TaskStore
from app.worker.waiters import TaskWaiters

logger = logging.getLogger(__name__)
EventSink = Callable[[list[TaskEvent]], None]


class EventRouting:
    """Hands committed events on. `follows_log`: on PostgreSQL the log follower publishes
    every process's events, so a commit here only resolves waiters and feeds the commit
    sink; on SQLite the commit publishes too."""

    def __init__(
        self,
        waiters: TaskWaiters,
        store: Callable[[], TaskStore | None],
        *,
        follows_log: bool,
        event_sink: EventSink | None = None,
        commit_sink: EventSink | None = None,
    ) -> None:
        self.waiters, self.store, self.follows_log = waiters, store, follows_log
        self.event_sink, self.commit_sink = event_sink, commit_sink
        self._progress_gate = ProgressGate()
        self._side_tasks: set[asyncio.Task[Any]] = set()

    def on_commit(self, events: list[TaskEvent]) -> None:
        """The writer committed `events` (this process's own)."""
        hand(self.commit_sink, events)
        self.observe_logged(events, publish=not self.follows_log)

    def observe_logged(self, events: list[TaskEvent], publish: bool = True) -> None:
        """Committed events: published (unless the log follower does it: PostgreSQL), and
        the waiters of the tasks they finished resolved."""
        self._progress_gate.observe(events)  # before publishing: nothing after a terminal
        if publish:
            hand(self.event_sink, events)
        finished = {e.task_id for e in events if e.type in TERMINAL_EVENT_TYPES}
        waited = self.waiters.waiting_for(finished)
        if waited:
            side = asyncio.ensure_future(self._resolve_waiters(waited))
            self._side_tasks.add(side)
            side.add_done_callback(self._side_tasks.discard)

    def publish_progress(self, claimed: ClaimedTask, progress: float) -> None:
        """Publish a progress value (throttled by the reporter) while its attempt is live.
        It says no status: a progress event never changes what a client shows as status."""
        if self.event_sink is not None and self._progress_gate.allows(claimed):
            event = task_event(
                EventType.PROGRESS,
                claimed.id,
                claimed.task_type,
                group=claimed.group,
                progress=progress,
                attempt=claimed.attempt,
            )
            hand(self.event_sink, [event])

    def fail_waiters(self, failure: WriterFailedError) -> None:
        """The writer died: no task can finish here any more, so no waiter waits in vain."""
        self.waiters.fail_all(lambda: WriterFailedError(str(failure)))

    async def settle(self, timeout: float) -> None:
        """Give the waiters being resolved up to `timeout` seconds (at a stop)."""
        if self._side_tasks:
            await asyncio.wait(self._side_tasks, timeout=timeout)

    async def _resolve_waiters(self, waited: dict[str, list[asyncio.Future[Any]]]) -> None:
        store = self.store()
        if store is None:
            return
        for task_id, futures in waited.items():
            info = await store.get(task_id)
            if info is not None:
                self.waiters.resolve(info, futures)


def hand(sink: EventSink | None, events: list[TaskEvent]) -> None:
    """Hand events to a sink; one that raises is logged, never the caller's problem (the
    writer's, or a task's progress callback)."""
    if sink is None:
        return
    try:
        sink(events)
    except Exception:
        logger.exception("an event sink raised on %s events; they are in the log", len(events))
