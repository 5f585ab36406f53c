"""How a worker pool stops, bounded whatever its tasks do.

Running attempts get the stop timeout (less once the stop is cut short: a second signal);
then they are cancelled, and those still alive CUT_GRACE seconds later (a task that swallows
CancelledError) are put back to pending all the same: whatever they write later is fenced
off by their attempt number. The last writes (outcomes cut while they waited for the
database, then the put back) get the writer's remaining budget; what the database does not
take by then is left for the next start to recover.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from app.db.writer import TRANSACTION_SLACK
from app.errors import DatabaseUnavailableError
from app.worker.outcomes import OutcomeKeeper
from app.worker.records import AttemptKey, ClaimedTask
from app.worker.recovery import PutBack

logger = logging.getLogger(__name__)
CUT_GRACE = 1.0  # seconds a cancelled attempt gets to unwind before its row is put back


class Stragglers:
    """Attempts that outlived a stop (they ignored their cancellation), by task id. The
    worker keeps them across stop() and start(): a pool runs a task's next attempt only once
    its earlier ones here have returned, so this process never runs two attempts of one task
    at once."""

    def __init__(self) -> None:
        self._alive: dict[str, set[asyncio.Future[Any]]] = {}

    def add(self, task_id: str, attempt: asyncio.Future[Any]) -> None:
        self._alive.setdefault(task_id, set()).add(attempt)
        attempt.add_done_callback(lambda done: self._forget(task_id, done))

    def of(self, task_id: str) -> set[asyncio.Future[Any]]:
        return set(self._alive.get(task_id, ()))

    def _forget(self, task_id: str, attempt: asyncio.Future[Any]) -> None:
        alive = self._alive.get(task_id)
        if alive is not None:
            alive.discard(attempt)
            if not alive:
                del self._alive[task_id]


def longest_stop(timeout: float, write_retry_seconds: float) -> float:
    """The longest `AsyncTaskWorker.stop(timeout)` takes, whatever tasks and the database do:
    the timeout, a grace for the dispatcher and one for cut tasks to unwind, then the last
    writes, which the writer gives up after its retry budget (each of the four steps that
    wait on it may add a second for a transaction in progress)."""
    return timeout + 2 * CUT_GRACE + write_retry_seconds + 4 * TRANSACTION_SLACK


async def end_within(
    tasks: Collection[asyncio.Task[Any]], deadline: float, cut: asyncio.Event
) -> set[asyncio.Task[Any]]:
    """Wait for `tasks` until the loop time `deadline` or until `cut` is set; cancel those
    still running and give them CUT_GRACE seconds to end. Returns the ones cancelled."""
    if tasks and not cut.is_set():
        every = asyncio.ensure_future(asyncio.wait(tasks))
        cutting = asyncio.ensure_future(cut.wait())
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait(
                {every, cutting}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            every.cancel()
            cutting.cancel()
    late = {t for t in tasks if not t.done()}
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=CUT_GRACE)
    stubborn = sorted(t.get_name() for t in late if not t.done())
    if stubborn:
        logger.error(
            "stop: %s ignored their cancellation for %s s; what they held goes back to "
            "pending all the same (what they write later is fenced off)",
            ", ".join(stubborn),
            CUT_GRACE,
        )
    return late


async def write_last(
    outcomes: OutcomeKeeper, owner: str, held: list[ClaimedTask], cut: list[AttemptKey]
) -> None:
    """The stop's last writes, within the writer's remaining budget: one last try at the
    outcomes whose recording the stop cut, then `held` (taken, never run) and the attempts
    `cut` (less those whose outcome got stored) back to pending. Later outcomes are dropped."""
    budget = outcomes.queue.writer.longest_wait()
    try:
        async with asyncio.timeout(budget):
            unsaved = outcomes.take_unsaved()
            known = {claimed.key for claimed, _ in unsaved}
            lost = await outcomes.last_try(unsaved) if unsaved else []
            await _put_back(outcomes, owner, held, [k for k in cut if k not in known] + lost)
    except TimeoutError:
        logger.error(
            "stop: the database did not take the last writes within %.1f s; the next start "
            "recovers the tasks they concerned",
            budget,
        )
    finally:
        outcomes.closed = True


async def _put_back(
    outcomes: OutcomeKeeper, owner: str, held: list[ClaimedTask], cut: list[AttemptKey]
) -> None:
    """Back to pending: `held` (`claimed` as they were, or `running` with the attempt given
    back if their start committed) and the attempts `cut` (their row still `claimed` if
    their start never committed)."""
    if not held and not cut:
        return
    ids = [c.id for c in held] + [task_id for task_id, _ in cut]
    keys = [c.key for c in held] + cut
    try:
        returned = await outcomes.queue.writer.run(PutBack(owner, ids, keys))
    except DatabaseUnavailableError as exc:
        logger.error(
            "stop: %s tasks could not be put back (%s); the next start recovers them",
            len(ids),
            exc,
        )
    else:
        logger.info("stop: %s claimed or cut tasks put back to pending", returned)
