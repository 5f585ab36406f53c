"""How `litetask serve` ends: stop signals, and an exit that nothing a task does can hold.

SIGTERM and SIGINT count alike. The first starts the graceful drain (`StopRequests.drain`);
the second cuts the running tasks at once (`StopRequests.cut`: they go back to pending); the
third exits at once with 128 + the signal's number, leaving the database as a crash would
(the next start recovers it). The handler runs at the Python level, so the third works even
while a task blocks the event loop.

`run_service` runs the service's coroutine as asyncio.run would, except that a SystemExit or
KeyboardInterrupt escaping some other task (say a helper task a task started) does not stop
the loop, that the tasks left at the end get LEFTOVER_GRACE seconds after their
cancellation, and that whatever outlives that (a coroutine that swallows cancellation, a
thread that never returns) cannot hold the exit: logs are flushed and the process leaves
with os._exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
LEFTOVER_GRACE = 1.0  # seconds each of the last steps gets (tasks, async generators, threads)
ServiceMain = Callable[["StopRequests"], Coroutine[Any, Any, None]]


class StopRequests:
    """What the stop signals ask of the running service: `drain` on the first, `cut` (stop
    waiting for running tasks) on the second."""

    def __init__(self) -> None:
        self.drain = asyncio.Event()
        self.cut = asyncio.Event()
        self.count = 0


class StopSignals:
    """SIGTERM/SIGINT handling for one event loop, counting signals (see the module)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, requests: StopRequests) -> None:
        self.loop, self.requests = loop, requests

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            # The loop's own handler is there for its wake-up fd only: a signal delivered to
            # another thread still wakes the loop, so the Python handler below runs at once.
            self.loop.add_signal_handler(signum, _nothing)
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        requests = self.requests
        requests.count += 1
        if requests.count >= 3:
            _exit_at_once(signum)
        event = requests.drain if requests.count == 1 else requests.cut
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to stop
            self.loop.call_soon_threadsafe(_announce, signum, requests.count, event)


def _nothing() -> None:
    return None


def _announce(signum: int, count: int, event: asyncio.Event) -> None:
    name = signal.Signals(signum).name
    if count == 1:
        logger.warning("%s: draining (a second signal cuts running tasks, a third exits)", name)
    else:
        logger.warning("%s again: cutting running tasks now (a third signal exits)", name)
    event.set()


def _exit_at_once(signum: int) -> None:
    """The third signal: leave now, without running anything more (not even the loop)."""
    code = 128 + signum
    message = (
        f"litetask: {signal.Signals(signum).name} a third time: exiting at once ({code}); "
        "tasks left running are recovered at the next start\n"
    )
    os.write(2, message.encode())
    os._exit(code)


def run_service(main: ServiceMain, failure_code: Callable[[Exception], int]) -> int:
    """Run `main` on a new event loop with the stop signals installed; the exit code: 0, or
    `failure_code` of what main raised. If something outlives the end (see the module), the
    process exits with that code from here."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    requests = StopRequests()
    StopSignals(loop, requests).install()
    try:
        code = _run_main(loop, main(requests), failure_code)
    finally:
        left = _wind_down(loop)
        asyncio.set_event_loop(None)
    if left:
        logger.error("exiting without waiting for what did not end: %s", ", ".join(left))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run_main(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, None],
    failure_code: Callable[[Exception], int],
) -> int:
    main = loop.create_task(coro, name="litetask-service")
    while True:
        try:
            loop.run_until_complete(main)
        except (SystemExit, KeyboardInterrupt) as exc:
            if main.done():
                raise
            # asyncio lets these out of any task, stopping the loop: not for a task's helper.
            logger.error("a task let %r out of a task of its own; the service goes on", exc)
            continue
        except Exception as exc:
            return failure_code(exc)
        return 0


def _wind_down(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Cancel the tasks left, give them, the async generators and the threads their grace,
    close the loop; the names of what outlived it."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=LEFTOVER_GRACE))
        with contextlib.suppress(TimeoutError):
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), LEFTOVER_GRACE))
        left = [f"task {t.get_name()}" for t in tasks if not t.done()]
    finally:
        loop.close()  # also puts the default signal handlers back
    return left + [f"thread {name}" for name in _lingering_threads(LEFTOVER_GRACE)]


def _lingering_threads(grace: float) -> list[str]:
    """Threads that would hold the interpreter's exit (non-daemon), still alive after
    `grace` seconds."""
    deadline = time.monotonic() + grace
    alive = []
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            alive.append(thread.name)
    return alive
