"""Plain `def` task functions run in a bounded pool of threads, never on the event loop.

At most `max_threads` (LITETASK_THREAD_WORKERS) run at once; more wait for a thread, inside
their attempt (and its timeout). A thread cannot be killed: when an attempt times out, is
cancelled or the worker stops, the attempt ends at once for the worker (its outcome is
written), while the function runs on in its thread until it returns, keeping that thread.
Its TaskContext says `cancelled` so a cooperative function can stop early. Such a thread is
remembered as a straggler of its task (app/worker/stopping.py), so the task's next attempt
in this process starts only once it has returned, as for an async straggler.

Progress reported from the thread is handed to the event loop (`call_soon_threadsafe`);
after the attempt has ended, it is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from app.errors import WorkerNotRunningError
from app.worker.stopping import Stragglers

ProgressCallback = Callable[[float], None]
DEFAULT_THREAD_WORKERS = 8


class ThreadRunner:
    """The worker's threads for `def` tasks; open while the worker runs."""

    def __init__(self, max_threads: int, stragglers: Stragglers) -> None:
        self.max_threads, self.stragglers = max_threads, stragglers
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_threads, thread_name_prefix="litetask-task")

    def stop(self) -> None:
        """Start nothing more; threads still running go on until their functions return."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def call(self, task_id: str, func: Callable[[], Any]) -> Any:
        """`func()` in a thread, with this task's context variables; its return value. If
        the wait is cancelled (a timeout, a cancel, a stop) while the function runs, it is
        left to finish as a straggler of `task_id`."""
        if self._pool is None:
            raise WorkerNotRunningError("the worker's threads are not running (stopping?)")
        running = self._pool.submit(contextvars.copy_context().run, func)
        try:
            return await asyncio.wrap_future(running)
        except asyncio.CancelledError:
            if not running.cancel():  # already in its thread: it cannot be stopped
                self.stragglers.add(task_id, _watch(running))
            raise


def _watch(running: Future[Any]) -> asyncio.Future[Any]:
    """An asyncio future that settles when the thread's function returns; whatever it
    returns or raises then is of no use to anyone (its attempt is over)."""
    watched = asyncio.wrap_future(running)
    watched.add_done_callback(lambda done: done.cancelled() or done.exception())
    return watched


def hand_off(
    report: ProgressCallback, loop: asyncio.AbstractEventLoop, ended: threading.Event
) -> ProgressCallback:
    """A progress callback a thread may call: the value is checked there (a bad one raises
    in the task) and passed to `report` on the loop; dropped once `ended` is set."""

    def from_thread(progress: float) -> None:
        value = float(progress)
        if math.isnan(value):
            raise ValueError("progress must be a number between 0 and 1, not NaN")
        if ended.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
            loop.call_soon_threadsafe(_report_if_open, report, value, ended)

    return from_thread


def _report_if_open(report: ProgressCallback, value: float, ended: threading.Event) -> None:
    if not ended.is_set():
        report(value)
