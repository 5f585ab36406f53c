"""A watchdog thread that notices when the event loop stops answering.

Everything in litetask shares one event loop: a task that calls blocking code (`time.sleep`,
a synchronous HTTP client, heavy CPU work) freezes the API, the workers and the writer's
callbacks at once, and nothing inside the loop can say so while it is frozen. This thread
pings the loop every `interval` seconds; when a ping waits longer than `threshold`, it logs
the loop thread's stack once for that episode (so the log names the culprit) and marks the
loop as lagging until `cooldown` seconds after the last slow ping, which turns readiness
(`/health`) to 503. The delay of every ping, slow or not, is kept as `latest_lag` for the
metrics (`litetask_event_loop_lag_seconds`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LagReport:
    """The longest lag of the latest episode, and whether readiness should still say so."""

    worst_seconds: float
    lagging: bool


class LoopWatchdog:
    """Pings one event loop from its own daemon thread; see the module docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        threshold: float = 1.0,
        interval: float = 0.25,
        cooldown: float = 10.0,
    ) -> None:
        self.loop, self.threshold, self.interval, self.cooldown = (
            loop,
            threshold,
            interval,
            cooldown,
        )
        self.episodes = 0
        # Seconds the latest answered ping waited for the loop (a float is set atomically).
        self.latest_lag = 0.0
        self._loop_thread: int | None = None
        self._worst = 0.0
        self._lagging_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching; call from the loop's own thread (its stack is the one logged)."""
        if self._thread is not None:
            return
        self._loop_thread = threading.get_ident()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="litetask-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching. The thread notices within `interval`; nothing waits for it."""
        self._stop.set()
        self._thread = None

    def report(self) -> LagReport:
        return LagReport(self._worst, time.monotonic() < self._lagging_until)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            answered = threading.Event()
            sent = time.monotonic()
            try:
                self.loop.call_soon_threadsafe(answered.set)
            except RuntimeError:  # the loop is closed
                return
            if answered.wait(self.threshold):
                self.latest_lag = time.monotonic() - sent
                continue
            self._episode(answered, sent)

    def _episode(self, answered: threading.Event, sent: float) -> None:
        """The loop has not answered within the threshold: say where it is stuck, then wait
        for the answer (or a stop) to measure the whole lag."""
        self.episodes += 1
        self._lagging_until = float("inf")
        logger.warning(
            "the event loop has not answered for %.1f s; a task may be calling blocking "
            "code (time.sleep, synchronous I/O, long CPU work). The loop thread is at:\n%s",
            time.monotonic() - sent,
            self._loop_stack(),
        )
        while not answered.wait(self.interval):
            if self._stop.is_set():
                return
        lag = time.monotonic() - sent
        self._worst = self.latest_lag = lag
        self._lagging_until = time.monotonic() + self.cooldown
        logger.warning("the event loop answered again after %.1f s", lag)

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread or -1)
        if frame is None:
            return "(the loop thread is gone)"
        return "".join(traceback.format_stack(frame))
