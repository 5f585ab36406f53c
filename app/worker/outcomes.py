"""Outcomes cannot be lost: each attempt's outcome is kept until the database takes it.

The writer already retries a write while the database is busy, full or failing, for a few
seconds (app/db/writer.py); an outcome outlives that budget, as River's completer and Oban's
acker do: it is submitted again, with backoff, until it commits or the pool stops. An outcome
the database can never take (the write itself is refused, say by a constraint or a value
SQLite cannot hold) is replaced by a Failed one that says so, so the task still ends.
"""

from __future__ import annotations

import asyncio
import logging
import traceback

from app.errors import DatabaseUnavailableError, OutcomeNotStoredError, WriterFailedError
from app.worker.queue import TaskQueue
from app.worker.records import AttemptKey, ClaimedTask, Failed, Outcome

logger = logging.getLogger(__name__)
FIRST_DELAY = 0.1
MAX_DELAY = 2.0


class OutcomeKeeper:
    """Records outcomes through the queue, keeping the ones not committed yet, so a stop can
    make one last try at them instead of running their tasks again."""

    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue
        # Set by the pool's stop: an outcome whose recording is cancelled then is kept for
        # `take_unsaved` (any other cancellation, e.g. the task's, forgets it).
        self.stopping = False
        # Set once the stop has put back what it cut: an outcome that comes later (from a
        # task that ignored its cancellation) is dropped; its row already went back.
        self.closed = False
        self._unsaved: dict[AttemptKey, tuple[ClaimedTask, Outcome]] = {}
        # Outcomes the database has refused for now (retried), with what it said.
        self._refused: dict[AttemptKey, str | None] = {}

    def refused(self) -> tuple[int, str | None]:
        """How many outcomes wait because the database refused them, and the latest reason
        (e.g. "SQLITE_FULL"): readiness reports them, since the service cannot finish work."""
        reasons = list(self._refused.values())
        return len(reasons), reasons[-1] if reasons else None

    async def record(self, claimed: ClaimedTask, outcome: Outcome) -> None:
        """Commit `outcome`, however long the database takes (until cancelled)."""
        if self.closed:
            logger.warning(
                "task %s attempt %s ended after the stop had put it back to pending; its "
                "outcome is dropped and the task runs again",
                claimed.id,
                claimed.attempt,
                extra=claimed.log_fields(),
            )
            return
        key = (claimed.id, claimed.attempt)
        self._unsaved[key] = (claimed, outcome)
        kept = False
        try:
            await self._record(claimed, outcome)
        except asyncio.CancelledError:
            kept = self.stopping
            raise
        finally:
            self._refused.pop(key, None)
            if not kept:
                self._unsaved.pop(key, None)

    def take_unsaved(self) -> list[tuple[ClaimedTask, Outcome]]:
        """The outcomes known but not committed (their recording was cut by a stop)."""
        unsaved, self._unsaved = list(self._unsaved.values()), {}
        return unsaved

    async def last_try(self, pairs: list[tuple[ClaimedTask, Outcome]]) -> list[AttemptKey]:
        """One writer budget for these outcomes (at stop); returns the attempts whose outcome
        the database still refused, for the caller to put back to pending."""
        results = await asyncio.gather(
            *(self.queue.finish(c, o) for c, o in pairs), return_exceptions=True
        )
        lost = [c.key for (c, _), r in zip(pairs, results, strict=True) if isinstance(r, Exception)]
        if lost:
            logger.error(
                "stop: the outcomes of %s tasks could not be stored; they go back to pending "
                "and run again: %s",
                len(lost),
                ", ".join(task_id for task_id, _ in lost),
            )
        return lost

    async def _record(self, claimed: ClaimedTask, outcome: Outcome) -> None:
        delay = FIRST_DELAY
        while True:
            try:
                await self.queue.finish(claimed, outcome)
                return
            except WriterFailedError:
                _log_lost(claimed, "the database writer stopped")
                return
            except DatabaseUnavailableError as exc:
                self._refused[(claimed.id, claimed.attempt)] = exc.reason
                logger.warning(
                    "the outcome of task %s is not stored yet (%s); trying again in %s s",
                    claimed.id,
                    exc.reason,
                    delay,
                    extra=claimed.log_fields(),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
            except Exception as exc:
                if _is_not_stored(outcome):
                    _log_lost(claimed, f"even its failure was refused: {exc!r}")
                    return
                outcome = not_stored(claimed, exc)


NOT_STORED = OutcomeNotStoredError.__name__


def _is_not_stored(outcome: Outcome) -> bool:
    return isinstance(outcome, Failed) and outcome.error_type == NOT_STORED


def not_stored(claimed: ClaimedTask, cause: Exception) -> Failed:
    """The Failed outcome that replaces one the database refused: no retry (the same result
    would be refused again), the refusal as the error."""
    error = OutcomeNotStoredError(
        f"the outcome of attempt {claimed.attempt} could not be stored: "
        f"{type(cause).__name__}: {_first_line(cause)}",
        task_id=claimed.id,
    )
    logger.error("%s (task %s)", error, claimed.id, extra=claimed.log_fields())
    return Failed(NOT_STORED, str(error), "".join(traceback.format_exception(cause)))


def _first_line(exc: Exception) -> str:
    """An error's message without what SQLAlchemy appends (the SQL and its parameters)."""
    orig = getattr(exc, "orig", None)
    return str(orig if isinstance(orig, BaseException) else exc).partition("\n")[0]


def _log_lost(claimed: ClaimedTask, why: str) -> None:
    logger.error(
        "the outcome of task %s attempt %s is lost (%s); the task stays running until the "
        "next start recovers it",
        claimed.id,
        claimed.attempt,
        why,
        extra=claimed.log_fields(),
    )
