"""The service's graceful stop: draining while HTTP still answers.

Draining starts on the first stop signal (app/shutdown.py) or when the database writer dies:
event streams end, the side tasks stop, and the worker stops within settings.stop_timeout
(cut short by a second signal), bounded whatever tasks and the database do (`longest_stop`).
Then `drained` is set and the server closes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.applications import Starlette

from app.cancelling import cancel_and_wait
from app.config import Settings
from app.events.manager import EventManager
from app.worker.core import AsyncTaskWorker
from app.worker.pruner import Pruner
from app.worker.stopping import longest_stop

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Drain:
    """The events of a graceful stop: `draining` starts it, `cut` stops waiting for running
    tasks, `drained` says the worker has stopped (the server may close)."""

    draining: asyncio.Event
    drained: asyncio.Event
    cut: asyncio.Event


async def serve_until_drained(
    app: Starlette,
    worker: AsyncTaskWorker,
    events: EventManager,
    settings: Settings,
    drain: Drain,
) -> None:
    """Run the side tasks (the writer guard, the pruner) until draining starts; then end the
    event streams, stop the side tasks and the worker (running tasks get
    settings.stop_timeout), and set `drained`."""
    guard = asyncio.create_task(
        _drain_if_writer_dies(worker, drain.draining, app), name="writer-guard"
    )
    pruner = asyncio.create_task(
        Pruner(worker.writer, settings.prune_policy()).run(), name="pruner"
    )
    try:
        await drain.draining.wait()
        worker.stop_starting()
        events.close()
    finally:
        try:
            await cancel_and_wait(pruner, guard)
        finally:  # whatever the side tasks ended with, the worker stops and the drain ends
            try:
                await _stop_worker(worker, settings, drain.cut)
            finally:
                drain.drained.set()


async def _stop_worker(worker: AsyncTaskWorker, settings: Settings, cut: asyncio.Event) -> None:
    """Stop the worker within its longest stop; past that (only a disk that hangs can make
    it so) the service closes all the same: the next start recovers what was left."""
    bound = longest_stop(settings.stop_timeout, settings.write_retry_seconds)
    try:
        async with asyncio.timeout(bound):
            await worker.stop(settings.stop_timeout, cut=cut)
    except TimeoutError:
        logger.error("the worker did not stop within %.0f s; closing the service anyway", bound)


async def finish_draining(drain: asyncio.Event, drainer: asyncio.Task[None]) -> None:
    drain.set()
    await drainer


async def _drain_if_writer_dies(
    worker: AsyncTaskWorker, drain: asyncio.Event, app: Starlette
) -> None:
    """A dead writer cannot be mended in place: note why on `app.state.failure` (serve exits
    non-zero on it, so the supervisor restarts the service) and start draining."""
    failure = await worker.writer.wait_failed()
    logger.critical("%s; stopping the service", failure)
    app.state.failure = failure
    drain.set()
