"""Progress reporting for running tasks: the callback a task function is given, and the gate
its events pass on their way out.

Calls are cheap and synchronous for the task. The reporter keeps only the latest value and
passes it on at most every `interval` seconds (the first at once, then the latest of each
interval), writing it to the row and publishing it together; `flush()` passes on the final
value before the attempt's outcome is recorded, so the last value is never lost.

`ProgressGate` lets a progress event out only while its attempt is live, from the attempt's
`task.started` to the first event that ends it (terminal, retrying, recovered): the commit
hook updates it before the writer's events are published, so no `task.progress` ever
follows a task's terminal event, even from a cancelled attempt still winding down.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable

from app.events.log import EventType, TaskEvent
from app.worker.queue import TaskQueue
from app.worker.records import ClaimedTask

ProgressPublisher = Callable[[ClaimedTask, float], None]


class ProgressGate:
    """Which attempts may publish progress: task id -> the live attempt's number (None when
    its `task.started` did not say). Holds only tasks that are running."""

    def __init__(self) -> None:
        self._live: dict[str, int | None] = {}

    def observe(self, events: Iterable[TaskEvent]) -> None:
        """Note committed events, in commit order, before they are published."""
        for event in events:
            if event.type == EventType.STARTED:
                attempt = event.payload.get("attempt")
                self._live[event.task_id] = attempt if isinstance(attempt, int) else None
            elif event.type != EventType.PROGRESS:
                self._live.pop(event.task_id, None)

    def allows(self, claimed: ClaimedTask) -> bool:
        if claimed.id not in self._live:
            return False
        attempt = self._live[claimed.id]
        return attempt is None or attempt == claimed.attempt


class ProgressReporter:
    """The `progress_callback` of one attempt."""

    def __init__(
        self,
        queue: TaskQueue,
        claimed: ClaimedTask,
        *,
        interval: float = 0.25,
        publish: ProgressPublisher | None = None,
    ) -> None:
        self._queue, self._claimed, self._interval = queue, claimed, interval
        self._publish = publish
        self._latest: float | None = None
        self._passed: float | None = None  # the last value written and published
        self._next_at = 0.0  # loop time before which nothing more is passed on
        self._timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    def __call__(self, progress: float) -> None:
        value = float(progress)
        if math.isnan(value):
            raise ValueError("progress must be a number between 0 and 1, not NaN")
        self._latest = min(max(value, 0.0), 1.0)
        if self._timer is not None:
            return  # the latest value goes out when the timer fires
        loop = asyncio.get_running_loop()
        wait = self._next_at - loop.time()
        if wait <= 0:
            self._pass_on()
        else:
            self._timer = loop.call_later(wait, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._pass_on()

    def _pass_on(self) -> None:
        """Write and publish the latest value (when it changed); nothing more for an interval."""
        value = self._latest
        if value is None or value == self._passed:
            return
        self._passed = value
        self._next_at = asyncio.get_running_loop().time() + self._interval
        write = asyncio.ensure_future(
            self._queue.save_progress(self._claimed.id, self._claimed.attempt, value)
        )
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        if self._publish is not None:
            self._publish(self._claimed, value)

    async def flush(self) -> None:
        """Pass on the latest value now and wait for every write in flight."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pass_on()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
