"""Progress reporting for running tasks: the callback a task function is given.

Calls are cheap and synchronous for the task; the value is written at most every
`interval` seconds (the final value is never lost: completion writes 1.0, and a pending
write is flushed before the attempt's outcome is recorded).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from app.worker.queue import TaskQueue
from app.worker.records import ClaimedTask

ProgressPublisher = Callable[[ClaimedTask, float], None]


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
        self._written: float | None = None
        self._flusher: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    def __call__(self, progress: float) -> None:
        value = float(progress)
        if math.isnan(value):
            raise ValueError("progress must be a number between 0 and 1, not NaN")
        self._latest = min(max(value, 0.0), 1.0)
        if self._publish is not None:
            self._publish(self._claimed, self._latest)
        if self._flusher is None:
            loop = asyncio.get_running_loop()
            self._flusher = loop.call_later(self._interval, self._write_latest)

    def _write_latest(self) -> None:
        self._flusher = None
        value = self._latest
        if value is None or value == self._written:
            return
        self._written = value
        write = asyncio.ensure_future(
            self._queue.save_progress(self._claimed.id, self._claimed.attempt, value)
        )
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Write the latest value now and wait for every write in flight."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._write_latest()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
