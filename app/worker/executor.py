"""TaskExecutor: runs one attempt of a task and turns whatever happens into an Outcome.

Cancellation is not an outcome: a CancelledError (user cancel, shutdown) propagates and the
caller decides what the row becomes. Everything else the function raises becomes a `Failed`,
with its traceback kept, and a retry time while attempts remain: BaseExceptions too
(SystemExit, KeyboardInterrupt, GeneratorExit), which would otherwise stop the event loop
(asyncio lets the first two out of a task) or leave the row running. The signals of
app/worker/signals.py are the exceptions: `Retry` snoozes (runs again later without spending
an attempt, up to MAX_SNOOZES times), `Abort` fails the task with no further attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.bounds import MAX_DEPTH, MAX_SNOOZES, nesting_problem, storable_text
from app.bounds import MAX_RESULT_ELEMENTS as MAX_ELEMENTS
from app.cache.flights import Flight
from app.cache.serialization import SerializationError, packb
from app.cache.task_adapter import AsyncCacheAdapter
from app.clock import now_us, seconds_to_us
from app.errors import TaskDefinitionError, TaskTimeoutError
from app.worker.calls import call_function
from app.worker.records import ClaimedTask, Completed, Failed, Outcome
from app.worker.registry import TaskDefinition
from app.worker.signals import Abort, Retry
from app.worker.status import AttemptKind
from app.worker.threads import ThreadRunner

logger = logging.getLogger(__name__)
ProgressCallback = Callable[[float], None]
MAX_ERROR_TYPE_CHARS = 200  # task_attempts.error_type


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits up to base * 2**(n-1), capped."""

    base_seconds: float = 1.0
    max_seconds: float = 300.0

    def delay(self, attempt: int) -> float:
        ceiling: float = min(self.max_seconds, self.base_seconds * 2.0 ** max(attempt - 1, 0))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class TaskExecutor:
    """Runs task functions under a timeout, with a progress callback when they declare one."""

    def __init__(
        self,
        *,
        default_timeout: float | None = None,
        retry_policy: RetryPolicy | None = None,
        max_result_size: int | None = None,
        cache: AsyncCacheAdapter | None = None,
        threads: ThreadRunner | None = None,
    ) -> None:
        self.default_timeout = default_timeout
        self.retry_policy = retry_policy or RetryPolicy()
        self.max_result_size = max_result_size
        self.cache = cache
        self.threads = threads  # for plain `def` functions

    async def execute(
        self,
        definition: TaskDefinition,
        claimed: ClaimedTask,
        progress: ProgressCallback | None = None,
    ) -> Outcome:
        """Run one attempt, answered from the result cache when the task uses it. The whole
        attempt, cache included, runs under the task's timeout."""
        cache, deadline = self.cache, self._deadline(claimed)
        if claimed.cache_key is None or cache is None:
            return await self._run(definition, claimed, progress, deadline)
        return await self._run_cached(
            cache, claimed.cache_key, definition, claimed, progress, deadline
        )

    async def _run_cached(
        self,
        cache: AsyncCacheAdapter,
        key: str,
        definition: TaskDefinition,
        claimed: ClaimedTask,
        progress: ProgressCallback | None,
        deadline: float | None,
    ) -> Outcome:
        """A hit, else the value of an identical attempt running here (single-flight), else
        a run of our own whose value followers share at once and the cache keeps."""
        while True:
            found, value = await cache.lookup(key, deadline)
            if found:
                return self._stored(claimed, value, from_cache=True)
            flight = cache.joinable(key)
            if flight is None:
                break
            shared = await self._follow(flight, claimed, deadline)
            if shared is not None:
                return shared
        with cache.lead(key) as flight:
            outcome = await self._run(definition, claimed, progress, deadline)
            if isinstance(outcome, Completed):
                flight.share(outcome)
                await cache.store(flight, outcome.value, claimed.cache_ttl, deadline)
        return outcome

    async def _follow(
        self, flight: Flight[Any], claimed: ClaimedTask, deadline: float | None
    ) -> Outcome | None:
        """The leader's result as ours; None when the leader ended without one."""
        try:
            async with asyncio.timeout_at(deadline):
                shared = await flight.wait()
        except TimeoutError:
            return self._timed_out(claimed)
        if isinstance(shared, Completed):
            return Completed(shared.result, from_cache=True, value=shared.value)
        return None

    async def _run(
        self,
        definition: TaskDefinition,
        claimed: ClaimedTask,
        progress: ProgressCallback | None,
        deadline: float | None,
    ) -> Outcome:
        try:
            async with asyncio.timeout_at(deadline):
                result = await call_function(definition, claimed, progress, self.threads)
        except TimeoutError:
            return self._timed_out(claimed)
        except Retry as signal:
            return self._snoozed(claimed, signal)
        except Abort as signal:
            return self._failed(claimed, signal, retryable=False, kind=AttemptKind.ABORTED)
        except SerializationError as exc:
            return self._failed(claimed, exc, retryable=False)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit, KeyboardInterrupt...: the task's failure
            return self._failed(claimed, exc)
        return self._stored(claimed, result)

    def _stored(self, claimed: ClaimedTask, result: Any, *, from_cache: bool = False) -> Outcome:
        """The result as it will be stored; a result that cannot be (too deep, too large,
        not msgpack, or a container of the user's that raises when read) fails the attempt
        for good: running it again would not change that."""
        try:
            problem = nesting_problem(result, MAX_DEPTH, self.max_result_size or MAX_ELEMENTS)
            if problem is not None:
                raise SerializationError(f"the result {problem}")
            data = packb(result, max_size=self.max_result_size)
        except Exception as exc:  # whatever the value raises: the outcome must be recorded
            return self._failed(claimed, exc, retryable=False)
        return Completed(data, from_cache=from_cache, value=result)

    def _deadline(self, claimed: ClaimedTask) -> float | None:
        """When this attempt's time is up, in event-loop time (None: no timeout)."""
        timeout = self._timeout(claimed)
        return None if timeout is None else asyncio.get_running_loop().time() + timeout

    def _timeout(self, claimed: ClaimedTask) -> float | None:
        return claimed.timeout if claimed.timeout is not None else self.default_timeout

    def _timed_out(self, claimed: ClaimedTask) -> Failed:
        error = TaskTimeoutError(f"task did not finish within {self._timeout(claimed)} seconds")
        return self._failed(claimed, error, with_traceback=False)

    def not_registered(self, claimed: ClaimedTask, exc: TaskDefinitionError) -> Failed:
        """The task's type is not registered in this process (a deploy may be in progress):
        a failed attempt like any other, retried later while attempts remain."""
        return self._failed(claimed, exc, with_traceback=False)

    def _snoozed(self, claimed: ClaimedTask, signal: Retry) -> Failed:
        """Run again after the signal's delay, the attempt given back; past MAX_SNOOZES, an
        ordinary failed attempt."""
        if claimed.snoozes >= MAX_SNOOZES:
            failed = self._failed(claimed, signal, with_traceback=False)
            why = f"{signal}, after {MAX_SNOOZES} snoozes (the most): counted as a failed attempt"
            return dataclasses.replace(failed, message=why)
        logger.info(
            "task %s attempt %s snoozed for %s s",
            claimed.id,
            claimed.attempt,
            signal.delay,
            extra=claimed.log_fields(),
        )
        return Failed(
            error_type=type(signal).__name__,
            message=str(signal),
            traceback=None,
            retry_at=now_us() + seconds_to_us(signal.delay),
            kind=AttemptKind.SNOOZED,
        )

    def _failed(
        self,
        claimed: ClaimedTask,
        exc: BaseException,
        *,
        retryable: bool = True,
        with_traceback: bool = True,
        kind: AttemptKind = AttemptKind.FAILED,
    ) -> Failed:
        retry_at = None
        if retryable and claimed.spent < claimed.max_attempts:
            retry_at = now_us() + seconds_to_us(self.retry_policy.delay(claimed.attempt))
        logger.info(
            "task %s attempt %s %s: %r",
            claimed.id,
            claimed.attempt,
            kind.value,
            exc,
            extra=claimed.log_fields(),
        )
        trace = "".join(traceback.format_exception(exc)) if with_traceback else None
        return Failed(
            error_type=storable_text(type(exc).__name__, MAX_ERROR_TYPE_CHARS),
            message=storable_text(_message(exc)),
            traceback=None if trace is None else storable_text(trace),
            retry_at=retry_at,
            kind=kind,
        )


def _message(exc: BaseException) -> str:
    """str(exc), or its type's name when that is empty or str() itself raises."""
    try:
        return str(exc) or type(exc).__name__
    except Exception:  # a user's __str__; the failure must still be recorded
        return f"{type(exc).__name__} (its message could not be read)"
